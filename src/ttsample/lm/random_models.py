"""Causal LMs at random initialisation in the shapes real ones have, for checks and benchmarks.

Their laws mean nothing; what they are for is exercising a backend on a
model's real shape (GPT-2's learned positions, Llama's and Qwen2's rotary
positions and grouped-query attention, a realistic vocabulary) without
fetching weights. Tokens are symbols of a ``CharTokenizer``: the characters
of the Dyck model's alphabet for small vocabularies, four-letter words for
large ones, then ``<eos>`` and ``<bos>``.
"""

from __future__ import annotations

import string
from pathlib import Path

from .tokenizer import CharTokenizer

ARCHITECTURES = ("gpt2", "llama", "qwen2")


def word_tokenizer(vocab_size: int) -> CharTokenizer:
    """``vocab_size - 2`` distinct four-letter words (each with a leading space), then <eos> and <bos>."""
    words = tuple(" " + "".join(string.ascii_lowercase[(i // 26**k) % 26] for k in range(4))
                  for i in range(vocab_size - 2))
    return CharTokenizer(words + ("<eos>", "<bos>"))


def random_model(arch: str, tokenizer: CharTokenizer, *, hidden: int = 64, layers: int = 2, heads: int = 2,
                 kv_heads: int | None = None, intermediate: int | None = None, context: int = 256,
                 init: float = 0.02, seed: int = 0):
    """A ``transformers`` causal LM of ``arch`` (gpt2, llama or qwen2) at random initialisation (``init``: the
    weights' standard deviation), sized to the tokenizer's vocabulary; head_dim is ``hidden / heads``."""
    import torch
    import transformers

    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, not {arch!r}")
    special = dict(vocab_size=tokenizer.vocab_size, bos_token_id=tokenizer.bos_id, eos_token_id=tokenizer.eos_id,
                   initializer_range=init)
    if arch == "gpt2":
        config = transformers.GPT2Config(n_positions=context, n_embd=hidden, n_layer=layers, n_head=heads, **special)
        model_class = transformers.GPT2LMHeadModel
    else:
        config_class, model_class = {"llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
                                     "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM)}[arch]
        config = config_class(hidden_size=hidden, intermediate_size=intermediate or 4 * hidden,
                              num_hidden_layers=layers, num_attention_heads=heads,
                              num_key_value_heads=kv_heads or heads, max_position_embeddings=context,
                              tie_word_embeddings=arch == "qwen2", **special)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return model_class(config).eval()


def save_random_model(folder, arch: str, vocab_size: int, **shape) -> Path:
    """``random_model`` saved with its tokenizer into ``folder`` (a model folder any backend loads); the Dyck
    model's six symbols when ``vocab_size`` is 6, words otherwise."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = (CharTokenizer(("<bos>", "<eos>", "(", ")", "[", "]")) if vocab_size == 6
                 else word_tokenizer(vocab_size))
    random_model(arch, tokenizer, **shape).save_pretrained(folder)
    tokenizer.save(folder)
    return folder
