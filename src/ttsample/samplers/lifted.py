"""A lifted (non-reversible) walk on the tree, after Hayes & Sinclair (2010).

Our construction (Hayes & Sinclair's exact chain is not available to us; see
ALGORITHMS.md §3). With ``U(v) = w(v)`` (0 at the root), ``D(v) = sum_c w(c)``
(0 at leaves) and ``M(v) = max(U, D)``, states are ``(v, down)`` and ``(v, up)``:

- ``(v, down)``: go to ``(c, down)`` with probability ``w(c)/M(v)``, else flip to ``(v, up)``;
- ``(v, up)``: go to ``(parent, up)`` with probability ``U(v)/M(v)``, else flip to ``(v, down)``.

The stationary law is ``pi(v, .) ∝ M(v)``, and ``M(x) = mu*(x)`` at leaves, so
the leaf law at stationarity is exactly ``mu*``. With an exact oracle a chain
sweeps root to leaf in ``n`` steps. Leaf holding ``K`` (a chain at a leaf
takes its move with probability ``1/K``) multiplies the leaf states'
stationary mass by ``K`` without changing the leaf law, and makes the chain
aperiodic; default ``K = 2n``. Output rule: ``T`` steps from ``(root, down)``,
restart unless at a leaf. The conjecture to measure: cost
``Theta(n + eps n**2)`` for ``rho = 1 + eps``.
Cost: ``b + 1`` queries per step at an internal node, none at leaves.
State encoding: ``2 * node + direction`` with down = 0, up = 1.
"""

from __future__ import annotations

import numpy as np

from ..errors import ParameterError
from ..logspace import logsumexp
from .base import Progress, SampleResult
from .chains import run_walk_sampler, schedule_rho


class LiftedWalk:
    laziness = 0.0
    name = "lifted"

    def __init__(self, tree, leaf_hold: float):
        if not np.isfinite(leaf_hold) or leaf_hold < 1:
            raise ParameterError(f"leaf_hold must be a finite number >= 1, got {leaf_hold}")
        self.tree = tree
        self.leaf_hold = float(leaf_hold)
        self.start = 0  # (root, down)
        self.leaf_fraction_guess = self.leaf_hold / (self.leaf_hold + tree.depth)

    @property
    def num_states(self) -> int:
        return 2 * self.tree.num_nodes

    def node_of(self, states: np.ndarray) -> np.ndarray:
        return states >> 1

    def kernel(self, oracle, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows: flip, then children (going down) or parent in row 1 (going up), then self."""
        tree = self.tree
        b = tree.branching
        ids = states >> 1
        up = (states & 1).astype(bool)
        is_leaf = tree.is_leaf(ids)
        inner = np.flatnonzero(~is_leaf)
        v = ids[inner]
        kids = tree.children(v).T
        candidates = np.empty((b + 2, ids.size), dtype=np.int64)
        candidates[0] = states ^ 1
        candidates[1 : b + 1] = states  # leaves have no children: these rows get weight 0
        candidates[1 : b + 1, inner] = 2 * kids  # (c, down)
        candidates[1, up] = 2 * tree.parent(ids[up]) + 1  # (parent, up)
        candidates[b + 1] = states
        weights = np.zeros((b + 2, ids.size))

        has_parent = v != 0
        answers = oracle.log_weight(np.concatenate([v[has_parent], kids.ravel()]))
        n_up = int(has_parent.sum())
        log_u = np.full(v.size, -np.inf)
        log_u[has_parent] = answers[:n_up]
        log_c = answers[n_up:].reshape(b, -1)
        log_d = logsumexp(log_c, axis=0)
        log_m = np.maximum(log_u, log_d)
        log_m[~np.isfinite(log_m)] = 0.0  # a node no chain can reach (zero weight all round)

        down = ~up[inner]
        rows_down, rows_up = inner[down], inner[~down]
        weights[1 : b + 1, rows_down] = np.exp(log_c[:, down] - log_m[down])
        weights[0, rows_down] = np.maximum(0.0, 1.0 - np.exp(log_d[down] - log_m[down]))
        p_up = np.exp(log_u[~down] - log_m[~down])
        weights[1, rows_up] = p_up
        weights[0, rows_up] = np.maximum(0.0, 1.0 - p_up)

        leaf = np.flatnonzero(is_leaf)
        move = 1.0 / self.leaf_hold
        weights[np.where(up[leaf], 1, 0), leaf] = move  # (x, down) flips; (x, up) climbs
        weights[b + 1, leaf] = 1.0 - move
        return candidates, weights


def default_lifted_steps(depth: int, rho: float) -> int:
    """Our calibrated ``T``: ``12 (n+1) (1 + eps (n+1) / 2)`` with ``eps = rho - 1``.

    Linear in ``n`` when ``eps = O(1/n)``, quadratic at constant ``eps``; chosen
    so that the output law is within 0.01 of ``mu*`` in total variation on
    every instance of the calibration (docs/walk_schedule.md).
    """
    eps = rho - 1.0
    return int(np.ceil(12.0 * (depth + 1) * (1.0 + eps * (depth + 1) / 2.0)))


def sample_lifted(
    oracle,
    n_samples: int,
    rng: np.random.Generator,
    *,
    steps: int | None = None,
    leaf_hold: float | None = None,
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> SampleResult:
    """Samples by the lifted walk with leaf holding and the T-steps-and-restart rule."""
    walk = LiftedWalk(oracle.tree, 2.0 * oracle.tree.depth if leaf_hold is None else leaf_hold)
    if steps is None:
        steps = default_lifted_steps(oracle.tree.depth, schedule_rho(oracle))
    return run_walk_sampler(walk, oracle, n_samples, rng, steps, {"leaf_hold": walk.leaf_hold}, max_queries, progress)
