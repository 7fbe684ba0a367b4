"""Targets: a distribution mu* on the leaves of a prefix tree, with subtree masses.

A target stores ``log mu*(v)`` for every node in one flat array in the tree's
heap order, normalised so that ``mu*(root) = 1``; the normaliser of the masses
it was built from is kept as ``log_z``. Zero-mass subtrees (the non-solutions
of a counting problem) have log-mass ``-inf`` and are never sampled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import (
    InvalidMassError,
    OracleBoundError,
    TargetFileError,
    TreeShapeError,
    ZeroTotalMassError,
)
from .logspace import log_of, logsumexp
from .trees import Tree


def subtree_log_masses(tree: Tree, leaf_log_mass: np.ndarray) -> np.ndarray:
    """Subtree log-masses in heap order for a (k, b**n) batch of leaf log-masses, shape (k, num_nodes)."""
    levels = [leaf_log_mass]
    for _ in range(tree.depth):
        levels.append(logsumexp(levels[-1].reshape(leaf_log_mass.shape[0], -1, tree.branching), axis=2))
    return np.concatenate(levels[::-1], axis=1)


@dataclass(frozen=True)
class Target:
    tree: Tree
    log_mass: np.ndarray  # shape (num_nodes,), log mu*(v), root = 0
    log_z: float = 0.0

    @property
    def leaf_log_mass(self) -> np.ndarray:
        return self.log_mass[self.tree.leaf_start :]

    def leaf_probs(self) -> np.ndarray:
        """mu* on the leaves, in lexicographic leaf order."""
        return np.exp(self.leaf_log_mass)

    @classmethod
    def from_leaf_log_masses(cls, tree: Tree, leaf_log_mass: np.ndarray) -> "Target":
        """Build subtree masses bottom-up from (unnormalised) leaf log-masses."""
        leaf_log_mass = np.asarray(leaf_log_mass, dtype=np.float64)
        if leaf_log_mass.shape != (tree.num_leaves,):
            raise TreeShapeError(f"expected {tree.num_leaves} leaf masses, got shape {leaf_log_mass.shape}")
        if np.isnan(leaf_log_mass).any() or np.isposinf(leaf_log_mass).any():
            raise InvalidMassError("a leaf mass is NaN or overflows to infinity; rescale the masses (or raise beta)")
        log_mass = subtree_log_masses(tree, leaf_log_mass[None, :])[0]
        log_z = float(log_mass[0])
        if not np.isfinite(log_z):
            raise ZeroTotalMassError("every leaf mass is zero: give at least one leaf a positive mass")
        log_mass -= log_z
        log_mass[0] = 0.0
        return cls(tree, log_mass, log_z)

    @classmethod
    def from_leaf_masses(cls, masses: np.ndarray, branching: int) -> "Target":
        """A target from ``b**n`` unnormalised leaf masses (zeros allowed)."""
        masses = np.asarray(masses)
        if masses.ndim != 1:
            raise TreeShapeError(f"leaf masses must be a one-dimensional array, got shape {masses.shape}")
        if not np.issubdtype(masses.dtype, np.number) or np.issubdtype(masses.dtype, np.complexfloating):
            raise InvalidMassError(f"leaf masses must be real numbers, got dtype {masses.dtype}")
        masses = masses.astype(np.float64)
        bad = ~np.isfinite(masses)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InvalidMassError(
                f"{int(bad.sum())} leaf mass(es) are NaN or infinite (first at index {i}: {masses[i]}); "
                "every mass must be a finite number >= 0"
            )
        if (masses < 0).any():
            i = int(np.flatnonzero(masses < 0)[0])
            raise InvalidMassError(
                f"{int((masses < 0).sum())} leaf mass(es) are negative (first at index {i}: {masses[i]}); "
                "masses must be >= 0 (use 0 for leaves that must never be sampled)"
            )
        tree = Tree.for_leaf_count(masses.size, branching)
        return cls.from_leaf_log_masses(tree, log_of(masses))

    @classmethod
    def load(cls, path: str | Path, branching: int) -> "Target":
        """Read leaf masses from a ``.npy`` file."""
        try:
            masses = np.load(Path(path), allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise TargetFileError(
                f"cannot read {str(path)!r} as a NumPy .npy array of leaf masses ({exc}); "
                "save one with numpy.save('masses.npy', array)"
            ) from None
        if not isinstance(masses, np.ndarray):
            raise TargetFileError(f"{str(path)!r} does not hold a single array (is it an .npz archive?)")
        return cls.from_leaf_masses(masses, branching)


def _log_dirichlet_splits(rng: np.random.Generator, groups: int, b: int, concentration: float) -> np.ndarray:
    """log of ``groups`` independent Dirichlet(concentration * 1_b) vectors, shape (groups, b).

    Uses Gamma(a) = Gamma(a + 1) * U**(1/a) so that tiny concentrations do not
    underflow to exact zeros.
    """
    log_g = np.log(rng.standard_gamma(concentration + 1.0, size=(groups, b)))
    log_g += np.log(rng.random((groups, b)) + np.finfo(float).tiny) / concentration
    return log_g - logsumexp(log_g, axis=1)[:, None]


def random_target(depth: int, branching: int = 2, concentration: float = 1.0, seed: int = 0) -> "Target":
    """Random target: each node splits its mass among its children by a Dirichlet draw.

    ``concentration`` runs from very peaked (e.g. 0.05) through 1 (uniform
    splits) to near-uniform (e.g. 100).
    """
    if not concentration > 0 or not np.isfinite(concentration):
        raise InvalidMassError(f"concentration must be a finite number > 0, got {concentration}")
    tree = Tree(branching, depth)
    rng = np.random.default_rng(seed)
    log_mass = np.zeros(1)
    for _ in range(depth):
        splits = _log_dirichlet_splits(rng, log_mass.size, branching, concentration)
        log_mass = (log_mass[:, None] + splits).ravel()
    return Target.from_leaf_log_masses(tree, log_mass)


def bounded_tilt_target(depth: int, branching: int = 2, rho: float = 2.0, seed: int = 0) -> "Target":
    """A random tilt of the uniform measure that the flat oracle cannot see.

    ``g(v) = mu*(v) * b**depth(v)`` stays in ``[1/rho, rho]`` at every node, so
    the flat oracle ``mu_hat(v) = b**-depth(v)`` is within factor ``rho`` of
    ``mu*`` everywhere: the hard family of EVALUATION.md. Children's ``g`` are
    the parent's ``g`` times ``1 + s*u`` with ``u`` a centred uniform vector
    and ``s`` a uniform fraction of the largest step that keeps every child
    inside the band, so the tilt wanders over the band without sticking to
    its edges.
    """
    if not rho >= 1 or not np.isfinite(rho):
        raise OracleBoundError(f"rho must be a finite number >= 1, got {rho}")
    tree = Tree(branching, depth)
    rng = np.random.default_rng(seed)
    g = np.ones(1)
    for _ in range(depth):
        u = rng.uniform(-1.0, 1.0, size=(g.size, branching))
        u -= u.mean(axis=1, keepdims=True)
        parent = g[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            room = np.where(u > 0, (rho / parent - 1.0) / u, np.where(u < 0, (1.0 / (rho * parent) - 1.0) / u, np.inf))
        step = np.min(room, axis=1, keepdims=True) * rng.random((g.size, 1))
        step = np.where(np.isfinite(step), step, 0.0)
        g = np.clip((parent * (1.0 + step * u)).ravel(), 1.0 / rho, rho)
    return Target.from_leaf_log_masses(tree, np.log(g))
