"""Many chains of a tree walk at once, with the fixed-T-and-restart output rule.

A walk is described by a small object with
- ``tree``, ``name`` (for messages), ``num_states`` and ``start`` (an integer state),
- ``leaf_fraction_guess``: a first guess of the share of runs that end at a leaf,
  which sizes the first rounds and the point where the restart loop gives up,
- ``laziness``: the probability that a chain stays put without looking at anything,
- ``kernel(oracle, states) -> (next_states, weights)``: the non-lazy move of each
  chain, as candidate next states (k, m) and nonnegative weights (k, m), one
  column per chain; it
  asks the oracle for what it needs, and the oracle counts it,
- ``node_of(states)``: the tree node a state sits at,
- optionally ``step(oracle, states, rng) -> next_states``: a draw from the
  kernel that does not list every candidate (the proposal kernel's; a walk
  without it is stepped by drawing from ``kernel``).

The same kernel drives the sampler here and the exact transition matrix in
``ttsample.eval.exact_laws``, so the law computed there is the law sampled
here; a walk with its own ``step`` is checked against its kernel by Monte Carlo.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..errors import NoLeafReachedError, ParameterError
from ..ledger import Ledger
from ..oracles.counted import CountedOracle
from ..trees.protocol import TreeProtocol
from .base import Progress, SampleResult, categorical, check_budget, check_sample_count


class Walk(Protocol):
    """A walk as this module drives it (the module docstring says what each member means); a walk may also have
    ``step(oracle, states, rng)``, a draw from ``kernel`` that lists no candidates."""

    tree: TreeProtocol
    name: str
    start: int
    leaf_fraction_guess: float
    laziness: float

    @property
    def num_states(self) -> int: ...

    def kernel(self, oracle, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def node_of(self, states: np.ndarray) -> np.ndarray: ...


MAX_CHAINS = 1 << 17
MIN_TRIES_BEFORE_GIVING_UP = 10_000
ALONE_TRIES = 20  # chains run one at a time until the first leaf, at most this many over the leaf-fraction guess


def advance(walk: Walk, oracle, states: np.ndarray, steps: int, rng: np.random.Generator, on_step=None) -> np.ndarray:
    """Run every chain ``steps`` steps in place; returns ``states``."""
    m = states.size
    everyone = np.arange(m)
    step = getattr(walk, "step", None)
    for t in range(steps):
        movers = everyone if walk.laziness == 0 else np.flatnonzero(rng.random(m) >= walk.laziness)
        if step is not None:
            states[movers] = step(oracle, states[movers], rng)
        else:
            candidates, weights = walk.kernel(oracle, states[movers])
            states[movers] = candidates[categorical(rng, weights), np.arange(movers.size)]
        if on_step is not None:
            on_step(t)
    return states


def sample_with_restarts(
    walk: Walk,
    oracle,
    n_samples: int,
    steps: int,
    rng: np.random.Generator,
    ledger: Ledger,
    *,
    max_queries: float | None = None,
    progress: Progress | None = None,
    kept: list | None = None,
    alone_tries: float | None = None,
) -> tuple[np.ndarray, dict]:
    """Run chains from ``walk.start`` for ``steps`` steps; keep those that end at a leaf.

    Chains that end at an internal node are restarts. Until the first leaf,
    chains run one at a time (as a user who wants one sample would run them),
    for at most ``ALONE_TRIES / leaf_fraction_guess`` tries; then rounds are
    sized from the leaf fraction seen so far. Returns leaf node ids, in chain
    order, and the first sample's cost from the fresh cache
    (``first_sample_queries``, ``first_sample_distinct``; empty if the first
    leaf came from a batch). Raises ``NoLeafReachedError`` when no chain at all
    has ended at a leaf after ``give_up`` tries. ``kept``: a list of the
    caller's that each round's leaves are appended to, so that a run stopped
    mid-way still holds the rounds it completed. ``alone_tries``: how many
    chains may run one at a time before the first leaf (default
    ``ALONE_TRIES / leaf_fraction_guess``); 0 batches from the first round,
    which is what a model that answers a batch in one pass wants.
    """
    n_samples = check_sample_count(n_samples)
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ParameterError(f"steps must be an integer >= 1, got {steps!r}")
    steps = int(steps)
    guess = walk.leaf_fraction_guess
    # On the calibration instances (docs/walk_schedule.md) a walk at its default T ends at a leaf with
    # probability above guess / 2, so a working walk finds none in 50 / guess tries with probability
    # below e**-25; no leaf then means T is too short for any chain to get there, or the walk is periodic.
    give_up = max(MIN_TRIES_BEFORE_GIVING_UP, 50 / guess)
    alone = ALONE_TRIES / guess if alone_tries is None else alone_tries
    out: list[np.ndarray] = [] if kept is None else kept
    first: dict = {}
    got = 0
    tries = leaves = 0
    while got < n_samples:
        if not leaves and tries >= give_up:
            raise NoLeafReachedError(
                f"{walk.name}: none of {tries:,} chains ended at a leaf after T = {steps} steps; use a longer "
                f"walk (--steps; a chain needs at least {oracle.tree.depth} steps to reach a leaf at depth "
                f"{oracle.tree.depth}), or, if the walk has no laziness, it may be periodic and never at a "
                "leaf at time T"
            )
        need = n_samples - got
        # none found yet: the guess, lowered so that each round is as large as all before it together
        p_leaf = leaves / tries if leaves else min(guess, need / max(tries, 1))
        m = 1 if not leaves and tries < alone else int(min(MAX_CHAINS, max(1, np.ceil(need / p_leaf))))
        states = np.full(m, walk.start, dtype=np.int64)
        report_every = max(1, steps // 100)

        def on_step(t: int) -> None:
            check_budget(ledger, max_queries, walk.name)
            if progress is not None and t % report_every == 0:
                progress(got + min(need, m * p_leaf) * t / steps, n_samples)

        advance(walk, oracle, states, steps, rng, on_step)
        nodes = walk.node_of(states)
        found = nodes[oracle.tree.is_leaf(nodes)]
        ledger.steps += m * steps
        tries += m
        leaves += found.size
        if m == 1 and found.size and not first:
            first = {"first_sample_queries": ledger.queries_total, "first_sample_distinct": ledger.queries_distinct}
        out.append(found[:need])
        got += out[-1].size
        ledger.record_tries(m, found.size, out[-1].size)
        if progress is not None:
            progress(got, n_samples)
    return np.concatenate(out), first


ADAPT_Z = 3.48  # two-sided normal quantile at 5e-4: with two statistics, a mixed walk doubles T at most 1e-3 of rounds


def adapt_steps(walk: Walk, oracle, start: int, most: int, chains: int, rng: np.random.Generator, ledger: Ledger,
                progress: Progress | None = None) -> tuple[int, list[dict]]:
    """A walk length chosen by doubling: ``T`` from ``start`` until the chains look mixed by ``T / 2``, at most
    ``most`` (ours; docs/walk_schedule.md says what it catches and what it misses).

    Each round runs ``chains`` chains from the start for ``T`` steps and compares every chain at ``T / 2`` with
    itself at ``T``: its depth, and whether it is at a leaf. Once the walk has mixed by ``T / 2`` both times
    have the stationary law, so each mean difference is 0; a paired z-statistic above ``ADAPT_Z`` in either
    says it has not, and ``T`` doubles. It is a necessary check, not a sufficient one: a walk whose depths
    have settled while it is still far from stationary among the subtrees passes. The rounds' chains are a
    pilot and not kept, so the samples drawn afterwards are the plain fixed-``T`` walk's. Returns ``T`` and a
    trace per round (``steps``, ``z`` of the depths and ``z_leaf`` of the leaf indicators, mean depths at
    ``T / 2`` and ``T``, ``mixed``); the last entry's ``mixed`` is False when ``most`` was reached first.
    """
    if not (isinstance(chains, (int, np.integer)) and chains >= 2):
        raise ParameterError(f"the adaptive walk length needs at least 2 pilot chains, got {chains!r}")
    steps, trace = max(2, int(start)), []
    while True:
        states = np.full(int(chains), walk.start, dtype=np.int64)
        half = {}

        def on_step(t: int) -> None:
            if t == steps // 2 - 1:
                half["node"] = walk.node_of(states).copy()  # node_of may be a view of states, which move on
            if progress is not None and t % max(1, steps // 100) == 0:
                progress(0, 1)  # the pilot draws no sample: this lets a budget or Ctrl-C stop it

        advance(walk, oracle, states, steps, rng, on_step)
        ledger.steps += int(chains) * steps
        tree, end = oracle.tree, walk.node_of(states)
        depth = tree.depth_of(end) - tree.depth_of(half["node"])
        leaf = tree.is_leaf(end).astype(float) - tree.is_leaf(half["node"])
        z, z_leaf = _paired_z(depth), _paired_z(leaf)
        mixed = abs(z) < ADAPT_Z and abs(z_leaf) < ADAPT_Z
        trace.append({"steps": steps, "z": z, "z_leaf": z_leaf, "depth_half": float(tree.depth_of(half["node"]).mean()),
                      "depth_end": float(tree.depth_of(end).mean()), "mixed": mixed})
        if mixed or steps >= most:
            return steps, trace
        steps = min(2 * steps, int(most))


def _paired_z(diff: np.ndarray) -> float:
    """The z-statistic of the mean of paired differences (0 when they do not vary)."""
    spread = diff.std(ddof=1)
    return float(diff.mean() / (spread / np.sqrt(diff.size))) if spread > 0 else 0.0


def schedule_rho(oracle) -> float:
    """The rho the default walk lengths are computed from (beyond 4 they are uncalibrated)."""
    return min(oracle.rho, 4.0) if np.isfinite(oracle.log_rho) else 4.0


def run_walk_sampler(
    walk: Walk, oracle, n_samples: int, rng: np.random.Generator, steps: int, params: dict,
    max_queries: float | None = None, progress: Progress | None = None,
) -> SampleResult:
    """The restart rule for ``walk`` behind a fresh ledger; ``params``: the walk's parameters besides ``steps``."""
    ledger = Ledger()
    with ledger.timed():
        leaves, first = sample_with_restarts(
            walk, CountedOracle(oracle, ledger), n_samples, steps, rng, ledger,
            max_queries=max_queries, progress=progress,
        )
    return SampleResult(oracle.tree.leaf_index(leaves), ledger, {"steps": int(steps), **params}, first)
