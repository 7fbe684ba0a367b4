"""Classes F: a known, finite set of candidate targets on one tree, the true target among them.

Computing with a known member (its masses, sampling from it) costs no
queries; only questions to the oracle about the true target are counted.
Members are stored as one (|F|, num_nodes) array of normalised log-masses.

Generators, from easy to hard to tell apart:
- ``independent``: members are independent random targets; they differ on
  almost every leaf, so one leaf answer usually identifies the target.
- ``local``: members share a base target and each redraws the leaves of one
  random subtree of ``b**spread`` leaves, keeping that subtree's total, so
  every node above it agrees across members: only answers inside the
  subtree tell members apart.
- ``tilt``: independent bounded tilts within ``rho`` of flat (the hard
  family of the scaling reproduction), members that no internal answer of
  the flat oracle separates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError, TreeShapeError
from ..logspace import logsumexp
from ..target import Target, bounded_tilt_target, random_target, subtree_log_masses
from ..trees import Tree

MAX_CLASS_ENTRIES = 1 << 26  # |F| * num_nodes: 512 MiB of float64


@dataclass(frozen=True)
class TargetClass:
    tree: Tree
    log_mass: np.ndarray  # (|F|, num_nodes), each row normalised (root 0)
    true_index: int
    name: str = "class"

    @property
    def size(self) -> int:
        return self.log_mass.shape[0]

    def member(self, i: int) -> Target:
        return Target(self.tree, self.log_mass[i])

    @property
    def truth(self) -> Target:
        return self.member(self.true_index)

    @property
    def leaf_log_mass(self) -> np.ndarray:
        return self.log_mass[:, self.tree.leaf_start :]

    @classmethod
    def from_targets(cls, targets: list[Target], true_index: int, name: str = "explicit") -> "TargetClass":
        if not targets:
            raise ParameterError("a class needs at least one target")
        tree = targets[0].tree
        if any(t.tree != tree for t in targets):
            raise TreeShapeError("every target of a class must live on the same tree (same branching and depth)")
        _check_size(len(targets), tree)
        if not 0 <= true_index < len(targets):
            raise ParameterError(f"true_index must be in [0, {len(targets) - 1}], got {true_index}")
        return cls(tree, np.stack([t.log_mass for t in targets]), int(true_index), name)


def _check_size(size: int, tree: Tree) -> None:
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ParameterError(f"a class size must be an integer >= 1, got {size!r}")
    if size * tree.num_nodes > MAX_CLASS_ENTRIES:
        raise TreeShapeError(
            f"a class of {size} members on a tree of {tree.num_nodes} nodes needs {size * tree.num_nodes} "
            f"entries, more than the {MAX_CLASS_ENTRIES} that fit; use fewer members or a smaller depth"
        )


def make_class(kind: str, depth: int, branching: int, size: int, param: float, seed: int = 0) -> TargetClass:
    """A generated class: ``kind`` is independent (param: concentration), local (param: spread, an
    integer >= 1) or tilt (param: rho). The true member is chosen by the seed."""
    tree = Tree(branching, depth)
    _check_size(size, tree)
    rng = np.random.default_rng(seed)
    truth = int(rng.integers(size))
    seeds = rng.integers(2**31, size=size)
    if kind == "independent":
        targets = [random_target(depth, branching, param, seed=int(s)) for s in seeds]
        return TargetClass.from_targets(targets, truth, f"independent({param:g})")
    if kind == "tilt":
        targets = [bounded_tilt_target(depth, branching, param, seed=int(s)) for s in seeds]
        return TargetClass.from_targets(targets, truth, f"tilt({param:g})")
    if kind == "local":
        spread = int(param)
        if spread != param or not 1 <= spread <= depth:
            raise ParameterError(f"the spread of a local class must be an integer in [1, depth], got {param}")
        base = random_target(depth, branching, 1.0, seed=int(seeds[0])).leaf_log_mass
        block = branching**spread
        leaves = np.repeat(base[None, :], size, axis=0)
        starts = rng.integers(tree.num_leaves // block, size=size) * block
        for i, start in enumerate(starts):
            old = leaves[i, start : start + block]
            fresh = np.log(rng.dirichlet(np.ones(block)))
            leaves[i, start : start + block] = fresh + logsumexp(old)  # same subtree total, new split
        return TargetClass(tree, subtree_log_masses(tree, leaves), truth, f"local({spread})")
    raise ParameterError(f"unknown class kind {kind!r}; choose independent, local or tilt")
