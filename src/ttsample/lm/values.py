"""Value estimators ``V_hat`` for a generation task: exact, rollouts, a heuristic, a head fitted at test time.

Each is built in one step from the task and called on trie nodes:
``values(nodes) -> log V_hat`` at internal nodes. Model and reward calls are
counted in the task's model ledger; randomness is passed in.
- ``ExactValues``: ``V*`` by enumerating the trie (small vocabularies and horizons);
  the lab's error models go on top with ``with_error(LMOracle(task, ExactValues(task)), ...)``.
- ``RolloutValues``: the mean of ``tau`` over ``k`` completions drawn from ``pi_ref``.
- ``HeuristicValues``: the untrained ``alpha**(H - h) * r(prefix)`` of the VGB paper.
- ``ValueHead``: a small MLP on the model's pre-logits, fitted at test time
  on value estimates for the current prompt; ``fit`` reports its held-out error;
  ``fitted_head`` pays for the rollouts and fits one in a call.
"""

from __future__ import annotations

import numpy as np

from ..logspace import log_of
from .rewards import checked


class ExactValues:
    def __init__(self, task, max_nodes: int = 1 << 20):
        self.log_v = task.exact_log_values(max_nodes)

    def __call__(self, nodes) -> np.ndarray:
        return self.log_v[np.asarray(nodes, dtype=np.int64)]


class RolloutValues:
    def __init__(self, task, rng: np.random.Generator, k: int = 16):
        self.task, self.rng, self.k = task, rng, int(k)

    def estimate(self, nodes) -> np.ndarray:
        """Mean tau over k completions of each node, drawn from pi_ref to a leaf."""
        nodes = np.asarray(nodes, dtype=np.int64)
        leaves = self.task.sample_suffix(np.repeat(nodes, self.k), self.rng)
        return np.exp(self.task.log_tau(leaves)).reshape(nodes.size, self.k).mean(axis=1)

    def __call__(self, nodes) -> np.ndarray:
        return log_of(self.estimate(nodes))


class HeuristicValues:
    def __init__(self, task, reward=None, alpha: float = 0.9):
        self.task, self.alpha = task, float(alpha)
        self.reward = task.reward if reward is None else checked(reward, task.lm.ledger)

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        h = self.task.tree.depth_of(nodes)
        r = np.array([self.reward(t) for t in self.task.text(nodes)])
        return log_of(self.alpha ** (self.task.horizon - h) * r)


class ValueHead:
    """An MLP from pre-logits (and depth) to V, trained at test time on value estimates for the current prompt."""

    def __init__(self, task, rng: np.random.Generator, hidden: int = 64):
        import torch

        self.torch, self.task = torch, task
        width = task.prelogits(np.zeros(1, dtype=np.int64)).shape[1]
        with torch.random.fork_rng(devices=[]):  # seeded from rng, without touching torch's global state
            torch.manual_seed(int(rng.integers(2**31)))
            self.net = torch.nn.Sequential(torch.nn.Linear(width + 1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
        self.held_out_error: float | None = None

    def _features(self, nodes):
        x = self.task.prelogits(nodes)
        depth = self.task.tree.depth_of(nodes)[:, None] / self.task.horizon
        return self.torch.tensor(np.hstack([x, depth]), dtype=self.torch.float32)

    def fit(self, nodes, values: np.ndarray, rng: np.random.Generator, *, holdout: float = 0.2,
            epochs: int = 300) -> float:
        """Fit on (node, V estimate) pairs; returns the held-out mean absolute error of V."""
        torch = self.torch
        nodes = np.asarray(nodes, dtype=np.int64)
        order = rng.permutation(nodes.size)
        cut = max(1, int(nodes.size * (1 - holdout)))
        train, test = order[:cut], order[cut:]
        x = self._features(nodes)
        y = torch.tensor(np.asarray(values, dtype=np.float32))[:, None]
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-2)
        for _ in range(epochs):
            loss = torch.mean((torch.sigmoid(self.net(x[train])) - y[train]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            pred = torch.sigmoid(self.net(x[test])).numpy()[:, 0] if len(test) else np.array([])
        self.held_out_error = float(np.mean(np.abs(pred - np.asarray(values)[test]))) if len(test) else float("nan")
        return self.held_out_error

    def __call__(self, nodes) -> np.ndarray:
        with self.torch.no_grad():
            v = self.torch.sigmoid(self.net(self._features(np.asarray(nodes, dtype=np.int64)))).numpy()[:, 0]
        return np.log(np.maximum(v, 1e-6))  # a floor keeps every reachable subtree reachable


def partial_generations(task, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct internal nodes met the way a sampler meets them: pi_ref rollouts cut at a uniform depth."""
    found: list[int] = []
    for _ in range(100):
        nodes = np.zeros(count, dtype=np.int64)
        cut = rng.integers(1, max(task.horizon, 2), size=count)
        for h in range(task.horizon - 1):
            going = np.flatnonzero((cut > h) & ~task.tree.is_leaf(nodes))
            if going.size:
                nodes[going], _ = task.draw_children(nodes[going], rng)
        fresh = nodes[~task.tree.is_leaf(nodes) & (nodes != 0)]
        found = list(dict.fromkeys(found + fresh.tolist()))
        if len(found) >= count:
            break
    return np.array(found[:count], dtype=np.int64)


def fitted_head(task, rng: np.random.Generator, *, prefixes: int = 200, k: int = 8) -> ValueHead:
    """A value head fitted at test time on ``k``-rollout labels of ``prefixes`` partial generations (costs in the model ledger)."""
    nodes = partial_generations(task, prefixes, rng)
    labels = RolloutValues(task, rng, k=k).estimate(nodes)
    head = ValueHead(task, rng)
    head.fit(nodes, labels, rng)
    return head
