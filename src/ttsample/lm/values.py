"""Value estimators ``V_hat`` for the language-model oracle: exact, rollouts, a heuristic, a fitted head.

Each is a callable ``values(ids, responses) -> log V_hat`` for internal nodes
of the generation tree (``responses``: the tokens after the prompt).
- ``ExactValues``: ``V*`` from an enumerated ``LMTarget``; the lab's error
  models can be put on top by using ``make_oracle(lm_target.target, ...)`` instead.
- ``RolloutValues``: the mean of ``tau`` over ``k`` completions drawn from
  ``pi_ref`` (forward passes and reward calls counted in ``lm.ledger``).
- ``HeuristicValues``: the untrained ``alpha**(H - h) * r(prefix)`` of the VGB paper.
- ``ValueHead``: a small MLP on the model's pre-logits, fitted at test time
  on rollout values for the current prompt; ``fit`` reports its held-out error.
"""

from __future__ import annotations

import numpy as np

from ..logspace import log_of
from .rewards import checked


class ExactValues:
    def __init__(self, lm_target):
        self.log_v = lm_target.log_values()

    def __call__(self, ids, responses) -> np.ndarray:
        return self.log_v[np.asarray(ids)]


class RolloutValues:
    def __init__(self, oracle, k: int = 16, seed: int = 0):
        self.oracle, self.k = oracle, int(k)
        self.rng = np.random.default_rng(seed)

    def estimate(self, responses: list[tuple[int, ...]]) -> np.ndarray:
        """Mean tau over k completions of each response, drawn from pi_ref to the horizon."""
        o, lm = self.oracle, self.oracle.lm
        eos = lm.tokenizer.eos_id
        runs = [r for r in responses for _ in range(self.k)]
        for _ in range(o.tree.depth):
            open_ = [i for i, r in enumerate(runs) if len(r) < o.tree.depth and eos not in r]
            if not open_:
                break
            q = lm.next_logprobs([o.prompt + runs[i] for i in open_])[:, o.actions]
            p = np.exp(q - q.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            picks = (p.cumsum(axis=1) > self.rng.random((len(open_), 1))).argmax(axis=1)
            for i, a in zip(open_, picks):
                runs[i] = runs[i] + (int(o.actions[a]),)
        tau = np.exp(o.log_tau(runs)).reshape(len(responses), self.k)
        return tau.mean(axis=1)

    def __call__(self, ids, responses) -> np.ndarray:
        return log_of(self.estimate(responses))


class HeuristicValues:
    def __init__(self, oracle, reward, alpha: float = 0.9):
        self.oracle, self.alpha = oracle, float(alpha)
        self.reward = checked(reward, oracle.lm.ledger)

    def __call__(self, ids, responses) -> np.ndarray:
        h = np.array([len(r) for r in responses])
        r = np.array([self.reward(self.oracle.lm.tokenizer.decode(t)) for t in responses])
        return log_of(self.alpha ** (self.oracle.tree.depth - h) * r)


class ValueHead:
    """An MLP from pre-logits to V, trained at test time on rollout values for the current prompt."""

    def __init__(self, oracle, hidden: int = 64, seed: int = 0):
        import torch

        self.torch, self.oracle = torch, oracle
        torch.manual_seed(seed)
        width = oracle.lm.prelogits([oracle.prompt]).shape[1]
        self.net = torch.nn.Sequential(torch.nn.Linear(width + 1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1))
        self.held_out_error: float | None = None

    def _features(self, responses):
        lm, o = self.oracle.lm, self.oracle
        x = lm.prelogits([o.prompt + r for r in responses])
        depth = np.array([[len(r) / o.tree.depth] for r in responses])
        return self.torch.tensor(np.hstack([x, depth]), dtype=self.torch.float32)

    def fit(self, responses: list[tuple[int, ...]], values: np.ndarray, *, holdout: float = 0.2,
            epochs: int = 300, seed: int = 0) -> float:
        """Fit on (response, V estimate) pairs; returns the held-out mean absolute error of V."""
        torch = self.torch
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(responses))
        cut = max(1, int(len(order) * (1 - holdout)))
        train, test = order[:cut], order[cut:]
        x = self._features(responses)
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

    def __call__(self, ids, responses) -> np.ndarray:
        with self.torch.no_grad():
            v = self.torch.sigmoid(self.net(self._features(responses))).numpy()[:, 0]
        return np.log(np.maximum(v, 1e-6))  # a floor keeps every reachable subtree reachable
