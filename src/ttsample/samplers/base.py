"""What every sampler returns, and the small pieces they share."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import BudgetExhaustedError, ParameterError
from ..ledger import Ledger
from ..logspace import effective_sample_size

# progress(done, total): called now and then by long runs, in units of samples
Progress = Callable[[float, float], None]


@dataclass
class SampleResult:
    samples: np.ndarray  # leaves, by tree.leaf_index (lexicographic order on a complete tree; handles on a trie), int64
    ledger: Ledger
    params: dict = field(default_factory=dict)  # what rebuilds the run: the parameters the sampler actually used
    # what the run observed and nothing rebuilding it needs: traces, first-sample costs, acceptance, votes
    diagnostics: dict = field(default_factory=dict)
    log_weights: np.ndarray | None = None  # importance weights of the samples, where the sampler weights its output
    weighted: bool = False  # True: the samples are a weighted set (use log_weights), not draws from the target
    stopped: str | None = None  # why the run ended before drawing every sample asked (a budget's name, interrupted)
    log_z: float | None = None  # the run's estimate of log Z, where it makes one (SMC's normaliser)

    @property
    def ess(self) -> float | None:
        """The effective sample size of ``log_weights`` (None where the output carries none)."""
        return None if self.log_weights is None else effective_sample_size(self.log_weights)

    @property
    def info(self) -> dict:
        """Everything the run reported in one dict, as records write it (ledger.json's ``info``): the params, the
        diagnostics, and ``log_z`` and ``ess`` where set."""
        extra = {name: value for name, value in (("log_z", self.log_z), ("ess", self.ess)) if value is not None}
        return {**self.params, **self.diagnostics, **extra}


def categorical(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One index per column of a (k, m) array of nonnegative, not necessarily normalised weights.

    Columns, not rows: with few candidates and many chains, reductions over the
    short first axis run as whole-array operations.
    """
    cum = np.cumsum(weights, axis=0)
    u = rng.random(weights.shape[1]) * cum[-1]
    return np.sum(cum <= u, axis=0)


def check_sample_count(n_samples: int) -> int:
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ParameterError(f"the number of samples must be an integer >= 1, got {n_samples!r}")
    return int(n_samples)


def check_budget(ledger: Ledger, max_queries: float | None, what: str) -> None:
    if max_queries is not None and ledger.queries_total > max_queries:
        raise BudgetExhaustedError(
            f"{what} used {ledger.queries_total:,} queries, over the budget of {max_queries:,.0f}; raise max_queries "
            "(ttsample sample: --max-queries; ttsample generate: --set max_queries=N) or ask for fewer samples",
            ledger,
        )
