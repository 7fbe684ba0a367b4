"""Token sequences named by int64 handles: the trie every model backend answers on.

Handle 0 is the empty sequence; ``extend(handles, tokens)`` gives the
children (allocated on first sight, without a model call; the same parent and
token always give the same handle), ``handle(seq)``, ``tokens(handle)`` and
``depth(handles)`` go between handles and tokens. Handles stay valid for the
backend's lifetime: the trie itself is small and never evicted. A backend
keeps what it caches per node (keys and values, next-token laws) beside it,
indexed by handle.
"""

from __future__ import annotations

import numpy as np

from ..arrays import grown
from ..errors import ParameterError


class PrefixTrie:
    """The handles of token sequences over a vocabulary of ``vocab_size`` ids, for sequences of at most
    ``max_length`` tokens (the model's context)."""

    def __init__(self, vocab_size: int, max_length: int):
        self.vocab_size, self.max_length = int(vocab_size), int(max_length)
        # per handle: its parent, last token and depth
        self._size = 1
        self._parent = np.zeros(1024, dtype=np.int64)
        self._token = np.zeros(1024, dtype=np.int64)
        self._depth = np.zeros(1024, dtype=np.int64)
        self._children: dict[int, int] = {}  # parent * vocab_size + token -> handle

    def extend(self, handles: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """The child of each handle by the token beside it (same shape; no model call)."""
        handles = self._checked_handles(handles)
        tokens = np.asarray(tokens)
        if tokens.shape != handles.shape or (tokens.size and tokens.dtype.kind not in "iu"):
            raise ParameterError(f"extend needs integer tokens of the handles' shape {handles.shape}, not {tokens.shape}")
        tokens = tokens.astype(np.int64)
        bad = (tokens < 0) | (tokens >= self.vocab_size)
        if bad.any():
            raise ParameterError(f"token id {int(tokens[bad][0])} is outside the model's vocabulary of {self.vocab_size}")
        keys = (handles * self.vocab_size + tokens).ravel()
        get = self._children.get
        out = np.fromiter((get(k, -1) for k in keys.tolist()), dtype=np.int64, count=keys.size)
        new = out < 0
        if new.any():
            fresh, first, inverse = np.unique(keys[new], return_index=True, return_inverse=True)
            ids = self._allocate(handles.ravel()[new][first], tokens.ravel()[new][first])
            self._children.update(zip(fresh.tolist(), ids.tolist()))
            out[new] = ids[inverse.ravel()]
        return out.reshape(handles.shape)

    def handle(self, seq) -> int:
        """The handle of a token sequence (the empty one is 0)."""
        h = 0
        for t in seq:
            t = int(t)
            if not 0 <= t < self.vocab_size:
                raise ParameterError(f"token id {t} is outside the model's vocabulary of {self.vocab_size}")
            key = h * self.vocab_size + t
            child = self._children.get(key)
            if child is None:
                child = int(self._allocate(np.array([h]), np.array([t]))[0])
                self._children[key] = child
            h = child
        return h

    def tokens(self, handle: int) -> tuple[int, ...]:
        """The token sequence of a handle."""
        h = int(self._checked_handles(np.array([handle]))[0])
        out = []
        while h:
            out.append(int(self._token[h]))
            h = int(self._parent[h])
        return tuple(reversed(out))

    def depth(self, handles: np.ndarray) -> np.ndarray:
        """Sequence lengths of the handles."""
        return self._depth[self._checked_handles(handles)]

    def _allocate(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """New handles for the children of ``parents`` by ``tokens``; a backend that keeps per-handle arrays grows
        them here too."""
        ids = np.arange(self._size, self._size + parents.size)
        end = self._size + parents.size
        self._parent, self._token = grown(self._parent, end, 0), grown(self._token, end, 0)
        self._depth = grown(self._depth, end, 0)
        self._parent[ids], self._token[ids], self._depth[ids] = parents, tokens, self._depth[parents] + 1
        self._size += ids.size
        return ids

    def _checked_handles(self, handles) -> np.ndarray:
        handles = np.asarray(handles)
        if handles.size and handles.dtype.kind not in "iu":
            raise ParameterError(f"handles must be integers, not {handles.dtype}")
        handles = handles.astype(np.int64)
        bad = (handles < 0) | (handles >= self._size)
        if bad.any():
            raise ParameterError(f"{int(handles[bad][0])} is not a handle of this model's trie")
        return handles

    def _prefix_handles(self, prefixes) -> np.ndarray:
        """Handles of the prefixes a query names (handles or token tuples), each of 1 to ``max_length`` tokens."""
        if isinstance(prefixes, np.ndarray):
            handles = self._checked_handles(prefixes).ravel()
        else:
            handles = np.array([self.handle(p) for p in prefixes], dtype=np.int64)
        depth = self._depth[handles]
        if (depth == 0).any():
            raise ParameterError("a prefix needs at least one token (the prompt or <bos>)")
        if (depth > self.max_length).any():
            raise ParameterError(
                f"a prefix of {int(depth.max())} tokens is longer than the model's context of {self.max_length}"
            )
        return handles
