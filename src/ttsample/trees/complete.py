"""Complete prefix trees and their node numbering.

A tree of depth ``n`` and branching ``b`` has ``b**k`` nodes at depth ``k``.
Nodes are numbered in heap (breadth-first) order: the root is 0, the children
of node ``v`` are ``b*v + 1 ... b*v + b`` and its parent is ``(v - 1) // b``.
One flat array indexed by node id then holds a quantity for every node, and a
batch of chains at different depths is advanced with a single gather.
Leaves are numbered ``leaf_start ... num_nodes - 1`` in lexicographic order of
their paths, so ``id - leaf_start`` is the leaf's index in a ``b**n`` array.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from ..errors import TreeShapeError

MAX_BRANCHING = 1 << 16
MAX_LEAVES = 1 << 26  # 64M leaves: ~1 GiB per float64 array over all nodes


@dataclass(frozen=True)
class Tree:
    branching: int
    depth: int

    def __post_init__(self) -> None:
        b, n = self.branching, self.depth
        if not isinstance(b, (int, np.integer)) or not 2 <= b <= MAX_BRANCHING:
            raise TreeShapeError(f"branching must be an integer in [2, {MAX_BRANCHING}], got {b!r}")
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise TreeShapeError(f"depth must be an integer >= 1, got {n!r}")
        if b**n > MAX_LEAVES:
            raise TreeShapeError(
                f"a tree with branching {b} and depth {n} has {b}**{n} leaves, more than the "
                f"{MAX_LEAVES} that fit in memory here; use a smaller depth"
            )

    @property
    def num_leaves(self) -> int:
        return self.branching**self.depth

    @cached_property
    def level_starts(self) -> np.ndarray:
        """Id of the first node at each depth 0..n, plus the total node count at the end."""
        b = self.branching
        starts = np.array([(b**k - 1) // (b - 1) for k in range(self.depth + 2)], dtype=np.int64)
        starts.setflags(write=False)  # cached and shared: nobody may change it
        return starts

    @cached_property
    def num_nodes(self) -> int:
        return int(self.level_starts[-1])

    @cached_property
    def leaf_start(self) -> int:
        return int(self.level_starts[self.depth])

    @property
    def num_leaf_indices(self) -> int:
        return self.num_leaves

    @property
    def enumerated(self) -> bool:
        return True  # every node is numbered arithmetically

    def children(self, ids: np.ndarray) -> np.ndarray:
        """Children of internal nodes, shape ``ids.shape + (b,)``."""
        b = self.branching
        return b * np.asarray(ids, dtype=np.int64)[..., None] + 1 + np.arange(b, dtype=np.int64)

    def child(self, ids: np.ndarray, actions: np.ndarray) -> np.ndarray:
        return self.branching * np.asarray(ids, dtype=np.int64) + 1 + np.asarray(actions, dtype=np.int64)

    def parent(self, ids: np.ndarray) -> np.ndarray:
        """Parent of non-root nodes (the root maps to itself)."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.maximum(ids - 1, 0) // self.branching

    def action(self, ids: np.ndarray) -> np.ndarray:
        return (np.asarray(ids, dtype=np.int64) - 1) % self.branching

    def depth_of(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.level_starts, np.asarray(ids, dtype=np.int64), side="right") - 1

    def is_leaf(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids) >= self.leaf_start

    def path(self, ids: np.ndarray) -> list[tuple[int, ...]]:
        out = []
        for v in np.asarray(ids, dtype=np.int64).ravel().tolist():
            actions = []
            while v:
                actions.append((v - 1) % self.branching)
                v = (v - 1) // self.branching
            out.append(tuple(actions[::-1]))
        return out

    def node_key(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64)  # heap numbering is already a function of the path

    def leaf_index(self, ids: np.ndarray) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64) - self.leaf_start

    def leaf_nodes(self) -> np.ndarray:
        return np.arange(self.leaf_start, self.num_nodes, dtype=np.int64)

    @classmethod
    def for_leaf_count(cls, num_leaves: int, branching: int) -> "Tree":
        """The tree whose leaf level has exactly ``num_leaves`` nodes."""
        if not isinstance(branching, (int, np.integer)) or branching < 2:
            raise TreeShapeError(f"branching must be an integer >= 2, got {branching!r}")
        depth, count = 0, 1
        while count < num_leaves:
            count *= branching
            depth += 1
        if count != num_leaves or depth == 0:
            raise TreeShapeError(
                f"a target for branching {branching} needs branching**depth leaf masses "
                f"(depth >= 1), e.g. {branching}, {branching**2}, {branching**3}, ...; "
                f"got an array of length {num_leaves}"
            )
        return cls(int(branching), depth)
