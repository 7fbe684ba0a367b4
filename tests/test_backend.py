"""The KV-cached trie backend: cached answers equal fresh forward passes, one token per node, bounded bytes.

Two tiny models at random initialisation (GPT-2: learned absolute positions; Llama: rotary positions and
grouped-query attention), with weights drawn wide enough (initializer_range 0.2) that the next-token law
moves by about a nat with the context, so a wrong past or a wrong position shows far above the 1e-5
tolerance. The twins feed the model a wrong position or no padding mask and must be caught.
"""

import numpy as np
import pytest

from extras import require

require("lm")

import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from ttsample.errors import ParameterError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.tokenizer import CharTokenizer

TOKENIZER = CharTokenizer(("<bos>", "<eos>", *(chr(33 + i) for i in range(95))))
BOS = TOKENIZER.bos_id


def tiny_model(kind: str):
    torch.manual_seed(0)
    if kind == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                          initializer_range=0.2, bos_token_id=BOS, eos_token_id=TOKENIZER.eos_id))
    return LlamaForCausalLM(LlamaConfig(vocab_size=97, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                                        initializer_range=0.2, bos_token_id=BOS, eos_token_id=TOKENIZER.eos_id))


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request):
    return tiny_model(request.param)


def walk_then_batch(lm, seed: int, steps: int = 120):
    """Handles asked for, one call each, by a walk down and back up the tree of token sequences; then one call
    with many prefixes of different lengths at once (new ones sharing uncomputed ancestors, seen ones, repeats)."""
    rng = np.random.default_rng(seed)
    path, calls = [lm.handle([BOS])], []
    for _ in range(steps):
        calls.append(np.array(path[-1:]))
        if len(path) > 1 and (len(path) >= 12 or rng.random() < 0.45):
            path.pop()
        else:
            path.append(int(lm.extend(np.array(path[-1:]), rng.integers(2, 6, size=1))[0]))
    batch = [lm.handle([BOS, *rng.integers(2, 5, size=rng.integers(0, 18))]) for _ in range(40)]
    seen = np.concatenate(calls)
    calls.append(np.concatenate([batch, rng.choice(seen, 15), batch[:5]]))
    return calls


def closure(lm, handles) -> set:
    """Every node on the way to the handles (the root excluded)."""
    return {lm.tokens(h)[:k] for h in handles.tolist() for k in range(1, lm.depth(np.array([h]))[0] + 1)}


def reference(model, lm, handles):
    """Log-probs and final hidden states from a fresh full forward pass per prefix, no cache anywhere."""
    logp, hidden = [], []
    with torch.no_grad():
        for h in handles.tolist():
            out = model(input_ids=torch.tensor([lm.tokens(h)]), use_cache=False, output_hidden_states=True)
            logp.append(torch.log_softmax(out.logits[0, -1], dim=-1).numpy())
            hidden.append(out.hidden_states[-1][0, -1].numpy())
    return np.array(logp), np.array(hidden)


def answer_all(lm, calls):
    logp = np.concatenate([lm.next_logprobs(c) for c in calls])
    hidden = np.concatenate([lm.prelogits(c) for c in calls])
    return logp, hidden


def test_cached_answers_equal_fresh_passes_at_one_token_per_node(model):
    lm = LanguageModel(model, TOKENIZER)
    calls = walk_then_batch(lm, seed=0)
    asked = np.concatenate(calls)
    logp, hidden = answer_all(lm, calls)
    want_logp, want_hidden = reference(model, lm, asked)
    np.testing.assert_allclose(logp, want_logp, atol=1e-5)
    np.testing.assert_allclose(hidden, want_hidden, atol=1e-5)
    np.testing.assert_allclose(lm.uncached_next_logprobs(asked[-20:]), want_logp[-20:], atol=1e-5)
    assert lm.ledger.tokens - sum(lm.depth(asked[-20:])) == len(closure(lm, asked))  # one token per node computed
    assert lm.ledger.cache_hits + lm.ledger.cache_misses == 2 * asked.size
    assert lm.ledger.cache_misses == len(set(asked.tolist()))  # prelogits after next_logprobs: all hits
    assert lm.ledger.forward_passes - 20 < len(set(asked.tolist()))  # the batch shares passes
    assert 0 < lm.cached_bytes == lm.peak_cached_bytes <= lm.cache_bytes



def test_what_a_cached_node_costs_does_not_grow_with_the_context():
    """A 131,072-token context (as Llama 3's) costs a node what a 64-token one does: keys and values of one
    position, the log-probs and the hidden state (a path table sized to the context once took 512 KiB a node);
    answers on the long-context model still equal fresh passes."""
    def gpt2(context):
        torch.manual_seed(0)
        return GPT2LMHeadModel(GPT2Config(vocab_size=97, n_positions=context, n_embd=32, n_layer=2, n_head=4,
                                          initializer_range=0.2, bos_token_id=BOS, eos_token_id=TOKENIZER.eos_id))

    short, long = LanguageModel(gpt2(64), TOKENIZER), LanguageModel(gpt2(131_072), TOKENIZER)
    assert long.node_bytes == short.node_bytes == 2 * 2 * 32 * 4 + 4 * (97 + 32)
    calls = walk_then_batch(long, seed=3, steps=40)
    asked = np.concatenate(calls)
    logp, _ = answer_all(long, calls)
    np.testing.assert_allclose(logp, long.uncached_next_logprobs(asked), atol=1e-5)

def test_a_tiny_byte_budget_evicts_and_recomputes_right(model):
    budget = 30 * LanguageModel(model, TOKENIZER).node_bytes  # room for 30 nodes
    lm = LanguageModel(model, TOKENIZER, cache_bytes=budget, batch_size=8)
    calls = walk_then_batch(lm, seed=1)
    asked = np.concatenate(calls)
    logp, hidden = answer_all(lm, calls)
    want_logp, want_hidden = reference(model, lm, asked)
    np.testing.assert_allclose(logp, want_logp, atol=1e-5)
    np.testing.assert_allclose(hidden, want_hidden, atol=1e-5)
    assert 0 < lm.peak_cached_bytes <= lm.cache_bytes == budget
    assert lm.ledger.tokens > len(closure(lm, asked))  # evicted nodes were fed again
    cached = np.flatnonzero(lm._slot[: lm._size] >= 0)
    assert cached.size and np.all(lm._slot[lm._parent[cached]][lm._parent[cached] > 0] >= 0)  # closed under ancestors
    nothing = LanguageModel(model, TOKENIZER, cache_bytes=0)  # no cache at all still answers
    batch = [lm.tokens(h) for h in calls[-1].tolist()]  # handles belong to one model's trie: go by tokens
    np.testing.assert_allclose(nothing.next_logprobs(batch), want_logp[-len(batch) :], atol=1e-5)
    assert nothing.cached_bytes == nothing.peak_cached_bytes == 0


def wrong_positions(self, ids, mask, positions, cache):
    """Twin: positions counted from the first new token, forgetting the past."""
    return LanguageModel._feed(self, ids, mask, positions - positions[:, :1], cache)


def no_padding_mask(self, ids, mask, positions, cache):
    """Twin: the left padding of the past attended to as if it were context."""
    return LanguageModel._feed(self, ids, torch.ones_like(mask), positions, cache)


@pytest.mark.parametrize("twin", [wrong_positions, no_padding_mask])
def test_twin_a_wrong_feed_is_caught(model, twin, monkeypatch):
    lm = LanguageModel(model, TOKENIZER)
    calls = walk_then_batch(lm, seed=2, steps=40)
    monkeypatch.setattr(lm, "_feed", twin.__get__(lm))
    asked = np.concatenate(calls)
    logp = np.concatenate([lm.next_logprobs(c) for c in calls])
    assert np.abs(logp - reference(model, lm, asked)[0]).max() > 1e-3


def test_trie_handles_and_bad_requests(model):
    lm = LanguageModel(model, TOKENIZER)
    root = lm.handle([BOS])
    kids = lm.extend(np.array([root, root, root]), np.array([5, 6, 5]))
    assert kids[0] == kids[2] != kids[1] and lm.handle([BOS, 5]) == kids[0]
    assert np.array_equal(lm.extend(np.array([root]), np.array([6])), kids[1:2])  # same handle forever
    assert lm.tokens(kids[1]) == (BOS, 6) and lm.tokens(0) == () and lm.handle(()) == 0
    assert np.array_equal(lm.depth(np.array([0, root, kids[0]])), [0, 1, 2])
    by_tuple = lm.next_logprobs([(BOS, 5), (BOS,)])
    np.testing.assert_array_equal(by_tuple, lm.next_logprobs(np.array([kids[0], root])))
    on_device = lm.next_logprobs_tensor(np.array([kids[0]]))
    assert isinstance(on_device, torch.Tensor) and on_device.device == lm.device and on_device.shape == (1, 97)
    with pytest.raises(ParameterError, match="at least one token"):
        lm.next_logprobs(np.array([0]))
    with pytest.raises(ParameterError, match="context of 64"):
        lm.next_logprobs([(BOS,) * 65])
    with pytest.raises(ParameterError, match="vocabulary"):
        lm.extend(np.array([root]), np.array([97]))
    with pytest.raises(ParameterError, match="not a handle"):
        lm.next_logprobs(np.array([10**9]))
    with pytest.raises(ParameterError, match="cache_bytes"):
        LanguageModel(model, TOKENIZER, cache_bytes=-1)
    with pytest.raises(ParameterError, match="not available"):
        LanguageModel(model, TOKENIZER, device="no-such-device")
    if not torch.cuda.is_available():
        with pytest.raises(ParameterError, match="'cuda' is not available"):
            LanguageModel(model, TOKENIZER, device="cuda")


def test_embedded_model_loads_with_options_and_samples_left_to_right():
    lm = LanguageModel.load("dyck", cache_bytes=2**20, batch_size=16, device="cpu")
    assert lm.cache_bytes == 2**20 and lm.batch_size == 16
    handles = np.full(32, lm.handle([lm.tokenizer.bos_id]), dtype=np.int64)
    generator = torch.Generator().manual_seed(0)
    for _ in range(6):
        logp = lm.next_logprobs_tensor(handles)
        assert torch.allclose(logp.exp().sum(dim=1), torch.ones(32), atol=1e-5)
        handles = lm.extend(handles, torch.multinomial(logp.exp(), 1, generator=generator)[:, 0].numpy())
    last = lm.next_logprobs(handles)
    assert lm.ledger.tokens == len(closure(lm, handles))  # each node of the sampled tree fed once
    np.testing.assert_allclose(last, lm.uncached_next_logprobs(handles), atol=1e-5)
