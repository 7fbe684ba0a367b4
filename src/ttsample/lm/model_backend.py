"""What ``GenerationTask`` and the samplers need from a model: the backend protocol.

A backend answers on token sequences named by handles of its own trie
(``PrefixTrie``: ``extend``, ``handle``, ``tokens``, ``depth``), and gives:

- ``next_logprobs_tensor(prefixes)``: ``log pi(a | prefix)`` for every token
  ``a`` of the vocabulary, a float32 ``(len(prefixes), vocab_size)`` tensor on
  ``device`` (``next_logprobs``: the same as numpy). Everything the samplers
  do, proposals, descents, exact laws, decoding (temperature, top-k, top-p,
  the allowed tokens) and drawing, is computed from these rows in
  ``GenerationTask``, so two backends with equal rows give equal laws;
  ``torch_index`` makes index tensors on ``device``;
- ``draw_suffixes(handles, limits, allowed, eos, rng)``: continuations drawn
  by the backend's own sampler from the model's law restricted to ``allowed``
  (at temperature 1, nothing truncated), each up to ``eos`` or ``limits[i]``
  new tokens, as token tuples; or None where the backend has no sampler of its
  own, and the task decodes token by token from the rows above. The task
  uses it only when the law it must draw is that one (no decoding, no hook,
  no stop strings);
- ``head()``: the LM head's weight ``(vocab, d)`` and bias, which AISP needs
  to turn a pre-logit perturbation ``v`` into the logits bias ``W v``;
  ``prelogits(prefixes)``: the final hidden states ``(len, d)``, which the
  test-time value head reads (a backend that cannot give them raises
  ``BackendError`` with what to use instead);
- ``tokenizer`` (``vocab_size``, ``bos_id``, ``eos_id``, ``encode``,
  ``decode``, ``chat_ids``: ``ttsample.lm.tokenizer``), ``vocab_size``,
  ``max_length`` (the context), ``device``;
- ``ledger``: what the answers cost, in the same fields for every backend
  (``forward_passes``, ``tokens`` fed, ``cache_hits``, ``cache_misses``);
- ``uncached_next_logprobs(prefixes)``: the rows computed afresh, for
  checking a backend's cache.

Two implementations: ``LanguageModel`` (``ttsample.lm.backend``: transformers
with a KV cache on the trie) and ``VLLMBackend`` (``ttsample.lm.vllm_backend``:
a vLLM engine). ``load_model(name, backend=...)`` loads either. Nothing
outside the backends imports transformers or vLLM to run a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from ..ledger import Ledger

if TYPE_CHECKING:
    import torch


@runtime_checkable
class ModelBackend(Protocol):
    tokenizer: object
    vocab_size: int
    max_length: int
    ledger: Ledger

    def extend(self, handles: np.ndarray, tokens: np.ndarray) -> np.ndarray: ...

    def handle(self, seq) -> int: ...

    def tokens(self, handle: int) -> tuple[int, ...]: ...

    def depth(self, handles: np.ndarray) -> np.ndarray: ...

    def next_logprobs_tensor(self, prefixes) -> "torch.Tensor": ...

    def next_logprobs(self, prefixes) -> np.ndarray: ...

    def torch_index(self, values: np.ndarray) -> "torch.Tensor": ...

    def draw_suffixes(self, handles: np.ndarray, limits: np.ndarray, allowed: np.ndarray, eos: int,
                      rng: np.random.Generator) -> list[tuple[int, ...]] | None: ...

    def head(self) -> tuple[np.ndarray, np.ndarray]: ...

    def prelogits(self, prefixes) -> np.ndarray: ...

    def uncached_next_logprobs(self, prefixes) -> np.ndarray: ...


def load_model(name_or_path, *, backend: str = "hf", **kwargs) -> ModelBackend:
    """A model by name on a backend: ``"hf"`` (``LanguageModel.load``) or ``"vllm"`` (``VLLMBackend.load``)."""
    from .backend import LanguageModel  # torch: only once a model is needed

    return LanguageModel.load(name_or_path, backend=backend, **kwargs)
