"""A causal language model behind a prefix cache, with every call recorded in a ledger.

``LanguageModel.next_logprobs(prefixes)`` returns ``log pi_ref(. | prefix)`` for
a batch of token-id prefixes. Answers are cached per prefix (least recently
used evicted beyond ``cache_entries``); one forward pass over a prefix
computes the next-token distribution at every position, so it fills the cache
for all of the prefix's ancestors at once: a walk that backtracks and comes
down again never recomputes a prefix it has seen (until evicted). Misses are
computed in batches of right-padded sequences. ``prelogits(prefixes)`` gives
the final hidden state the LM head maps to logits (for AISP and value heads),
and ``head()`` the head's weight and bias.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError, ParameterError
from ..oracles.ledger import Ledger
from .tokenizer import load_tokenizer

EMBEDDED = {name: Path(__file__).parent / "weights" / name for name in ("dyck", "text", "subword")}


class LanguageModel:
    def __init__(self, model, tokenizer, *, cache_entries: int = 500_000, batch_size: int = 512, ledger: Ledger | None = None):
        import torch

        self.torch = torch
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.vocab_size = int(model.config.vocab_size)
        self.max_length = int(getattr(model.config, "n_positions", getattr(model.config, "max_position_embeddings", 1024)))
        self.cache_entries = cache_entries
        self.batch_size = batch_size
        self.ledger = ledger if ledger is not None else Ledger()
        self._cache: OrderedDict[tuple, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    @classmethod
    def load(cls, name_or_path: str | Path, **kwargs) -> "LanguageModel":
        """Load a causal LM: ``"dyck"`` or ``"text"`` (embedded), a local folder, or a hub name (needs network)."""
        from transformers import AutoConfig, AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        path = EMBEDDED.get(str(name_or_path), Path(name_or_path))
        local = Path(path).is_dir()
        if not local and (Path(path).is_absolute() or str(name_or_path).startswith((".", "~")) or Path(path).exists()):
            raise ModelLoadError(f"model folder {str(name_or_path)!r} does not exist (or is not a folder)")
        try:
            config = AutoConfig.from_pretrained(path, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot read a model config from {str(name_or_path)!r}: {exc}") from None
        try:
            model = AutoModelForCausalLM.from_pretrained(path, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{str(name_or_path)!r} ({config.model_type}) is not a causal language model: {exc}") from None
        tokenizer = load_tokenizer(path, local)
        size = tokenizer.vocab_size
        if size > model.config.vocab_size:
            raise ModelLoadError(
                f"the tokenizer has {size} tokens but the model only {model.config.vocab_size}: they do not match"
            )
        return cls(model, tokenizer, **kwargs)

    # ---- queries ----

    def next_logprobs(self, prefixes: list[tuple[int, ...]]) -> np.ndarray:
        """``log pi_ref(a | prefix)`` for every token ``a``, shape (len(prefixes), vocab)."""
        return np.stack([lp for lp, _ in self._answers(prefixes)])

    def prelogits(self, prefixes: list[tuple[int, ...]]) -> np.ndarray:
        """Final hidden state at the last position of each prefix (what the LM head maps to logits)."""
        return np.stack([h for _, h in self._answers(prefixes)])

    def head(self) -> tuple[np.ndarray, np.ndarray]:
        """The LM head's weight (vocab, hidden) and bias (vocab,), zeros when it has none."""
        layer = self.model.get_output_embeddings()
        weight = layer.weight.detach().numpy().copy()
        bias = layer.bias.detach().numpy().copy() if getattr(layer, "bias", None) is not None else np.zeros(weight.shape[0])
        return weight, bias

    def uncached_next_logprobs(self, prefixes: list[tuple[int, ...]]) -> np.ndarray:
        """The same answers computed afresh, one prefix per forward pass (for checking the cache)."""
        return np.stack([self._forward([tuple(p)])[0][0][-1] for p in prefixes])

    # ---- cache ----

    def _answers(self, prefixes) -> list[tuple[np.ndarray, np.ndarray]]:
        prefixes = [tuple(int(t) for t in p) for p in prefixes]
        for p in prefixes:
            if not p:
                raise ParameterError("a prefix needs at least one token (the prompt or <bos>)")
            if len(p) > self.max_length:
                raise ParameterError(f"a prefix of {len(p)} tokens is longer than the model's context of {self.max_length}")
        missing = list(dict.fromkeys(p for p in prefixes if p not in self._cache))
        self.ledger.cache_misses += len(missing)
        self.ledger.cache_hits += len(prefixes) - len(missing)
        fresh: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        inner = {p[:-1] for p in missing}  # a prefix of another missing prefix comes with that one's pass
        roots = [p for p in missing if p not in inner]
        for start in range(0, len(roots), self.batch_size):
            chunk = roots[start : start + self.batch_size]
            logps, hidden = self._forward(chunk)
            for seq, lp, h in zip(chunk, logps, hidden):
                for t in range(len(seq)):
                    fresh[seq[: t + 1]] = (lp[t], h[t])
        out = []
        for p in prefixes:
            if p in fresh:
                out.append(fresh[p])
            else:
                self._cache.move_to_end(p)
                out.append(self._cache[p])
        self._cache.update(fresh)
        for p in fresh:
            self._cache.move_to_end(p)
        while len(self._cache) > self.cache_entries:  # least recently used first
            self._cache.popitem(last=False)
        return out

    def _forward(self, seqs: list[tuple]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        torch = self.torch
        length = max(len(s) for s in seqs)
        ids = torch.zeros((len(seqs), length), dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.no_grad():
            out = self.model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        logp = torch.log_softmax(out.logits.float(), dim=-1).numpy()
        hidden = out.hidden_states[-1].float().numpy()
        self.ledger.forward_passes += 1
        self.ledger.tokens += int(mask.sum())
        return [logp[i, : len(s)] for i, s in enumerate(seqs)], [hidden[i, : len(s)] for i, s in enumerate(seqs)]
