"""The tree protocol: what a sampler, an oracle wrapper or an exact law may ask of a tree.

Nodes are int64 handles; every method takes and returns arrays of them.
Handles are dense (``0 .. num_nodes - 1``), so a quantity per node can live in
a flat array indexed by handle; the root is handle 0. Samplers never do
arithmetic on handles: they ask the tree.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class TreeProtocol(Protocol):
    branching: int  # children per internal node (the number of actions)
    depth: int  # the largest depth of a leaf (the horizon)

    @property
    def num_nodes(self) -> int:
        """Handles given out so far (all nodes, for a complete tree)."""

    @property
    def num_leaf_indices(self) -> int:
        """Size of an array indexed by ``leaf_index``."""

    @property
    def enumerated(self) -> bool:
        """Whether every node has a handle, so that ``0 .. num_nodes - 1`` is the whole tree (a growing trie: once grown)."""

    def depth_of(self, ids: np.ndarray) -> np.ndarray: ...

    def parent(self, ids: np.ndarray) -> np.ndarray:
        """Parent of each node (the root maps to itself)."""

    def action(self, ids: np.ndarray) -> np.ndarray:
        """Which child of its parent each non-root node is, in ``0 .. b - 1``."""

    def is_leaf(self, ids: np.ndarray) -> np.ndarray: ...

    def child(self, ids: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """Child ``actions[i]`` of internal node ``ids[i]``."""

    def children(self, ids: np.ndarray) -> np.ndarray:
        """All children of internal nodes, shape ``ids.shape + (b,)`` (small branching only)."""

    def path(self, ids: np.ndarray) -> list[tuple[int, ...]]:
        """The actions from the root to each node."""

    def node_key(self, ids: np.ndarray) -> np.ndarray:
        """An int64 that is a fixed function of the node's path (not of visit order): what noise is hashed from."""

    def leaf_index(self, ids: np.ndarray) -> np.ndarray:
        """What a sampler returns for the leaves it drew."""

    def leaf_nodes(self) -> np.ndarray:
        """Every leaf handed out so far, in ``leaf_index`` order."""
