"""The exact law of a generation task: pi_ref, tau, pi* and V* by enumerating its trie, computed in one place.

    law = ExactLaw(task)                      # grows pi_ref's support (small vocabularies and horizons, or top-k/top-p)
    law.pi_star[law.position(samples)]        # pi* of sampled leaves

Per-response arrays are in the order of ``leaves`` (the trie's leaf handles);
``position`` maps handles, and ``index`` token tuples, to that order. The
laws are float64 and normalised here: the model answers in float32, so
``exp(log pi_ref)`` over the leaves sums to 1 only to about ``H * 1e-5``, by
an amount that depends on the CPU's rounding.
"""

from __future__ import annotations

import numpy as np

from ..logspace import log_normalize
from .rewards import log_tau_of


class ExactLaw:
    def __init__(self, task, max_nodes: int = 1 << 20):
        self.task = task
        task.grow_support(max_nodes)
        self.leaves = task.tree.leaf_nodes()
        self.log_pi = task.log_pi_ref(self.leaves).astype(np.float64)
        self.reward = task.rewards(self.leaves)  # once per leaf
        self.log_tau = log_tau_of(self.reward, task.beta)
        # log V*(v) for every node: the values' exact reference
        self.log_v = task.exact_log_values(max_nodes, leaf_log_tau=self.log_tau)
        self.log_z = float(self.log_v[0])  # log E_pi_ref[tau]
        self.pi_ref = np.exp(log_normalize(self.log_pi))
        self.pi_star = np.exp(log_normalize(self.log_pi + self.log_tau))
        self.index = {tokens: i for i, tokens in enumerate(task.tokens(self.leaves))}
        self._position = {int(v): i for i, v in enumerate(self.leaves)}

    def position(self, handles) -> np.ndarray:
        """The position of each leaf handle in ``leaves`` (the order of the per-response arrays)."""
        return np.array([self._position[int(v)] for v in np.asarray(handles).ravel()], dtype=np.int64)

    def by_handle(self, per_response: np.ndarray) -> np.ndarray:
        """A per-response array laid over every trie handle (0 off the leaves), so that samples index it."""
        out = np.zeros(self.task.tree.num_nodes)
        out[self.leaves] = per_response
        return out

    @property
    def base_reward(self) -> float:
        return float(self.pi_ref @ self.reward)

    @property
    def pistar_reward(self) -> float:
        return float(self.pi_star @ self.reward)

    def kl_to_base(self) -> float:
        """``KL(pi* || pi_ref)``."""
        on = self.pi_star > 0
        return float(np.sum(self.pi_star[on] * (np.log(self.pi_star[on]) - np.log(self.pi_ref[on]))))

    def best_of_n(self, k: int) -> np.ndarray:
        """The exact output law of best-of-``k`` (``lm.samplers.best_of_n``): its score is ``tau`` for a
        constraint and ``r`` for a tilt."""
        return best_of_n_law(self.pi_ref, np.exp(self.log_tau) if self.task.beta is None else self.reward, k)

    def noise_floor(self, n: int, rng: np.random.Generator, repeats: int = 200) -> tuple[float, float, float]:
        """Mean and 95% quantile of the TV, and mean plug-in KL, of the empirical law of ``n`` exact draws of pi*."""
        support = self.pi_star[self.pi_star > 0]
        counts = rng.multinomial(n, support, size=repeats) / n
        tv = 0.5 * np.abs(counts - support).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            kl = np.where(counts > 0, counts * np.log(counts / support), 0.0).sum(axis=1)
        return float(tv.mean()), float(np.quantile(tv, 0.95)), float(kl.mean())


def best_of_n_law(p_ref: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """The law of the best of ``k`` draws from ``p_ref`` by ``score``, ties to the first drawn: a response at
    score level ``s`` wins with probability ``(F(s) ** k - F(s-) ** k) * p_ref / mass(s)``."""
    levels, level_of = np.unique(score, return_inverse=True)
    mass = np.bincount(level_of, weights=p_ref, minlength=levels.size)
    below = np.concatenate([[0.0], np.cumsum(mass)[:-1]])
    chosen = (below + mass) ** k - below**k  # P(the best of k draws is at this level)
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(mass > 0, chosen / mass, 0.0)
    return p_ref * per[level_of]
