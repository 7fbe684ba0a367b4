"""Oracles mu_hat for synthetic targets, one class per error model.

Every oracle answers ``log mu_hat(v)`` for a batch of node ids. Leaves are
always exact (checking a complete object is cheap); internal nodes carry the
error model's factor. ``log_rho`` is a bound on ``|log mu_hat(v) - log mu*(v)|``
over internal nodes that the samplers may rely on (JVV's acceptance step
does): the stated ``rho`` for the models that take one, and the measured worst
case (possibly infinite) for the models that do not (delayed, flat).

Answers are deterministic functions of (node, seed): noise comes from a
counter-based hash of the node id, so re-asking a node gives the same answer
and no per-node noise table is stored.
"""

from __future__ import annotations

import numpy as np

from ..errors import OracleBoundError
from ..target import Target

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


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


class Oracle:
    """Base oracle: exact at leaves, ``log_error(ids)`` added at internal nodes."""

    name = "oracle"

    def __init__(self, target: Target, log_rho: float = 0.0):
        self.target = target
        self.tree = target.tree
        self.log_rho = float(log_rho)

    @property
    def rho(self) -> float:
        return float(np.exp(self.log_rho))

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        """``log mu_hat(v)`` for each id (``-inf`` for mass zero). Does not count queries."""
        ids = np.asarray(ids, dtype=np.int64)
        exact = self.target.log_mass[ids]
        internal = ids < self.tree.leaf_start
        if not internal.any():
            return exact
        out = exact.copy()
        out[internal] = self.internal_log_weight(ids[internal], exact[internal])
        return out

    def internal_log_weight(self, ids: np.ndarray, exact: np.ndarray) -> np.ndarray:
        return exact + self.log_error(ids)

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        return np.zeros(ids.shape)

    def describe(self) -> str:
        return f"{self.name} (rho = {self.rho:.4g})"


class ExactOracle(Oracle):
    name = "exact"


class RandomOracle(Oracle):
    """A fixed factor per internal node, log-uniform on ``[1/rho, rho]``."""

    name = "random"

    def __init__(self, target: Target, rho: float, seed: int = 0):
        super().__init__(target, np.log(_check_rho(rho)))
        self.seed = seed

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        return self.log_rho * (2.0 * hashed_uniform(ids, self.seed) - 1.0)


class AdversarialOracle(Oracle):
    """Depth-alternating factors: ``rho`` at odd depths, ``1/rho`` at even depths (root included).

    Siblings share a factor, so JVV's proposal is untouched, but the walk's
    up/down balance flips by ``rho**2`` from one level to the next: the walk
    is pushed up from odd depths and down from even ones, which traps it in
    pairs of levels and slows its crossing of the tree (the ``rho**4`` of the
    Sinclair–Jerrum mixing bound); the lifted walk is slowed the same way.
    """

    name = "adversarial"

    def __init__(self, target: Target, rho: float, seed: int = 0):
        super().__init__(target, np.log(_check_rho(rho)))

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        odd = (self.tree.depth_of(ids) % 2) == 1
        return np.where(odd, self.log_rho, -self.log_rho)


class SinglePerturbedOracle(Oracle):
    """At every internal node, one child (chosen by the seed) is overestimated by ``rho``.

    The VGB paper's single perturbed action: all other answers are exact, yet
    the error repeats at every level, so guided decoding without correction
    drifts by ``Omega(min(eps * sqrt(n), 1))`` in total variation.
    """

    name = "single"

    def __init__(self, target: Target, rho: float, seed: int = 0):
        super().__init__(target, np.log(_check_rho(rho)))
        self.seed = seed

    def log_error(self, ids: np.ndarray) -> np.ndarray:
        b = self.tree.branching
        parent = self.tree.parent(ids)
        chosen = np.floor(hashed_uniform(parent, self.seed, stream=1) * b).astype(np.int64)
        perturbed = (ids != 0) & ((ids - 1) % b == chosen)
        return np.where(perturbed, self.log_rho, 0.0)


class _MeasuredBoundOracle(Oracle):
    """An oracle whose answers do not depend on rho; its bound is measured on the target."""

    def __init__(self, target: Target, rho: float | None = None, seed: int = 0):
        super().__init__(target, 0.0)
        internal = np.arange(target.tree.leaf_start, dtype=np.int64)
        answers = self.internal_log_weight(internal, target.log_mass[internal])
        truth = target.log_mass[internal]
        both_zero = np.isneginf(answers) & np.isneginf(truth)
        with np.errstate(invalid="ignore"):
            gap = np.where(both_zero, 0.0, np.abs(answers - truth))
        self.log_rho = float(np.max(gap)) if gap.size else 0.0


class DelayedOracle(_MeasuredBoundOracle):
    """The parent's value: ``V_hat(v) = V*(parent(v))`` under the uniform base measure.

    In masses, ``mu_hat(v) = mu*(parent(v)) / b``: siblings get equal weight,
    so the oracle carries no information about the last step (VGB's delayed
    value). The root is exact.
    """

    name = "delayed"

    def internal_log_weight(self, ids: np.ndarray, exact: np.ndarray) -> np.ndarray:
        delayed = self.target.log_mass[self.tree.parent(ids)] - np.log(self.tree.branching)
        return np.where(ids == 0, exact, delayed)


class FlatOracle(_MeasuredBoundOracle):
    """The uniform measure ``mu_hat(v) = b**-depth(v)``: the oracle of the bounded-tilt hard family."""

    name = "flat"

    def internal_log_weight(self, ids: np.ndarray, exact: np.ndarray) -> np.ndarray:
        return -self.tree.depth_of(ids) * np.log(self.tree.branching)


ORACLES: dict[str, type[Oracle]] = {
    "exact": ExactOracle,
    "random": RandomOracle,
    "adversarial": AdversarialOracle,
    "single": SinglePerturbedOracle,
    "delayed": DelayedOracle,
    "flat": FlatOracle,
}


def make_oracle(target: Target, kind: str = "exact", rho: float = 1.0, seed: int = 0) -> Oracle:
    """Build an oracle by error-model name: exact, random, adversarial, single, delayed, flat."""
    if kind not in ORACLES:
        raise OracleBoundError(f"unknown oracle {kind!r}; choose one of {', '.join(ORACLES)}")
    _check_rho(rho)
    if kind == "exact":
        return ExactOracle(target)
    return ORACLES[kind](target, rho, seed)
