"""The query counter: the one wrapper that tallies queries.

``CountedOracle`` wraps any oracle and is itself queried like one: each call
to ``log_weight`` (or ``children``, derived from it) adds the number of nodes
asked to ``queries_total``; answers are cached per node handle (the cache
grows with a tree that grows), so the wrapped oracle is asked each node at most once and
``queries_distinct`` is the number of nodes it was asked. An oracle backed by
a model exposes its model's ledger as ``costs``; what its answers cost
(forward passes, tokens, cache hits and misses, reward calls) is charged to
the sampler's ledger too (``ttsample.ledger.charged``).
"""

from __future__ import annotations

import numpy as np

from ..arrays import grown
from ..errors import OracleBoundError
from ..ledger import Ledger, charged
from .protocol import Oracle


class CountedOracle(Oracle):
    """Counts and caches the queries made to ``oracle``; proposals pass through, their model costs counted."""

    def __init__(self, oracle, ledger: Ledger, *, model_costs: bool = True):
        """``model_costs=False``: leave the model's costs to the caller (a sampler that also decodes counts them once)."""
        self.oracle = oracle
        self.tree = oracle.tree
        self.name = oracle.name
        self.log_rho = oracle.log_rho
        self.normalised, self.flat_promise = oracle.normalised, oracle.flat_promise
        self.deterministic = oracle.deterministic
        self.ledger = ledger
        self._costs = oracle.costs if model_costs else None  # a model's ledger (forward passes, ...)
        self._cache = np.full(self.tree.num_nodes, np.nan)  # grows with a tree that grows
        self._valued = np.zeros(self.tree.num_nodes, dtype=bool)  # nodes asked by log_values (not cached here)

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        if ids.size:
            end = int(ids.max()) + 1
            self._cache, self._valued = grown(self._cache, end, np.nan), grown(self._valued, end, False)
        return ids

    def _count_distinct(self, fresh_ids: np.ndarray) -> None:
        """A node is one distinct query, whether ``log_weight`` or ``log_values`` asked it first."""
        self.ledger.queries_distinct += int(np.count_nonzero(~self._valued[fresh_ids]
                                                             & np.isnan(self._cache[fresh_ids])))
        self._valued[fresh_ids] = True

    def cached(self, ids: np.ndarray) -> np.ndarray:
        """Whether each node has been asked already (asking it again costs no distinct query)."""
        return ~np.isnan(self._cache[self._slots(np.asarray(ids, dtype=np.int64))])

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        ids = self._slots(np.asarray(ids, dtype=np.int64))
        self.ledger.queries_total += ids.size
        values = self._cache[ids]
        missing = np.isnan(values)
        if missing.any():
            fresh_ids = np.unique(ids[missing])
            with charged(self.ledger, self._costs):
                fresh = self.oracle.log_weight(fresh_ids)
            if np.isnan(fresh).any() or np.isposinf(fresh).any():
                raise OracleBoundError(
                    f"the {self.oracle.name} oracle answered NaN or +inf; answers must be finite log-masses or -inf"
                )
            self._count_distinct(fresh_ids)
            self._cache[fresh_ids] = fresh
            values = self._cache[ids]
        return values

    def log_values(self, ids: np.ndarray) -> np.ndarray:
        """The wrapped oracle's ``log_values`` (a language-model oracle's), counted like ``log_weight`` but not
        cached here (the values cache their own answers)."""
        ids = self._slots(np.asarray(ids, dtype=np.int64))
        self.ledger.queries_total += ids.size
        self._count_distinct(np.unique(ids))
        with charged(self.ledger, self._costs):
            out = self.oracle.log_values(ids)
        if np.isnan(out).any() or np.isposinf(out).any():
            raise OracleBoundError(f"the {self.oracle.name} oracle's values were NaN or +inf; they must be finite "
                                   "log-values or -inf")
        return out

    def proposal_log_prob(self, ids: np.ndarray) -> np.ndarray:
        with charged(self.ledger, self._costs):
            return self.oracle.proposal_log_prob(ids)

    def propose_child(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        with charged(self.ledger, self._costs):
            return self.oracle.propose_child(ids, rng)
