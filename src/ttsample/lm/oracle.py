"""A generation task as an oracle, so every sampler of the lab drives a real model.

Nodes are the task's trie handles. The answer at an internal node is
``log pi_ref(v) + log V_hat(v)`` and at a leaf it is exact,
``log pi_ref(y) + log tau(y)``. ``log_weight`` batches a request over the
distinct parents of the nodes asked (one model call for their next-token
laws); proposals draw the next token from ``pi_ref`` (``task.draw_children``).
Masses are unnormalised (the normaliser is what nobody knows), which the walks
do not need; JVV, which does, refuses this oracle. Put an error model on it
with ``ttsample.oracles.with_error``. A value of 0 at a node is accepted only
from values that declare ``proves_zeros`` (ExactValues, the heuristic with a
prefix check): any other zero is refused, naming the node, since it would cut
off a subtree that may hold mass.
"""

from __future__ import annotations

import numpy as np

from ..errors import OracleBoundError
from ..oracles.protocol import Oracle


class LMOracle(Oracle):
    name = "language-model"
    normalised = False

    def __init__(self, task, values, *, log_rho: float = np.inf):
        """``values(nodes) -> log V_hat`` at internal nodes (``ttsample.lm.values``); ``log_rho``: a bound on its error, if known."""
        self.task = task
        self.tree = task.tree
        self.values = values
        self.log_rho = float(log_rho)
        self.deterministic = getattr(values, "deterministic", False)  # a bare function: no exact law is claimed
        self.costs = task.lm.ledger  # what the answers cost; CountedOracle copies it into the sampler's ledger

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        flat = ids.ravel()
        out = self.task.log_pi_ref(flat).copy()
        leaf = self.tree.is_leaf(flat)
        reachable = np.isfinite(out)
        at_leaf = np.flatnonzero(leaf & reachable)
        if at_leaf.size:
            out[at_leaf] += self.task.log_tau(flat[at_leaf])
        inner = np.flatnonzero(~leaf & reachable)
        if inner.size:
            log_v = np.asarray(self.values(flat[inner]), dtype=np.float64)
            if not getattr(self.values, "proves_zeros", False) and np.isneginf(log_v).any():
                node = flat[inner[np.argmax(np.isneginf(log_v))]]
                raise OracleBoundError(
                    f"the values are 0 at the prefix {self.task.text(np.array([node]))[0]!r}, and nothing shows that "
                    "no response below it satisfies the reward: a silent zero cuts off a subtree that may hold mass "
                    "of pi*. Floor the values, or give the reward a prefix check (Reward(..., prefix=)) or the "
                    "values proves_zeros = True where a zero is proven")
            out[inner] += log_v
        return out.reshape(ids.shape)

    def log_values(self, ids: np.ndarray) -> np.ndarray:
        """``log V_hat`` at any node, leaves included (there: the estimator's reading of the complete response, not
        ``tau``): what a verifier-guided search ranks by (``lm.samplers.search``)."""
        ids = np.asarray(ids, dtype=np.int64)
        return np.asarray(self.values(ids.ravel()), dtype=np.float64).reshape(ids.shape)

    def proposal_log_prob(self, ids: np.ndarray) -> np.ndarray:
        return self.task.proposal_log_prob(ids)

    def propose_child(self, ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self.task.draw_children(ids, rng)
