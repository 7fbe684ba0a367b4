"""Oracles mu_hat: the exact oracle of a lab target, and one wrapper per error model.

An error model wraps any oracle (``with_error``): the lab's ``ExactOracle``, or
a model-backed one, whose tree need not be enumerated. Every oracle answers
``log mu_hat(v)`` for a batch of node ids. Leaves are
always exact (checking a complete object is cheap); internal nodes carry the
error model's factor. ``log_rho`` is a bound on ``|log mu_hat(v) - log mu*(v)|``
over internal nodes that the samplers may rely on (JVV's acceptance step
does): the stated ``rho`` for the models that take one, and the worst case
measured over every internal node (possibly infinite) for the models that do
not (delayed, flat); those two need an enumerated tree, and refuse a trie that
is still growing.

Answers are deterministic functions of (node, seed): noise comes from a
counter-based hash of the node's key (its heap id on the lab's complete tree,
a hash of its path on a token trie), so re-asking a node gives the same answer
and no per-node noise table is stored.

Which errors matter: a factor that siblings share (adversarial, drift) leaves
every conditional ``mu_hat(c) / sum mu_hat(c')`` exact and only changes how a
walk moves along the depth axis; a factor that differs between siblings
(random, signs, single, decoy) distorts the conditionals themselves.
"""

from __future__ import annotations

import numpy as np

from ..errors import OracleBoundError
from ..target import Target
from .protocol import Oracle


def hashed_uniform(ids: np.ndarray, seed: int, stream: int = 0) -> np.ndarray:
    """A uniform number in [0, 1) for each id, a fixed function of (id, seed, stream) (splitmix64)."""
    with np.errstate(over="ignore"):
        z = np.asarray(ids, dtype=np.int64).astype(np.uint64)
        z = z + np.uint64((int(seed) * 0x9E3779B97F4A7C15 + int(stream) * 0xD1B54A32D192ED03 + 1) & 0xFFFFFFFFFFFFFFFF)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _check_rho(rho: float) -> float:
    if not isinstance(rho, (int, float, np.floating, np.integer)) or not np.isfinite(rho) or rho < 1:
        raise OracleBoundError(f"rho must be a finite number >= 1 (rho = 1 is an exact oracle), got {rho!r}")
    return float(rho)


class ExactOracle(Oracle):
    """``mu*`` itself, read from a lab ``Target``: the base every error model of the lab wraps."""

    name = "exact"
    flat_promise = False

    def __init__(self, target: Target):
        self.target = target
        self.tree = target.tree
        self.log_rho = 0.0

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        return self.target.log_mass[np.asarray(ids, dtype=np.int64)]


class ErrorModel(Oracle):
    """An oracle around any ``base`` oracle: exact at leaves, ``log_error(ids)`` added at internal nodes.

    The bound is the base's plus this model's ``log(rho)``. Proposals are the
    base's: an error in the values does not change the model that proposes.
    """

    name = "error model"
    # True when the promise bounds every internal node by rho * b**-depth (the flat oracle's):
    # then every leaf has mu*(x) <= mu*(parent) <= rho * b**-(n-1), which uniform rejection needs
    flat_promise = False

    def __init__(self, base: Oracle, rho: float = 1.0, seed: int = 0):
        self.base = base
        self.tree = base.tree
        self.costs, self.normalised, self.deterministic = base.costs, base.normalised, base.deterministic
        self.seed = seed
        self.log_factor = float(np.log(_check_rho(rho)))  # this model's own error, log(rho)
        self.log_rho = float(base.log_rho + self.log_factor)

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        """``log mu_hat(v)`` for each id (``-inf`` for mass zero). Does not count queries."""
        ids = np.asarray(ids, dtype=np.int64)
        exact = self.base.log_weight(ids)
        internal = ~self.tree.is_leaf(ids)
        if not internal.any():
            return exact
        out = exact.copy()
        out[internal] = self.internal_log_weight(ids[internal], exact[internal])
        return out

    def internal_log_weight(self, ids: np.ndarray, exact: np.ndarray) -> np.ndarray:
        return exact + self.log_error(ids)

    def log_values(self, ids: np.ndarray) -> np.ndarray:
        """The base's ``log_values`` (a language-model oracle's values at any node) times this model's error factor
        at internal nodes. Refused by a model that rewrites masses rather than multiplying them (its
        ``internal_log_weight`` is its own): applied to values, that would not be an error on the values."""
        if type(self).internal_log_weight is not ErrorModel.internal_log_weight:
            raise OracleBoundError(f"the {self.name} error model rewrites masses, not values: a search that ranks "
                                   "by values cannot use it; use the random error model (--rho)")
        ids = np.asarray(ids, dtype=np.int64)
        out = np.array(self.base.log_values(ids), dtype=np.float64)
        internal = ~self.tree.is_leaf(ids)
        if internal.any():
            out[internal] += self.log_error(ids[internal])
        return out

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        return np.zeros(ids.shape)

    def proposal_log_prob(self, ids: np.ndarray) -> np.ndarray:
        return self.base.proposal_log_prob(ids)

    def propose_child(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.base.propose_child(ids, rng)


class RandomOracle(ErrorModel):
    """A fixed factor per internal node, log-uniform on ``[1/rho, rho]``."""

    name = "random"

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        return self.log_factor * (2.0 * hashed_uniform(self.tree.node_key(ids), self.seed) - 1.0)


class AdversarialOracle(ErrorModel):
    """Depth-alternating factors: ``rho`` at odd depths, ``1/rho`` at even depths (root included).

    Siblings share a factor, so JVV's proposal is untouched, but the walk's
    up/down balance flips by ``rho**2`` from one level to the next: the walk
    is pushed up from odd depths and down from even ones, which traps it in
    pairs of levels and slows its crossing of the tree (the ``rho**4`` of the
    Sinclair–Jerrum mixing bound); the lifted walk is slowed the same way.
    """

    name = "adversarial"

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        odd = (self.tree.depth_of(ids) % 2) == 1
        return np.where(odd, self.log_factor, -self.log_factor)


class SinglePerturbedOracle(ErrorModel):
    """At every internal node, one child (chosen by the seed) is overestimated by ``rho``.

    The VGB paper's single perturbed action: all other answers are exact, yet
    the error repeats at every level, so guided decoding without correction
    drifts by ``Omega(min(eps * sqrt(n), 1))`` in total variation.
    """

    name = "single"

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        b = self.tree.branching
        parent = self.tree.parent(ids)
        chosen = np.floor(hashed_uniform(self.tree.node_key(parent), self.seed, stream=1) * b).astype(np.int64)
        perturbed = (ids != 0) & (self.tree.action(ids) == chosen)
        return np.where(perturbed, self.log_factor, 0.0)


class SignsOracle(ErrorModel):
    """A factor ``rho`` or ``1/rho`` per internal node (root included), the sign from the node's hash.

    The extreme points of the random oracle: the same hash as ``RandomOracle``
    with the same seed, pushed to the edges of the band. Each sibling ratio is
    then either exact or off by ``rho**2`` (the most an error within ``rho``
    can distort it), in a direction that changes from node to node. A
    candidate adversary for JVV (its proposal can be off by up to
    ``rho**(2(n-1))`` at a leaf) and for the walks (pushed toward some
    children and away from others at every level), with seed-to-seed
    variance to search over.
    """

    name = "signs"

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        return np.where(hashed_uniform(self.tree.node_key(ids), self.seed) < 0.5, -self.log_factor, self.log_factor)


class DecoyOracle(ErrorModel):
    """At each internal node below the root: ``rho`` if it is the lightest of its siblings, ``1/rho`` if not.

    The decoy among a set of siblings is the child of least positive true mass
    (zero-mass children stay zero, so favouring one would change nothing);
    ties, e.g. on a flat target, go to the child with the least hash of
    (node, seed). Every sibling ratio is distorted by ``rho**2`` toward the
    lightest subtree, at every internal level, so along a path of decoys the
    errors compound instead of cancelling: JVV's proposal reaches the
    lightest leaves with up to ``rho**(2(n-1))`` times their probability, and
    the walks are steered into light subtrees at each step down. A candidate
    worst case on targets far from flat, where the lightest subtree is much
    lighter than its siblings. The root has no siblings and is exact; leaves
    are exact.
    """

    name = "decoy"

    def decoy_child(self, parents: np.ndarray) -> np.ndarray:
        """The favoured child of each internal node in ``parents`` (node ids)."""
        children = self.tree.children(parents)  # (k, b)
        mass = self.base.log_weight(children)
        key = np.where(np.isneginf(mass), np.inf, mass)
        lightest = key == key.min(axis=1, keepdims=True)
        tie_break = np.where(lightest, hashed_uniform(self.tree.node_key(children), self.seed, stream=2), np.inf)
        return children[np.arange(children.shape[0]), np.argmin(tie_break, axis=1)]

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        parents, where = np.unique(self.tree.parent(ids), return_inverse=True)
        favoured = self.decoy_child(parents)[where.reshape(ids.shape)] == ids
        return np.where(ids == 0, 0.0, np.where(favoured, self.log_factor, -self.log_factor))


class DriftOracle(ErrorModel):
    """A depth profile: log-factor ``log(rho) * (1 - 2 d / n)`` at internal depth ``d`` (the root gets ``rho``).

    Siblings share the factor, so every conditional is exact and JVV's
    proposal is exactly ``mu*``; what changes is a walk's balance between
    moving up (weight ``mu_hat(v)``) and down (``sum mu_hat(c)``): each
    internal level tilts it toward the root by ``rho**(2/n)``, so the error
    budget is spent as one steady drift upward (``rho**(2(n-1)/n)`` over the
    depth) rather than the adversarial oracle's level-to-level oscillation;
    onto the leaves, which are exact, the balance tips down by
    ``rho**(1 - 2/n)``. A candidate adversary for the walks' descent (the
    lifted walk's sweeps included); it cannot hurt a sampler that uses only
    conditionals.
    """

    name = "drift"

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        return self.log_factor * (1.0 - 2.0 * self.tree.depth_of(ids) / self.tree.depth)


class _MeasuredBoundOracle(ErrorModel):
    """An oracle whose answers do not depend on rho; its bound is measured over every internal node.

    So the tree must be enumerated: a growing trie has handed out only the
    nodes visited so far (often just the root), and a maximum over those is no
    bound. Such a trie is refused; grow it first (``tree.grow_all``, as exact
    values do) or use an error model with a stated ``rho``.
    """

    def __init__(self, base: Oracle, rho: float | None = None, seed: int = 0):
        super().__init__(base, 1.0, seed)
        if not self.tree.enumerated:
            raise OracleBoundError(
                f"the {self.name} oracle's bound is measured over every internal node, but this tree has handed out "
                f"only {self.tree.num_nodes:,} of its nodes (a trie grows as samplers visit it); enumerate it first "
                "(tree.grow_all, as exact values do) or choose an error model with a stated rho"
            )
        every = np.arange(self.tree.num_nodes, dtype=np.int64)
        internal = every[~self.tree.is_leaf(every)]
        truth = base.log_weight(internal)
        answers = self.internal_log_weight(internal, truth)
        both_zero = np.isneginf(answers) & np.isneginf(truth)
        with np.errstate(invalid="ignore"):
            gap = np.where(both_zero, 0.0, np.abs(answers - truth))
        self.log_rho = float(np.max(gap)) if gap.size else 0.0


class DelayedOracle(_MeasuredBoundOracle):
    """The parent's value: ``V_hat(v) = V*(parent(v))``.

    In masses, ``mu_hat(v) = mu*(parent(v)) q(v | parent(v))`` with ``q`` the
    base oracle's proposal (uniform on the lab's trees: ``mu*(parent) / b``;
    ``pi_ref`` on a language model's): siblings get weight in proportion to the
    proposal alone, so the oracle carries no information about the last step
    (VGB's delayed value). The root is exact.
    """

    name = "delayed"

    def internal_log_weight(self, ids: np.ndarray, exact: np.ndarray) -> np.ndarray:
        delayed = self.base.log_weight(self.tree.parent(ids)) + self.base.proposal_log_prob(ids)
        return np.where(ids == 0, exact, delayed)


class FlatOracle(_MeasuredBoundOracle):
    """The uniform measure ``mu_hat(v) = b**-depth(v)``, with its bound measured on the target.

    On the bounded-tilt family every node is within ``rho`` of flat; that
    family is easy, not hard: its promise bounds every leaf by
    ``rho * b**-(n-1)``, so a uniform leaf proposal with rejection
    (``samplers.uniform_rejection``) is exact at ``b rho`` queries per sample.
    """

    name = "flat"
    flat_promise = True

    def internal_log_weight(self, ids: np.ndarray, exact: np.ndarray) -> np.ndarray:
        return -self.tree.depth_of(ids) * np.log(self.tree.branching)


ORACLES: dict[str, type[Oracle]] = {
    "exact": ExactOracle,
    "random": RandomOracle,
    "adversarial": AdversarialOracle,
    "single": SinglePerturbedOracle,
    "signs": SignsOracle,
    "decoy": DecoyOracle,
    "drift": DriftOracle,
    "delayed": DelayedOracle,
    "flat": FlatOracle,
}


def with_error(base: Oracle, kind: str = "exact", rho: float = 1.0, seed: int = 0) -> Oracle:
    """``base`` behind the error model ``kind`` (a key of ``ORACLES``); ``exact`` leaves it as it is."""
    if kind not in ORACLES:
        raise OracleBoundError(f"unknown oracle {kind!r}; choose one of {', '.join(ORACLES)}")
    _check_rho(rho)
    if kind == "exact":
        return base
    return ORACLES[kind](base, rho, seed)


def make_oracle(target: Target, kind: str = "exact", rho: float = 1.0, seed: int = 0) -> Oracle:
    """The lab's oracle on a target: ``mu*`` behind the error model ``kind`` (a key of ``ORACLES``)."""
    return with_error(ExactOracle(target), kind, rho, seed)
