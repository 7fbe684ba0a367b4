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


class NodeWalk:
    """What the walks on tree nodes share: states are node handles, the chain starts at the root, leaves are boosted by K."""

    def __init__(self, tree, leaf_boost: float = 1.0):
        if not np.isfinite(leaf_boost) or leaf_boost < 1:
            raise ParameterError(f"leaf_boost must be a finite number >= 1, got {leaf_boost}")
        self.tree = tree
        self.leaf_boost = float(leaf_boost)
        self.start = 0

    @property
    def num_states(self) -> int:
        return self.tree.num_nodes

    def node_of(self, states: np.ndarray) -> np.ndarray:
        return states


class SinclairJerrumWalk(NodeWalk):
    laziness = 0.5

    def __init__(self, tree, leaf_boost: float = 1.0):
        super().__init__(tree, leaf_boost)
        self.name = "walk" if leaf_boost == 1 else "walk-boosted"
        # stationary leaf mass is K / (K + 2 S + 1) with S = sum of internal non-root weights ~ n - 1
        self.leaf_fraction_guess = self.leaf_boost / (self.leaf_boost + 2 * tree.depth - 1)

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


class ProposalWalk(NodeWalk):
    """The Sinclair–Jerrum walk with a proposal kernel, for trees too wide to list every child.

    Our construction (ALGORITHMS.md §4, "Large vocabularies"): from ``v``,
    propose the parent or, with probability 1/2 each, a child ``c ~ q(. | v)``
    drawn by the oracle (``pi_ref`` on a language model, uniform on the lab's
    trees); the root proposes no parent and a leaf no child (the proposal then
    stays). Accept by Metropolis–Hastings against ``pi(v) ∝ w(v)`` at internal
    nodes and ``K w(x)`` at leaves:

        child:  min(1, K_c w(c) / (w(v) q(c | v)))     parent:  min(1, w(p) q(v | p) / (K_v w(v)))

    with ``K_c = K`` at leaves and 1 elsewhere. With ``w = pi_ref V_hat`` and
    ``q = pi_ref`` the ratio is ``V_hat(target) / V_hat(v)``: accepted by the
    value ratio. The chain is reversible, so its leaf law at stationarity is
    ``∝ w(x) = mu*(x)`` whatever the internal errors: the same as the dense
    kernel's, whose internal law differs (``w(v) + sum_c w(c)``). Not lazy:
    rejections make it aperiodic. Cost per step: the proposal (one model
    answer at ``v``) and two weights (``v`` and the proposed node), not ``b + 1``.
    """

    laziness = 0.0

    def __init__(self, tree, leaf_boost: float = 1.0):
        super().__init__(tree, leaf_boost)
        self.log_boost = float(np.log(leaf_boost))
        self.name = "walk-proposal"
        # stationary leaf mass is K / (K + S) with S = sum of internal weights ~ n (each level sums to ~1)
        self.leaf_fraction_guess = self.leaf_boost / (self.leaf_boost + tree.depth)

    def _log_pi(self, ids: np.ndarray, log_w: np.ndarray) -> np.ndarray:
        return np.where(self.tree.is_leaf(ids), log_w + self.log_boost, log_w)

    def kernel(self, oracle, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Every move with its probability (for exact laws; needs ``oracle.children``). Rows: parent, children, self."""
        tree = self.tree
        b = tree.branching
        leaf = tree.is_leaf(ids)
        inner = np.flatnonzero(~leaf)
        has_parent = np.flatnonzero(ids != 0)
        candidates = np.empty((b + 2, ids.size), dtype=np.int64)
        candidates[0] = tree.parent(ids)
        candidates[1 : b + 1] = ids
        candidates[b + 1] = ids
        probs = np.zeros((b + 2, ids.size))
        with np.errstate(divide="ignore", invalid="ignore"):
            log_pi_v = self._log_pi(ids, oracle.log_weight(ids))
            v, p = ids[has_parent], candidates[0, has_parent]
            log_up = oracle.log_weight(p) + oracle.proposal_log_prob(v) - log_pi_v[has_parent]
            probs[0, has_parent] = 0.5 * np.exp(np.minimum(0.0, np.nan_to_num(log_up, nan=-np.inf)))
            if inner.size:
                kids, log_w = oracle.children(ids[inner])  # (k, b)
                log_q = oracle.proposal_log_prob(kids)
                log_down = np.minimum(log_q, self._log_pi(kids, log_w) - log_pi_v[inner, None])
                candidates[1 : b + 1, inner] = kids.T
                probs[1 : b + 1, inner] = 0.5 * np.exp(np.nan_to_num(log_down, nan=-np.inf)).T
        probs[b + 1] = np.maximum(0.0, 1.0 - probs[: b + 1].sum(axis=0))
        return candidates, probs

    def step(self, oracle, ids: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One move of each chain: a proposal drawn by the oracle, accepted or not."""
        tree = self.tree
        m = ids.size
        up = rng.random(m) < 0.5
        leaf = tree.is_leaf(ids)
        climb = np.flatnonzero(up & (ids != 0))
        descend = np.flatnonzero(~up & ~leaf)
        target = ids.copy()
        log_q = np.zeros(m)  # q(target | v) for descents, q(v | parent) for climbs
        if climb.size:
            target[climb] = tree.parent(ids[climb])
            log_q[climb] = oracle.proposal_log_prob(ids[climb])
        if descend.size:
            target[descend], log_q[descend] = oracle.propose_child(ids[descend], rng)
        moving = np.concatenate([climb, descend])
        answers = oracle.log_weight(np.concatenate([ids[moving], target[moving]]))
        log_pi_v = self._log_pi(ids[moving], answers[: moving.size])
        log_pi_t = self._log_pi(target[moving], answers[moving.size :])
        sign = np.where(up[moving], 1.0, -1.0)  # climbs multiply by q(v | p), descents divide by q(c | v)
        with np.errstate(invalid="ignore"):
            log_accept = log_pi_t - log_pi_v + sign * log_q[moving]
        accept = np.log(rng.random(moving.size)) < np.nan_to_num(log_accept, nan=-np.inf)
        out = ids.copy()
        out[moving[accept]] = target[moving[accept]]
        return out


def default_walk_steps(depth: int, rho: float, leaf_boost: float) -> int:
    """Our calibrated ``T``: ``2.5 rho (n+1)**2`` plain, ``10 rho (n+1)**2`` boosted.

    Chosen so that the output law is within 0.01 of ``mu*`` in total variation
    on every instance of the calibration (docs/walk_schedule.md).
    """
    c = 2.5 if leaf_boost == 1 else 10.0
    return int(np.ceil(c * rho * (depth + 1) ** 2))


KERNELS = {"dense": SinclairJerrumWalk, "proposal": ProposalWalk}


def sample_walk(
    oracle,
    n_samples: int,
    rng: np.random.Generator,
    *,
    steps: int | None = None,
    leaf_boost: float | None = None,
    kernel: str = "dense",
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> SampleResult:
    """Samples by the Sinclair–Jerrum walk with the T-steps-and-restart rule.

    ``leaf_boost=None`` is the plain walk (K = 1); ``sample_walk_boosted`` uses K = 2n.
    ``kernel="proposal"`` draws one child per step from the oracle's proposal
    instead of asking every child (``ProposalWalk``); its default ``T`` is the
    dense schedule, not calibrated for it.
    """
    walk, steps = node_walk(oracle, kernel, leaf_boost, steps)
    params = {"leaf_boost": walk.leaf_boost, "kernel": kernel}
    return run_walk_sampler(walk, oracle, n_samples, rng, steps, params, max_queries, progress)


def node_walk(oracle, kernel: str = "dense", leaf_boost: float | None = None, steps: int | None = None):
    """The walk ``kernel`` on the oracle's tree with leaf boost ``leaf_boost`` (None: the plain walk, K = 1), and
    its T: ``steps``, or else the calibrated default for the oracle's rho."""
    if kernel not in KERNELS:
        raise ParameterError(f"unknown walk kernel {kernel!r}; choose one of {', '.join(KERNELS)}")
    walk = KERNELS[kernel](oracle.tree, 1.0 if leaf_boost is None else leaf_boost)
    if steps is None:
        steps = default_walk_steps(oracle.tree.depth, schedule_rho(oracle), walk.leaf_boost)
    return walk, steps


def sample_walk_boosted(oracle, n_samples: int, rng: np.random.Generator, **kwargs) -> SampleResult:
    """The Sinclair–Jerrum walk with leaf boost ``K = 2n`` (our construction)."""
    kwargs.setdefault("leaf_boost", 2.0 * oracle.tree.depth)
    return sample_walk(oracle, n_samples, rng, **kwargs)


def sample_walk_proposal(oracle, n_samples: int, rng: np.random.Generator, **kwargs) -> SampleResult:
    """The leaf-boosted walk (``K = 2n``) with the proposal kernel: for large vocabularies."""
    kwargs.setdefault("kernel", "proposal")
    return sample_walk_boosted(oracle, n_samples, rng, **kwargs)
