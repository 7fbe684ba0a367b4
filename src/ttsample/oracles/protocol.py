"""The oracle protocol: what every sampler may ask of ``mu_hat``.

An oracle answers on the nodes of its ``tree`` (``ttsample.trees``):

- ``log_weight(ids)`` (required): ``log mu_hat(v)`` for an array of node
  handles, same shape; ``-inf`` for mass zero, never NaN or ``+inf``. At a
  leaf the answer is exact (checking a complete object is cheap); at internal
  nodes it may err by a factor the oracle bounds by ``log_rho`` (``inf`` when
  it knows no bound). Answers are deterministic: asking a node again gives the
  same answer. Masses need not be normalised unless ``normalised`` is true
  (JVV needs it; the walks do not).
- Declared facts, with their defaults: ``normalised`` (True), ``flat_promise``
  (False: true when every internal node is promised within rho of flat,
  which uniform rejection needs), ``deterministic`` (True: each node's answer
  is a fixed function of the node, set before the run and independent of its
  draws; false for values drawn or learned while a sampler runs, whose
  output then has no exact law) and
  ``costs`` (None, or the ``Ledger`` of a model whose forward passes answer
  the queries; the query counter adds what it spends to the run's ledger).
- ``children(ids) -> (child_ids, log_w)``, shape ``ids.shape + (b,)``: every
  child and its weight, for trees of small branching. Derived from
  ``log_weight``.
- ``propose_child(ids, rng) -> (child_ids, log_q)``: one child per node, drawn
  from a proposal ``q(. | v)``, with its log-probability; and
  ``proposal_log_prob(ids)``: ``log q(v | parent(v))`` for non-root nodes.
  Derived default: uniform over the ``b`` children. An oracle backed by a model
  proposes from the model (``pi_ref``), which is what makes walks on 50,000
  token vocabularies possible.

Wrappers (the query counter, the error models) are oracles around any oracle
and pass the declared facts through. An oracle of one's own subclasses
``Oracle`` to get the derived methods and the defaults.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..trees.protocol import TreeProtocol
from ..ledger import Ledger


class Oracle(Protocol):
    tree: TreeProtocol
    name: str
    log_rho: float
    normalised: bool = True
    flat_promise: bool = False
    deterministic: bool = True
    costs: Ledger | None = None

    def log_weight(self, ids: np.ndarray) -> np.ndarray: ...

    @property
    def rho(self) -> float:
        return float(np.exp(self.log_rho))

    def describe(self) -> str:
        return f"{self.name} (rho = {self.rho:.4g})"

    def children(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kids = self.tree.children(ids)
        return kids, self.log_weight(kids)

    def proposal_log_prob(self, ids: np.ndarray) -> np.ndarray:
        return np.full(np.shape(ids), -np.log(self.tree.branching))

    def propose_child(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        ids = np.asarray(ids, dtype=np.int64)
        kids = self.tree.child(ids, rng.integers(self.tree.branching, size=ids.shape))
        return kids, self.proposal_log_prob(kids)
