"""A generation tree grown as samplers visit it: handles are given out on first visit.

A node is a sequence of actions (token choices) from the root; its handle is
the order in which it was first reached. ``<eos>`` (the action ``eos``) ends a
branch, and the horizon ``depth`` bounds every branch, so the leaves are the
responses that ended with ``<eos>`` and those that reached the horizon; with
``stop`` (a test of new nodes, e.g. "its text contains a stop string"), also
the nodes it marks: a stopped response is a leaf like one ended by ``<eos>``. Only
the nodes a sampler touched exist, so a vocabulary of 50,000 tokens at a
horizon of 32 costs memory in proportion to the visits, not to ``b**H``.

``node_key`` is a hash of the path, the same whatever the visit order, so
noise keyed on it (the lab's error models) is a fixed function of the node.
"""

from __future__ import annotations

import numpy as np

from ..arrays import grown
from ..errors import ParameterError, TreeShapeError

MAX_CHILDREN_BRANCHING = 1024  # beyond this, enumerate nothing: draw children (oracle.propose_child)


def _mix(keys: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """splitmix64 of (parent key, action): a child's key."""
    with np.errstate(over="ignore"):
        z = keys.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15) + actions.astype(np.uint64) + np.uint64(1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z.view(np.int64)


class TokenTrie:
    def __init__(self, branching: int, depth: int, eos: int | None = None, stop=None):
        """``stop(handles) -> bool array``: which new nodes end their branch (asked once per node, when it is made)."""
        if not isinstance(branching, (int, np.integer)) or branching < 1:
            raise TreeShapeError(f"branching must be an integer >= 1, got {branching!r}")
        if not isinstance(depth, (int, np.integer)) or depth < 1:
            raise ParameterError(f"the horizon must be an integer >= 1, got {depth!r}")
        if eos is not None and not 0 <= eos < branching:
            raise TreeShapeError(f"the <eos> action {eos} is not one of the {branching} actions")
        self.branching, self.depth, self.eos, self.stop = int(branching), int(depth), eos, stop
        self._size = 1
        self._stopped = np.zeros(1024, dtype=bool)
        self._parent = np.zeros(1024, dtype=np.int64)
        self._action = np.full(1024, -1, dtype=np.int64)
        self._depth = np.zeros(1024, dtype=np.int64)
        self._key = np.zeros(1024, dtype=np.int64)
        self._index: dict[int, int] = {}  # parent * b + action -> handle

    @property
    def num_nodes(self) -> int:
        return self._size

    @property
    def num_leaf_indices(self) -> int:
        return self._size

    def _arr(self, ids) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= self._size):
            raise TreeShapeError(f"node handles must be in [0, {self._size}), got one outside")
        return ids

    def depth_of(self, ids: np.ndarray) -> np.ndarray:
        return self._depth[self._arr(ids)]

    def parent(self, ids: np.ndarray) -> np.ndarray:
        return self._parent[self._arr(ids)]

    def action(self, ids: np.ndarray) -> np.ndarray:
        return self._action[self._arr(ids)]

    @property
    def enumerated(self) -> bool:
        """True once every internal node has all its children (as after ``grow_all``)."""
        every = np.arange(self._size, dtype=np.int64)
        internal = int(np.count_nonzero(~self.is_leaf(every)))
        return self._size - 1 == internal * self.branching  # every non-root node is one child of an internal node

    def is_leaf(self, ids: np.ndarray) -> np.ndarray:
        ids = self._arr(ids)
        leaf = self._depth[ids] >= self.depth
        if self.eos is not None:
            leaf |= self._action[ids] == self.eos
        if self.stop is not None:
            leaf |= self._stopped[ids]
        return leaf

    def node_key(self, ids: np.ndarray) -> np.ndarray:
        return self._key[self._arr(ids)]

    def leaf_index(self, ids: np.ndarray) -> np.ndarray:
        return self._arr(ids)

    def leaf_nodes(self) -> np.ndarray:
        every = np.arange(self._size, dtype=np.int64)
        return every[self.is_leaf(every)]

    def child(self, ids: np.ndarray, actions: np.ndarray) -> np.ndarray:
        ids = self._arr(ids)
        actions = np.broadcast_to(np.asarray(actions, dtype=np.int64), ids.shape)
        if self.is_leaf(ids).any():
            raise TreeShapeError("a leaf (a response that ended with <eos> or reached the horizon) has no children")
        if actions.size and (actions.min() < 0 or actions.max() >= self.branching):
            raise TreeShapeError(f"actions must be in [0, {self.branching})")
        codes = (ids * self.branching + actions).ravel().tolist()
        out = np.array([self._index.get(c, -1) for c in codes], dtype=np.int64)
        new = np.flatnonzero(out < 0)
        if new.size:
            fresh = list(dict.fromkeys(codes[i] for i in new))  # the same new child asked twice gets one handle
            handles = self._grow(np.array(fresh, dtype=np.int64))
            self._index.update(zip(fresh, handles.tolist()))
            out[new] = [self._index[codes[i]] for i in new]
        return out.reshape(ids.shape)

    def children(self, ids: np.ndarray) -> np.ndarray:
        if self.branching > MAX_CHILDREN_BRANCHING:
            raise TreeShapeError(
                f"listing all {self.branching} children of a node is for small vocabularies (at most "
                f"{MAX_CHILDREN_BRANCHING}); draw children from a proposal instead (the walk's proposal kernel)"
            )
        return self._all_children(ids)

    def _all_children(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        actions = np.broadcast_to(np.arange(self.branching), ids.shape + (self.branching,))
        return self.child(np.repeat(ids[..., None], self.branching, axis=-1), actions)

    def path(self, ids: np.ndarray) -> list[tuple[int, ...]]:
        out = []
        for v in self._arr(ids).ravel().tolist():
            actions = []
            while v:
                actions.append(int(self._action[v]))
                v = int(self._parent[v])
            out.append(tuple(actions[::-1]))
        return out

    def grow_all(self, max_nodes: int) -> None:
        """Hand out every node (for exact laws on small trees); refuses beyond ``max_nodes``."""
        frontier = np.zeros(1, dtype=np.int64)
        while frontier.size:
            inner = frontier[~self.is_leaf(frontier)]
            if self._size + inner.size * self.branching > max_nodes:
                raise TreeShapeError(
                    f"the tree has more than {max_nodes:,} nodes, too many to enumerate ({self.branching:,} tokens, "
                    f"horizon {self.depth}); lower the horizon or use values that need no enumeration"
                )
            frontier = self._all_children(inner).ravel() if inner.size else inner

    def _grow(self, codes: np.ndarray) -> np.ndarray:
        parents, actions = codes // self.branching, codes % self.branching
        start, end = self._size, self._size + codes.size
        for name in ("_parent", "_action", "_depth", "_key", "_stopped"):  # each set below for the new nodes
            setattr(self, name, grown(getattr(self, name), end, 0))
        self._parent[start:end] = parents
        self._action[start:end] = actions
        self._depth[start:end] = self._depth[parents] + 1
        self._key[start:end] = _mix(self._key[parents], actions)
        self._size = end
        handles = np.arange(start, end, dtype=np.int64)
        if self.stop is not None:
            self._stopped[start:end] = np.asarray(self.stop(handles), dtype=bool)
        return handles
