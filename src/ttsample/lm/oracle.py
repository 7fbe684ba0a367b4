"""The language model's generation tree as a lab oracle, so the lab's samplers drive a real model.

Node ids are the lab's heap ids on the tree of ``LMTarget``/``tilted_target``
(branching = allowed tokens, depth = horizon, ``<eos>`` absorbing). The
answer at a node is ``log pi_ref(v) + log V_hat(v)`` from model calls (cached
and counted in ``lm.ledger``); at a leaf it is exact, ``log pi_ref(y) + log tau(y)``.
Masses are unnormalised (the normaliser is what nobody knows), which the walks
do not need; JVV, which does, refuses this oracle.
"""

from __future__ import annotations

import numpy as np

from ..logspace import logsumexp
from ..trees import Tree
from .rewards import checked
from .targets import _digits, generation_actions, prompt_ids


class LMOracle:
    name = "language-model"
    normalised = False

    def __init__(self, lm, prompt, horizon: int, reward, values, *, beta: float | None = None, log_rho: float = np.inf):
        self.lm = lm
        self.prompt = prompt_ids(lm, prompt)
        self.actions = generation_actions(lm.tokenizer)
        self.tree = Tree(int(self.actions.size), int(horizon))
        self.reward = checked(reward, lm.ledger)
        self.beta = beta
        self.values = values  # values(ids, token prefixes) -> log V_hat at internal nodes
        self.log_rho = float(log_rho)  # a bound on the value errors, if the caller knows one
        self.costs = lm.ledger  # what the answers cost; CountedOracle copies it into the sampler's ledger

    @property
    def rho(self) -> float:
        return float(np.exp(self.log_rho))

    def prefixes(self, ids: np.ndarray) -> list[tuple[int, ...]]:
        """The tokens on the path to each node, padding after <eos> included (see ``trim``)."""
        depth = self.tree.depth_of(ids)
        out = []
        for v, h in zip(ids, depth):
            digits = _digits(np.array([v - self.tree.level_starts[h]]), self.tree.branching, int(h))[0]
            out.append(tuple(int(t) for t in self.actions[digits]))
        return out

    def log_pi_ref(self, responses: list[tuple[int, ...]]) -> np.ndarray:
        """``log pi_ref(response | prompt)`` over the allowed tokens, <eos> absorbing."""
        out = np.zeros(len(responses))
        index = {int(t): a for a, t in enumerate(self.actions)}
        steps = [(i, k) for i, r in enumerate(responses) for k in range(len(r))]
        live = [(i, k) for i, k in steps if self.lm.tokenizer.eos_id not in responses[i][:k]]
        if live:
            q = self.lm.next_logprobs([self.prompt + responses[i][:k] for i, k in live])[:, self.actions]
            q = q - logsumexp(q, axis=1)[:, None]
            for row, (i, k) in enumerate(live):
                out[i] += q[row, index[responses[i][k]]]
        for i, r in enumerate(responses):  # after <eos> only <eos> has mass
            first = r.index(self.lm.tokenizer.eos_id) if self.lm.tokenizer.eos_id in r else len(r)
            if any(t != self.lm.tokenizer.eos_id for t in r[first:]):
                out[i] = -np.inf
        return out

    def trim(self, response: tuple[int, ...]) -> tuple[int, ...]:
        """A response up to and including its first <eos>: what a reward or a value sees."""
        eos = self.lm.tokenizer.eos_id
        return response[: response.index(eos) + 1] if eos in response else response

    def log_tau(self, responses: list[tuple[int, ...]]) -> np.ndarray:
        r = np.array([self.reward(self.lm.tokenizer.decode(t)) for t in responses])
        return np.where(r > 0, 0.0, -np.inf) if self.beta is None else r / self.beta

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        flat = ids.ravel()
        responses = self.prefixes(flat)
        out = self.log_pi_ref(responses)
        leaf = flat >= self.tree.leaf_start
        reachable = np.isfinite(out)
        at_leaf = np.flatnonzero(leaf & reachable)
        if at_leaf.size:
            out[at_leaf] += self.log_tau([responses[i] for i in at_leaf])
        inner = np.flatnonzero(~leaf & reachable)
        if inner.size:
            out[inner] += self.values(flat[inner], [self.trim(responses[i]) for i in inner])
        return out.reshape(ids.shape)
