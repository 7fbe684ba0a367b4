"""The ledger: every cost a sampler incurs, and the one wrapper that tallies queries.

``CountedOracle`` wraps any oracle and is itself queried like one: each call
to ``log_weight`` (or ``children``, derived from it) adds the number of nodes
asked to ``queries_total``; answers are cached per node handle (the cache
grows with a tree that grows), so the wrapped oracle is asked each node at most once and
``queries_distinct`` is the number of nodes it was asked. An oracle backed by
a model exposes its model's ledger as ``costs``; what its answers cost
(forward passes, tokens, cache hits and misses, reward calls) is added to the
sampler's ledger too.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import OracleBoundError
from .protocol import Oracle


MODEL_COSTS = ("forward_passes", "tokens", "cache_hits", "cache_misses", "reward_calls")


@dataclass
class Ledger:
    queries_total: int = 0
    queries_distinct: int = 0
    steps: int = 0  # chain-steps for walks, descent levels for JVV
    tries: int = 0  # proposals (JVV) or walk runs (restart rule)
    restarts: int = 0  # tries that produced no sample
    surplus: int = 0  # tries that produced a sample beyond the number asked for (dropped; tries = samples + restarts + surplus)
    forward_passes: int = 0  # model invocations (one batched call counts once)
    tokens: int = 0  # tokens fed to the model
    cache_hits: int = 0  # prefixes answered from a model cache
    cache_misses: int = 0  # prefixes the model had to compute
    reward_calls: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def record_tries(self, tries: int, successes: int, kept: int) -> None:
        """``tries`` attempts of which ``successes`` produced a sample and ``kept`` were delivered."""
        self.tries += tries
        self.restarts += tries - successes
        self.surplus += successes - kept

    @contextmanager
    def timed(self):
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start


class CountedOracle(Oracle):
    """Counts and caches the queries made to ``oracle``; proposals pass through, their model costs counted."""

    def __init__(self, oracle, ledger: Ledger, *, model_costs: bool = True):
        """``model_costs=False``: leave the model's costs to the caller (a sampler that also decodes counts them once)."""
        self.oracle = oracle
        self.tree = oracle.tree
        self.name = oracle.name
        self.log_rho = oracle.log_rho
        self.normalised = getattr(oracle, "normalised", True)
        self.ledger = ledger
        self._costs = getattr(oracle, "costs", None) if model_costs else None  # a model's ledger (forward passes, ...)
        self._cache = np.full(self.tree.num_nodes, np.nan)  # grows with a tree that grows

    def _slots(self, ids: np.ndarray) -> np.ndarray:
        if ids.size and ids.max() >= self._cache.size:
            grown = np.full(max(int(ids.max()) + 1, 2 * self._cache.size), np.nan)
            grown[: self._cache.size] = self._cache
            self._cache = grown
        return ids

    @contextmanager
    def _model_costs(self):
        """Adds what the model spent inside the block to the sampler's ledger."""
        before = self._costs.as_dict() if self._costs is not None else None
        yield
        if before is not None:
            after = self._costs.as_dict()
            for name in MODEL_COSTS:
                setattr(self.ledger, name, getattr(self.ledger, name) + after[name] - before[name])

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
            with self._model_costs():
                fresh = self.oracle.log_weight(fresh_ids)
            if np.isnan(fresh).any() or np.isposinf(fresh).any():
                raise OracleBoundError(
                    f"the {self.oracle.name} oracle answered NaN or +inf; answers must be finite log-masses or -inf"
                )
            self._cache[fresh_ids] = fresh
            self.ledger.queries_distinct += fresh_ids.size
            values = self._cache[ids]
        return values

    def proposal_log_prob(self, ids: np.ndarray) -> np.ndarray:
        with self._model_costs():
            return self.oracle.proposal_log_prob(ids)

    def propose_child(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        with self._model_costs():
            return self.oracle.propose_child(ids, rng)
