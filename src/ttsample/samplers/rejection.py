"""Independent tries with rejection, in batches: the loop JVV and uniform rejection share.

A try proposes a leaf and accepts it with a probability the sampler computes;
tries are independent, so a batch in order is a sequential run in order, and
the first sample's cost is exactly what the tries up to the first accepted one
asked (a one-try-at-a-time run from a fresh cache would pay no more, no less).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..errors import OracleBoundError
from ..ledger import Ledger
from .base import Progress, check_budget

MAX_BATCH = 1 << 16


def sample_by_rejection(
    propose: Callable[[int], tuple[np.ndarray, np.ndarray]],
    n_samples: int,
    expected_tries: float,
    rng: np.random.Generator,
    ledger: Ledger,
    *,
    name: str,
    broken_bound: str,
    queries_per_try: int,
    steps_per_try: int,
    asked: Callable[[np.ndarray], np.ndarray],
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, dict]:
    """Accepted leaf ids in try order, and the first sample's cost.

    ``propose(m)`` makes ``m`` tries (asking the oracle through ``ledger``) and
    returns their leaves and log acceptance probabilities; one above 0 means the
    oracle broke the bound the acceptance relies on (``broken_bound`` says so).
    Each try asks ``queries_per_try`` nodes, ``asked(leaves)`` are the distinct
    nodes a set of tries asked.
    """
    out: list[np.ndarray] = []
    got = 0
    first: dict = {}
    asked_before = np.zeros(0, dtype=np.int64)  # nodes asked by the tries before the first sample
    while got < n_samples:
        m = int(min(MAX_BATCH, max(1, np.ceil((n_samples - got) * expected_tries))))
        leaves, log_accept = propose(m)
        if np.any(log_accept > 1e-9):
            raise OracleBoundError(broken_bound)
        accept = np.log(rng.random(m)) < log_accept
        accepted = leaves[accept]
        if not first:
            k = int(np.argmax(accept)) + 1 if accept.any() else m
            asked_before = np.union1d(asked_before, asked(leaves[:k]))
            if accept.any():
                first = {"first_sample_queries": ledger.queries_total - (m - k) * queries_per_try,
                         "first_sample_distinct": int(asked_before.size)}
        take = accepted[: n_samples - got]
        out.append(take)
        got += take.size
        ledger.steps += m * steps_per_try
        ledger.record_tries(m, accepted.size, take.size)
        check_budget(ledger, max_queries, name)
        if progress is not None:
            progress(got, n_samples)
    return np.concatenate(out), first
