"""OutcomeLevelRS: whole responses from ``pi_ref``, each accepted with probability ``tau(y) / max tau``.

Exact: an accepted response follows ``pi*(y) ∝ pi_ref(y) tau(y)`` whatever
the task, provided ``max_log_tau`` bounds ``log tau`` on every response (a
response above it stops the run with ``OracleBoundError``: the acceptance
would need a probability above 1). The price is the acceptance rate,
``E_pi_ref[tau] / max tau = Z / max tau``, which for a constraint is the
probability that ``pi_ref`` satisfies it: exponentially small in the horizon
for most constraints (the baseline of VGB, ALGORITHMS.md §4).

Tries are drawn in batches (one ``task.sample_suffix`` call per batch, from
the root) and taken in order, so a batched run is a one-at-a-time run: the
first ``n`` accepted responses, in draw order. No oracle is asked; the reward
is called once per distinct response drawn.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import BudgetExhaustedError, OracleBoundError, ParameterError
from ...samplers.base import Progress, SampleResult, check_sample_count
from ..rewards import reward_name
from .base import Budget, lm_run

MAX_BATCH = 1 << 14  # responses decoded per sample_suffix call


def leaf_log_tau(task, leaves: np.ndarray, cache: dict | None = None) -> np.ndarray:
    """``task.log_tau`` at leaves, asking the reward once per distinct leaf (and not again for those in ``cache``).

    The reward is a deterministic function of the text, so a response drawn
    twice is scored once; ``cache`` (leaf handle -> log tau) carries that over
    a whole run.
    """
    leaves = np.asarray(leaves, dtype=np.int64)
    if cache is None:
        cache = {}
    distinct, where = np.unique(leaves, return_inverse=True)
    fresh = np.array([v for v in distinct.tolist() if v not in cache], dtype=np.int64)
    if fresh.size:
        cache.update(zip(fresh.tolist(), task.log_tau(fresh).tolist()))
    return np.array([cache[v] for v in distinct.tolist()], dtype=np.float64)[where.reshape(leaves.shape)]


def log_acceptance(log_tau: np.ndarray, max_log_tau: float) -> np.ndarray:
    """``log (tau / max tau)``: the log-probability of accepting a response."""
    return log_tau - max_log_tau


def default_max_log_tau(task, max_log_tau: float | None) -> float:
    """The bound on ``log tau``: the one given, else the task's (0 for a constraint, from the reward's declared range
    for a tilt); a tilt whose reward declares no range needs it given."""
    if max_log_tau is None:
        bound = task.max_log_tau()
        if bound is None:
            raise ParameterError(
                f"the reward {reward_name(task.reward_function)} declares no range, so a tilt (beta given) needs "
                "max_log_tau, a bound on r / beta over every response (e.g. max r / beta): --set max_log_tau=X on "
                "the command line, max_log_tau=X in Python, or declare the range with "
                "ttsample.lm.rewards.Reward(function, name, bounds=(low, high))"
            )
        return bound
    if not isinstance(max_log_tau, (int, float, np.integer, np.floating)) or not math.isfinite(max_log_tau):
        raise ParameterError(f"max_log_tau must be a finite number, got {max_log_tau!r}")
    return float(max_log_tau)


def sample_outcome_rs(task, oracle, n: int, rng: np.random.Generator, *, max_log_tau: float | None = None,
                      max_tries: int | None = None, budget: Budget | None = None,
                      progress: Progress | None = None) -> SampleResult:
    """``n`` exact draws from ``pi*``: draw ``y ~ pi_ref``, accept with ``exp(log tau(y) - max_log_tau)``.

    ``oracle`` is not used (``None`` is fine). ``max_log_tau``: an upper bound
    on ``log tau``; by default 0 for a constraint and ``high / beta`` for a
    tilt whose reward declares its range ``(low, high)`` (every built-in
    does); required for a tilt whose reward declares none.
    ``max_tries``: at most this many responses are drawn, else
    ``BudgetExhaustedError`` (its ``ledger`` holds the costs so far).
    The ledger counts tries, restarts (rejected tries) and surplus (accepted
    beyond ``n`` in the last batch) by ``record_tries``, and ``steps`` = tokens
    decoded. ``diagnostics``: ``max_log_tau``, ``acceptance_rate`` (accepted / tried).
    """
    n = check_sample_count(n)
    bound = default_max_log_tau(task, max_log_tau)
    if max_tries is not None and (not isinstance(max_tries, (int, np.integer)) or max_tries < 1):
        raise ParameterError(f"max_tries must be an integer >= 1 or None, got {max_tries!r}")
    out: list[np.ndarray] = []
    got = tried = accepted_total = 0
    cache: dict = {}
    with lm_run(task, oracle, budget, progress) as run:
        ledger = run.ledger
        while got < n:
            # size a batch from the acceptance rate seen so far (optimistic before the first acceptance)
            rate = (accepted_total + 1) / (tried + 1)
            m = int(min(MAX_BATCH, max(1, math.ceil(1.2 * (n - got) / rate))))
            if max_tries is not None:
                if tried >= max_tries:
                    rate_seen = accepted_total / tried
                    need = (f"about {math.ceil(n / rate_seen)} tries would be needed" if accepted_total
                            else "none was accepted")
                    raise BudgetExhaustedError(
                        f"OutcomeLevelRS drew max_tries = {max_tries} responses and accepted {got} of the {n} asked: "
                        f"an acceptance rate of {rate_seen:.3g} ({need}); raise max_tries, lower max_log_tau to the "
                        "true max of log tau, or use a value-guided sampler",
                        ledger,
                    )
                m = min(m, max_tries - tried)
            leaves = task.sample_suffix(np.zeros(m, dtype=np.int64), rng)
            log_tau = leaf_log_tau(task, leaves, cache)
            if np.any(log_tau > bound + 1e-9):
                worst = int(np.argmax(log_tau))
                raise OracleBoundError(
                    f"log tau = {log_tau[worst]:.6g} on the response {task.text(leaves[worst:worst + 1])[0]!r} exceeds "
                    f"max_log_tau = {bound:.6g}; the acceptance tau / max tau needs a bound on every response: "
                    "raise max_log_tau"
                )
            accept = rng.random(m) < np.exp(log_acceptance(log_tau, bound))
            take = leaves[accept][: n - got]
            out.append(take)
            ledger.steps += int(task.tree.depth_of(leaves).sum())
            ledger.record_tries(m, int(accept.sum()), take.size)
            tried += m
            accepted_total += int(accept.sum())
            got += take.size
            run.progress(got, n)
    samples = np.concatenate(out) if out else np.empty(0, dtype=np.int64)
    seen = {"max_log_tau": bound, "acceptance_rate": accepted_total / tried if tried else float("nan")}
    return run.finish(SampleResult(samples, run.ledger, diagnostics=seen))
