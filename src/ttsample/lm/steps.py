"""Trees whose actions are reasoning steps: chunks of text ended by a delimiter, over the token trie.

A process verifier scores steps, not tokens, so the samplers that read values
(VGB, ActionLevelRS, twisted SMC) must move a step at a time. ``Steps`` says
where a step ends: after the token whose step text (the tokens since the last
step's end, decoded) contains a delimiter, after ``max_step_tokens`` tokens,
or at the end of the response (``<eos>``, a stop string, the token horizon).
``max_steps`` ends a response after that many steps (a truncation, as the
token horizon is one).

``StepTree`` is the tree the samplers see: its nodes are the token trie's
handles at step ends (the root included), its parent is the previous step's
end, its depth counts steps. It holds no tokens of its own: the token trie
underneath keeps one handle per token prefix, so the model's cache is shared
and a step costs its new tokens once. Children are drawn (a step from
``pi_ref``, its log-probability the sum over its tokens), never listed:
``branching`` is a bound no sampler can list, so every sampler takes its
proposal form. The leaves are the token trie's, so the response law
``pi*(y) ∝ pi_ref(y) tau(y)`` is the token-level one whatever the steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..arrays import grown
from ..errors import ParameterError, TreeShapeError
from ..trees import TokenTrie

UNLISTED = 1 << 62  # a step tree's branching: children are drawn from pi_ref, never listed


@dataclass(frozen=True)
class Steps:
    """Where a step ends: ``delimiters`` (texts), ``max_step_tokens``, and at most ``max_steps`` per response."""

    delimiters: tuple[str, ...] = ()
    max_step_tokens: int | None = None
    max_steps: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "delimiters", tuple(self.delimiters))
        if any(not isinstance(d, str) or not d for d in self.delimiters):
            raise ParameterError(f"step delimiters must be non-empty texts, got {self.delimiters!r}")
        for name in ("max_step_tokens", "max_steps"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, np.integer)) and value >= 1):
                raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
        if not self.delimiters and self.max_step_tokens is None:
            raise ParameterError("a step needs an end: give a step delimiter (--step-delimiter) or "
                                 "max_step_tokens (--max-step-tokens), or both")

    def as_dict(self) -> dict:
        return {"delimiters": list(self.delimiters), "max_step_tokens": self.max_step_tokens,
                "max_steps": self.max_steps}


class StepTree:
    """The step view of a token trie (the module docstring says what it is).

    Built with the token trie's shape; it makes the trie itself (``tokens``)
    and learns each token node's step state when the trie creates it (the
    trie's ``stop`` hook): where its step started, how many tokens the step
    holds, whether the step ends there, and how many steps end at or above it.
    ``decode(actions) -> text`` decodes a sequence of the trie's actions;
    ``stop`` is the task's own stop test (stop strings), asked first.
    """

    branching = UNLISTED

    def __init__(self, steps: Steps, branching: int, horizon: int, eos: int | None,
                 decode: Callable[[list[int]], str], stop=None):
        self.steps, self.decode, self.user_stop = steps, decode, stop
        self.tokens = TokenTrie(branching, horizon, eos=eos, stop=self._new_nodes)
        # a bound on the steps: max_steps, else the token horizon (a step holds at least one token), which is what
        # the walk's default T and leaf boost are then computed from: give max_steps for a tighter schedule
        self.depth = int(horizon if steps.max_steps is None else min(steps.max_steps, horizon))
        self._end = np.ones(1, dtype=bool)  # the root ends the empty step
        self._start = np.zeros(1, dtype=np.int64)  # a step end: the previous end; inside a step: where it began
        self._count = np.zeros(1, dtype=np.int64)  # tokens since the step began
        self._done = np.zeros(1, dtype=np.int64)  # steps that end at or above the node

    def _new_nodes(self, handles: np.ndarray) -> np.ndarray:
        """The trie's stop hook: record each new node's step state; stop the nodes that end the last step."""
        trie = self.tokens
        stopped = (np.zeros(handles.size, dtype=bool) if self.user_stop is None
                   else np.asarray(self.user_stop(handles), dtype=bool))
        n = int(handles.max()) + 1
        self._end, self._start = grown(self._end, n, False), grown(self._start, n, 0)
        self._count, self._done = grown(self._count, n, 0), grown(self._done, n, 0)
        parent = trie.parent(handles)
        start = np.where(self._end[parent], parent, self._start[parent])
        count = np.where(self._end[parent], 1, self._count[parent] + 1)
        ends = stopped | (trie.depth_of(handles) >= trie.depth)
        if trie.eos is not None:
            ends |= trie.action(handles) == trie.eos
        if self.steps.max_step_tokens is not None:
            ends |= count >= self.steps.max_step_tokens
        for i in np.flatnonzero(~ends):
            if self.steps.delimiters:
                text = self.decode(self._step_actions(int(handles[i]), int(count[i])))
                ends[i] = any(d in text for d in self.steps.delimiters)
        self._start[handles], self._count[handles], self._end[handles] = start, count, ends
        self._done[handles] = self._done[start] + ends
        if self.steps.max_steps is not None:
            stopped |= ends & (self._done[handles] >= self.steps.max_steps)
        return stopped

    def _step_actions(self, node: int, count: int) -> list[int]:
        """The actions of the last ``count`` tokens above ``node`` (its step so far), in order."""
        acts = []
        for _ in range(count):
            acts.append(int(self.tokens._action[node]))
            node = int(self.tokens._parent[node])
        return acts[::-1]

    # ---- the tree protocol, on step ends ----

    @property
    def num_nodes(self) -> int:
        return self.tokens.num_nodes

    @property
    def num_leaf_indices(self) -> int:
        return self.tokens.num_leaf_indices

    @property
    def enumerated(self) -> bool:
        return self.tokens.enumerated

    def ends_step(self, ids: np.ndarray) -> np.ndarray:
        """Whether each token node is a step end (a node of this tree)."""
        return self._end[self.tokens._arr(ids)]

    def depth_of(self, ids: np.ndarray) -> np.ndarray:
        """Steps from the root (inside a step: the steps completed above it)."""
        return self._done[self.tokens._arr(ids)]

    def parent(self, ids: np.ndarray) -> np.ndarray:
        """The previous step's end (the root maps to itself)."""
        ids = self.tokens._arr(ids)
        return np.where(ids == 0, 0, self._start[ids])

    def is_leaf(self, ids: np.ndarray) -> np.ndarray:
        return self.tokens.is_leaf(ids)

    def action(self, ids: np.ndarray) -> np.ndarray:
        raise TreeShapeError("a step tree's children are drawn steps, not numbered actions")

    def child(self, ids: np.ndarray, actions: np.ndarray) -> np.ndarray:
        raise TreeShapeError("a step tree's children are drawn steps, not numbered actions: draw them from pi_ref")

    def children(self, ids: np.ndarray) -> np.ndarray:
        raise TreeShapeError("a step tree's children are drawn, never listed: use a sampler's proposal form")

    def path(self, ids: np.ndarray) -> list[tuple[int, ...]]:
        """The token actions from the root to each node."""
        return self.tokens.path(ids)

    def node_key(self, ids: np.ndarray) -> np.ndarray:
        return self.tokens.node_key(ids)

    def leaf_index(self, ids: np.ndarray) -> np.ndarray:
        return self.tokens.leaf_index(ids)

    def leaf_nodes(self) -> np.ndarray:
        return self.tokens.leaf_nodes()

    def grow_all(self, max_nodes: int) -> None:
        """Every token node (for exact laws on small settings): the step ends are among them."""
        self.tokens.grow_all(max_nodes)
