"""Many chains of a tree walk at once, with the fixed-T-and-restart output rule.

A walk is described by a small object with
- ``num_states`` and ``start`` (an integer state),
- ``laziness``: the probability that a chain stays put without looking at anything,
- ``kernel(oracle, states) -> (next_states, weights)``: the non-lazy move of each
  chain, as candidate next states (k, m) and nonnegative weights (k, m), one
  column per chain; it
  asks the oracle for what it needs, and the oracle counts it,
- ``node_of(states)``: the tree node a state sits at.

The same kernel drives the sampler here and the exact transition matrix in
``ttsample.eval.exact_laws``, so the law computed there is the law sampled here.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..oracles.ledger import CountedOracle, Ledger
from .base import Progress, SampleResult, categorical, check_budget, check_sample_count

MAX_CHAINS = 1 << 17


def advance(walk, oracle, states: np.ndarray, steps: int, rng: np.random.Generator, on_step=None) -> np.ndarray:
    """Run every chain ``steps`` steps in place; returns ``states``."""
    m = states.size
    everyone = np.arange(m)
    for t in range(steps):
        movers = everyone if walk.laziness == 0 else np.flatnonzero(rng.random(m) >= walk.laziness)
        candidates, weights = walk.kernel(oracle, states[movers])
        states[movers] = candidates[categorical(rng, weights), np.arange(movers.size)]
        if on_step is not None:
            on_step(t)
    return states


def sample_with_restarts(
    walk,
    oracle,
    n_samples: int,
    steps: int,
    rng: np.random.Generator,
    ledger: Ledger,
    *,
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> np.ndarray:
    """Run chains from ``walk.start`` for ``steps`` steps; keep those that end at a leaf.

    Chains that end at an internal node are restarts. Rounds are sized from the
    leaf fraction seen so far (first guess ``walk.leaf_fraction_guess``).
    Returns leaf node ids, in chain order.
    """
    leaf_start = oracle.tree.leaf_start
    out: list[np.ndarray] = []
    got = 0
    tries = leaves = 0
    while got < n_samples:
        need = n_samples - got
        p_leaf = leaves / tries if leaves else walk.leaf_fraction_guess
        m = int(min(MAX_CHAINS, max(1, np.ceil(need / p_leaf))))
        states = np.full(m, walk.start, dtype=np.int64)
        report_every = max(1, steps // 100)

        def on_step(t: int) -> None:
            check_budget(ledger, max_queries, walk.name)
            if progress is not None and t % report_every == 0:
                progress(got + min(need, m * p_leaf) * t / steps, n_samples)

        advance(walk, oracle, states, steps, rng, on_step)
        nodes = walk.node_of(states)
        found = nodes[nodes >= leaf_start]
        ledger.steps += m * steps
        ledger.tries += m
        ledger.restarts += m - found.size
        tries += m
        leaves += found.size
        out.append(found[:need])
        got += out[-1].size
        ledger.surplus += found.size - out[-1].size
        if progress is not None:
            progress(got, n_samples)
    return np.concatenate(out)


def schedule_rho(oracle) -> float:
    """The rho the default walk lengths are computed from (beyond 4 they are uncalibrated)."""
    return min(oracle.rho, 4.0) if np.isfinite(oracle.log_rho) else 4.0


def run_walk_sampler(
    walk, oracle, n_samples: int, rng: np.random.Generator, steps: int, info: dict,
    max_queries: float | None = None, progress: Progress | None = None,
) -> SampleResult:
    """The restart rule for ``walk`` behind a fresh ledger; ``info`` records the walk's parameters."""
    n_samples = check_sample_count(n_samples)
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ParameterError(f"steps must be an integer >= 1, got {steps!r}")
    ledger = Ledger()
    with ledger.timed():
        leaves = sample_with_restarts(
            walk, CountedOracle(oracle, ledger), n_samples, int(steps), rng, ledger,
            max_queries=max_queries, progress=progress,
        )
    return SampleResult(leaves - oracle.tree.leaf_start, ledger, {"steps": int(steps), **info})
