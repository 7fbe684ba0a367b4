"""The Sinclair–Jerrum random walk (1989), also the walk of VGB, with optional leaf boosting.

Weights ``w(v) = mu_hat(v)`` at internal nodes and ``w(x) = mu*(x)`` at leaves.
Lazy: stay with probability 1/2; otherwise move to the parent with weight
``w(v)`` or to child ``c`` with weight ``w(c)``. A leaf moves to its parent,
or, with leaf boost ``K``, stays with weight ``(K - 1) w(x)`` (a self-loop).
The walk is reversible with stationary law ``pi(v) ∝ [v != root] w(v) +
sum_c w(c)`` (``K mu*(x)`` at leaves), so conditioned on a leaf it is exactly
``mu*`` whatever the internal errors.

Output rule: run ``T`` steps from the root, output the leaf if the chain is at
one, else restart. The output law tends to ``mu*`` as ``T`` grows; its
distance at finite ``T`` is computed exactly on enumerable trees
(``ttsample.eval.exact_laws``). Sourced: the walk and its mixing bound
``O(rho**4 n**2 log(n/delta))`` (Sinclair & Jerrum 1989). Ours: leaf boosting
with ``K = 2n`` (leaf mass at stationarity >= 1/(1 + rho), so few restarts)
and the default ``T`` schedule, calibrated on exact laws (docs/walk_schedule.md).
Cost: ``b + 1`` queries per non-lazy step at an internal node, none at leaves.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from .base import Progress, SampleResult
from .chains import run_walk_sampler, schedule_rho


class SinclairJerrumWalk:
    laziness = 0.5

    def __init__(self, tree, leaf_boost: float = 1.0):
        if not np.isfinite(leaf_boost) or leaf_boost < 1:
            raise ParameterError(f"leaf_boost must be a finite number >= 1, got {leaf_boost}")
        self.tree = tree
        self.leaf_boost = float(leaf_boost)
        self.name = "walk" if leaf_boost == 1 else "walk-boosted"
        self.start = 0
        # stationary leaf mass is K / (K + 2 S + 1) with S = sum of internal non-root weights ~ n - 1
        self.leaf_fraction_guess = self.leaf_boost / (self.leaf_boost + 2 * tree.depth - 1)

    @property
    def num_states(self) -> int:
        return self.tree.num_nodes

    def node_of(self, states: np.ndarray) -> np.ndarray:
        return states

    def kernel(self, oracle, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows: parent, children 0..b-1, self; one column per chain."""
        tree = self.tree
        b = tree.branching
        leaf = tree.is_leaf(ids)
        inner = np.flatnonzero(~leaf)
        v = ids[inner]
        up = inner[v != 0]
        kids = tree.children(v).T
        candidates = np.empty((b + 2, ids.size), dtype=np.int64)
        candidates[0] = tree.parent(ids)
        candidates[1 : b + 1] = ids  # leaves have no children: these rows get weight 0
        candidates[1 : b + 1, inner] = kids
        candidates[b + 1] = ids
        log_w = np.full((b + 2, ids.size), -np.inf)
        answers = oracle.log_weight(np.concatenate([ids[up], kids.ravel()]))
        log_w[0, up] = answers[: up.size]
        log_w[1 : b + 1, inner] = answers[up.size :].reshape(b, -1)

        log_w[0, leaf] = 0.0  # w(x) cancels: parent 1 against self-loop K - 1
        if self.leaf_boost > 1:
            log_w[b + 1, leaf] = np.log(self.leaf_boost - 1.0)
        top = log_w.max(axis=0)
        unreachable = np.isneginf(top)  # zero weight all round: no chain gets here; stay
        log_w[b + 1, unreachable] = top[unreachable] = 0.0
        return candidates, np.exp(log_w - top)


def default_walk_steps(depth: int, rho: float, leaf_boost: float) -> int:
    """Our calibrated ``T``: ``2.5 rho (n+1)**2`` plain, ``10 rho (n+1)**2`` boosted.

    Chosen so that the output law is within 0.01 of ``mu*`` in total variation
    on every instance of the calibration (docs/walk_schedule.md).
    """
    c = 2.5 if leaf_boost == 1 else 10.0
    return int(np.ceil(c * rho * (depth + 1) ** 2))


def sample_walk(
    oracle,
    n_samples: int,
    rng: np.random.Generator,
    *,
    steps: int | None = None,
    leaf_boost: float | None = None,
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> SampleResult:
    """Samples by the Sinclair–Jerrum walk with the T-steps-and-restart rule.

    ``leaf_boost=None`` is the plain walk (K = 1); ``sample_walk_boosted`` uses K = 2n.
    """
    walk = SinclairJerrumWalk(oracle.tree, 1.0 if leaf_boost is None else leaf_boost)
    if steps is None:
        steps = default_walk_steps(oracle.tree.depth, schedule_rho(oracle), walk.leaf_boost)
    return run_walk_sampler(walk, oracle, n_samples, rng, steps, {"leaf_boost": walk.leaf_boost}, max_queries, progress)


def sample_walk_boosted(oracle, n_samples: int, rng: np.random.Generator, **kwargs) -> SampleResult:
    """The Sinclair–Jerrum walk with leaf boost ``K = 2n`` (our construction)."""
    kwargs.setdefault("leaf_boost", 2.0 * oracle.tree.depth)
    return sample_walk(oracle, n_samples, rng, **kwargs)
