"""Best-of-n: each output is the highest-reward response among ``candidates`` draws from ``pi_ref``.

Not a sampler of ``pi*``: a reward maximiser, the usual baseline. Its output
law is ``pi_ref`` pushed towards high reward; its KL to ``pi_ref`` is at most
``log k - (k - 1) / k`` for ``k`` candidates (ALGORITHMS.md §8). With
``candidates=1`` it is plain decoding from ``pi_ref``.

The reward compared is ``beta * log tau`` = ``r`` for a tilt and ``tau`` =
``1{r > 0}`` for a constraint (so among constraint candidates every valid one
ties); ties go to the first candidate drawn. All ``n * candidates`` responses
are decoded together (one ``task.sample_suffix`` call per batch); the reward is
called once per distinct response. No oracle is asked.
"""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError
from ...samplers.base import Progress, SampleResult, check_sample_count
from .base import Budget, lm_run
from .outcome_rs import leaf_log_tau

MAX_BATCH = 1 << 14  # responses decoded per sample_suffix call


def sample_best_of_n(task, oracle, n: int, rng: np.random.Generator, *, candidates: int = 8,
                     budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n`` outputs, each the best of ``candidates`` fresh ``pi_ref`` responses (first of the best on ties).

    ``oracle`` is not used (``None`` is fine). ``info["candidates"]``: for each
    output, the list of ``(leaf handle, reward)`` of its candidates in draw
    order (reward as in the module docstring); ``info["rewards"]``: the
    outputs' rewards. Ledger: tries = ``n * candidates``, restarts = the
    candidates not chosen, ``steps`` = tokens decoded.
    """
    n = check_sample_count(n)
    if not isinstance(candidates, (int, np.integer)) or candidates < 1:
        raise ParameterError(f"candidates must be an integer >= 1, got {candidates!r}")
    k = int(candidates)
    cache: dict = {}
    leaves = np.empty((n, k), dtype=np.int64)
    log_tau = np.empty((n, k))
    per_batch = max(1, MAX_BATCH // k)  # outputs per batch
    done = 0  # outputs whose candidates are all decoded and scored
    with lm_run(task, oracle, budget, progress) as run:
        ledger = run.ledger
        for start in range(0, n, per_batch):
            stop = min(n, start + per_batch)
            drawn = task.sample_suffix(np.zeros((stop - start) * k, dtype=np.int64), rng)
            leaves[start:stop] = drawn.reshape(-1, k)
            log_tau[start:stop] = leaf_log_tau(task, drawn, cache).reshape(-1, k)
            ledger.steps += int(task.tree.depth_of(drawn).sum())
            done = stop
            run.progress(stop, n)
    ledger.record_tries(done * k, done, done)
    leaves, log_tau = leaves[:done], log_tau[:done]
    reward = np.exp(log_tau) if task.beta is None else task.beta * log_tau
    best = np.argmax(reward, axis=1)  # the first maximum: ties go to the first candidate drawn
    rows = np.arange(done)
    info = {
        "candidates": [list(zip(leaves[i].tolist(), reward[i].tolist())) for i in range(done)],
        "rewards": reward[rows, best],
        "num_candidates": k,
    }
    return run.finish(SampleResult(leaves[rows, best], ledger, info))
