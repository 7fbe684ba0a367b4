"""How ``pi_ref`` is decoded from a model: temperature, top-k and top-p (nucleus), applied in one place.

``pi_ref`` is then the tempered and truncated law, and everything built on it
follows that law: the target ``pi* ∝ pi_ref tau``, its exact values, every
sampler's proposals and weights, and the decoding hooks (which reweight
``pi_ref``, so a truncated token stays impossible). The order is the one
Hugging Face ``generate`` applies: temperature, then top-k, then top-p.

- temperature ``T``: ``pi_ref(a) ∝ p(a)^(1/T)``;
- top-k: only the ``k`` most likely tokens keep their mass (tokens tied
  with the ``k``-th are kept too);
- top-p: only the smallest set of most likely tokens whose mass reaches
  ``p`` is kept (at least one token).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import ParameterError


@dataclass(frozen=True)
class Decoding:
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 < t < math.inf):
            raise ParameterError(f"temperature must be a finite number > 0, got {t!r}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise ParameterError(f"top_k must be an integer >= 1 (or None: every token), got {k!r}")
        p = self.top_p
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1):
            raise ParameterError(f"top_p must be a number in (0, 1] (or None: every token), got {p!r}")

    @property
    def is_identity(self) -> bool:
        return self.temperature == 1 and self.top_k is None and (self.top_p is None or self.top_p == 1)

    def describe(self) -> str:
        parts = [f"temperature {self.temperature:g}"] if self.temperature != 1 else []
        parts += [f"top-k {self.top_k}"] if self.top_k is not None else []
        parts += [f"top-p {self.top_p:g}"] if self.top_p is not None and self.top_p != 1 else []
        return ", ".join(parts) or "the model's own law"

    def as_dict(self) -> dict:
        return {"temperature": self.temperature, "top_k": self.top_k, "top_p": self.top_p}

    def apply(self, log_probs):
        """Log-weights of ``pi_ref`` over the columns of a (rows, A) tensor of the model's log-probabilities
        (not normalised: the caller takes the log-softmax); truncated tokens get ``-inf``."""
        import torch

        if self.is_identity:
            return log_probs
        q = log_probs / self.temperature if self.temperature != 1 else log_probs
        if self.top_k is not None and self.top_k < q.shape[1]:
            kth = torch.topk(q, self.top_k, dim=1).values[:, -1:]
            q = q.masked_fill(q < kth, -math.inf)
        if self.top_p is not None and self.top_p < 1:
            order = torch.argsort(q, dim=1, descending=True)
            probs = torch.softmax(q.double(), dim=1).gather(1, order)
            before = torch.cumsum(probs, dim=1) - probs  # the mass of the tokens more likely than each
            drop = before >= self.top_p
            drop[:, 0] = False  # the most likely token always stays
            q = q.masked_fill(torch.zeros_like(drop).scatter(1, order, drop), -math.inf)
        return q
