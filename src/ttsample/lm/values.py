"""Value estimators ``V_hat`` for a generation task: exact, rollouts, a heuristic, a head fitted at test time.

Each is built in one step from the task and called on trie nodes:
``values(nodes) -> log V_hat`` at internal nodes. Model and reward calls are
counted in the task's model ledger; randomness is passed in.
- ``ExactValues``: ``V*`` by enumerating the trie (small vocabularies and horizons);
  the lab's error models go on top with ``with_error(LMOracle(task, ExactValues(task)), ...)``.
- ``RolloutValues``: the mean of ``tau`` over ``k`` completions drawn from ``pi_ref``.
- ``HeuristicValues``: untrained, ``alpha**(H - h)`` times, for a constraint, its prefix check (0 only on a
  prefix that no response completes) or else ``r(prefix)`` floored; ``alpha**(H - h) * tau(prefix)`` for a tilt
  (``tau = exp(r / beta)``, positive whatever the sign of r).

A value may be 0 only where the estimator can show that the subtree below has
no mass (``proves_zeros``): VGB's and twisted SMC's exactness needs
``V_hat > 0`` wherever ``V* > 0``, and a silent zero cuts a subtree off.
``LMOracle`` refuses a zero from an estimator that does not declare it.
- ``DepthCalibratedValues``: the heuristic's prefix score times a per-depth scale read off a twisted-SMC pilot,
  so that every depth holds about ``Z`` (ours).
- ``ValueHead``: a small MLP on the model's pre-logits, fitted at test time
  on value estimates for the current prompt; ``fit`` reports its held-out error.
- ``LearnedValues``: test-time training during sampling: rollouts answer the
  first nodes a sampler asks (paid for anyway), their estimates train the
  head, the head answers from then on, and a share of later nodes still gets
  rollouts whose labels refit it as they arrive.
- ``UserValues``: a user's estimate of partial generations, named like a
  reward (``python:MODULE:FUNCTION``, ``file.py:FUNCTION``: ``V_hat >= 0``;
  ``hf:DIR[:LABEL]``: a classifier read as ``log V_hat``, e.g. the
  log-probability of a verifier's "good" label), cached per trie node and
  asked once per batch of new nodes.
"""

from __future__ import annotations

import numpy as np

from ..errors import OracleBoundError, ParameterError
from ..logspace import log_of
from .rewards import checked, resolve_reward

USER_VALUE_FORMS = ("python:", "hf:")  # and path/to/file.py:FUNCTION


class ExactValues:
    proves_zeros = True  # a zero is an enumerated subtree without mass
    deterministic = True  # a fixed function of the node (the oracle protocol's sense)

    def __init__(self, task, max_nodes: int = 1 << 20):
        self.log_v = task.exact_log_values(max_nodes)

    def __call__(self, nodes) -> np.ndarray:
        return self.log_v[np.asarray(nodes, dtype=np.int64)]


class RolloutValues:
    """The mean of ``tau`` over ``k`` completions from ``pi_ref``, floored at ``floor`` (default ``1 / (2k)``).

    A node whose ``k`` rollouts all failed gets the floor, not zero: zero
    would cut its subtree off, and VGB's exactness needs every subtree that
    holds mass to stay reachable.
    """

    deterministic = False  # each estimate is drawn during the run, from its own random stream

    def __init__(self, task, rng: np.random.Generator, k: int = 16, floor: float | None = None):
        self.task, self.rng, self.k = task, rng, int(k)
        self.floor = 0.5 / self.k if floor is None else float(floor)

    def estimate(self, nodes) -> np.ndarray:
        """Mean tau over k completions of each node, drawn from pi_ref to a leaf."""
        nodes = np.asarray(nodes, dtype=np.int64)
        leaves = self.task.sample_suffix(np.repeat(nodes, self.k), self.rng)
        return np.exp(self.task.log_tau(leaves)).reshape(nodes.size, self.k).mean(axis=1)

    def __call__(self, nodes) -> np.ndarray:
        return np.log(np.maximum(self.estimate(nodes), self.floor))


class HeuristicValues:
    """``alpha**(H - h)`` times a score of the prefix: untrained values, as in the VGB paper.

    For a constraint the score is the prefix check (``prefix``, else the
    reward's declared ``Reward.prefix``): 1 where some response may still
    satisfy the constraint, 0 where none can, a proven zero. Without one, it is
    the reward of the prefix floored at ``floor``, since ``r(prefix) = 0``
    proves nothing (an unbalanced Dyck prefix scores 0 and yet most of pi*
    lies below such prefixes: unfloored, VGB and twisted SMC emitted the empty
    word only). For a tilt, ``tau(prefix) = exp(r(prefix) / beta) > 0``.
    """

    deterministic = True

    def __init__(self, task, *, prefix=None, alpha: float = 0.9, floor: float = 0.01):
        self.task, self.alpha, self.floor = task, float(alpha), float(floor)
        if not self.floor > 0:
            raise ParameterError(f"the heuristic's floor must be > 0, got {floor!r}")
        if prefix is None:
            prefix = getattr(task.reward_function, "prefix", None)
        self.proves_zeros = prefix is not None and task.beta is None
        if self.proves_zeros:
            check = checked(prefix, task.lm.ledger)
            self.score = lambda texts: check([task.prompt_text] * len(texts), texts)
        else:
            self.score = task.score

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        h = self.task.tree.depth_of(nodes)
        r = self.score(self.task.text(nodes))
        log_alpha = (self.task.tree.depth - h) * np.log(self.alpha)  # in log space: alpha^(H-h) underflows at long H
        if self.task.beta is None:  # a constraint: alpha^(H-h) times the prefix check, or r(prefix) floored
            return log_alpha + log_of(r if self.proves_zeros else np.maximum(r, self.floor))
        # a tilt: alpha^(H-h) tau(prefix) = alpha^(H-h) exp(r(prefix) / beta); r itself may be negative
        return log_alpha + r / self.task.beta


class DepthCalibratedValues:
    """The heuristic's prefix score scaled per depth so that every depth holds about ``Z``: ours.

    ``V_hat(v) = (Z_hat / M_hat_h) * s(v)`` at depth ``h``, where ``s`` is the
    heuristic at ``alpha = 1`` (the prefix check for a constraint, ``tau(prefix)``
    for a tilt) and ``M_hat_h`` estimates ``sum pi_ref(v) s(v)`` over the
    nodes at depth ``h`` (and the responses already ended): the running
    normaliser of a twisted-SMC pilot with twist ``s`` (``diagnostics["log_z_steps"]``),
    whose last value is ``Z_hat``. With exact values every depth of the walk
    holds mass ``Z``; a fixed ``alpha`` does so only if ``M_h`` decays
    geometrically, and where it does not, the walk piles up at the depths
    that hold more (docs/lm.md, "VGB at long horizons"). The zeros are the
    heuristic's own (proven by the prefix check).
    """

    deterministic = True  # fixed once its pilot has run

    def __init__(self, task, rng: np.random.Generator, particles: int = 256):
        from .oracle import LMOracle
        from .samplers.smc import sample_smc

        self.base = HeuristicValues(task, alpha=1.0)
        self.proves_zeros = self.base.proves_zeros
        pilot = sample_smc(task, LMOracle(task, self.base), particles, rng, twist=True)
        steps = pilot.diagnostics["log_z_steps"]
        if not np.isfinite(pilot.log_z):
            raise ParameterError(f"the {particles}-particle pilot found no response with tau > 0, so there is nothing "
                                 "to calibrate the values on: raise its particles")
        log_mass = np.full(task.horizon + 1, steps[-1])  # past the pilot's last step only ended responses remain
        log_mass[0] = self.base(np.zeros(1, dtype=np.int64))[0]
        log_mass[1:1 + steps.size] = steps
        self.log_scale = pilot.log_z - log_mass  # log (Z_hat / M_hat_h) by depth

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        return self.log_scale[self.base.task.tree.depth_of(nodes)] + self.base(nodes)


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


class LearnedValues:
    """Values learned while sampling: rollouts first, then a value head trained on what they paid for.

    ``labels``: where the labels come from instead of ``k`` rollouts, an
    estimator with ``estimate(nodes) -> V`` and a ``floor`` (``UserValues``:
    a slow verifier distilled into the head at test time).
    The first ``warmup`` distinct nodes asked get ``k``-rollout estimates; the
    head is then fitted on them and answers every later node, except a share
    ``explore`` that still gets rollouts; every ``refit_every`` new labels the
    head is refitted on all of them. Each node is answered once (the oracle's
    counter caches it), so the answers are a fixed function of the node, which
    is all VGB's exactness needs. ``fits`` records each fit's size and held-out
    error.
    """

    deterministic = False  # the head changes as it learns

    def __init__(self, task, rng: np.random.Generator, *, k: int = 8, warmup: int = 200, explore: float = 0.1,
                 refit_every: int = 100, labels=None):
        task.prelogits(np.zeros(1, dtype=np.int64))  # the head reads them: a backend without them refuses now
        self.task, self.rng = task, rng
        self.rollouts = RolloutValues(task, rng, k=k) if labels is None else labels
        self.warmup, self.explore, self.refit_every = int(warmup), float(explore), int(refit_every)
        self.nodes: list[int] = []
        self.labels: list[float] = []
        self.head: ValueHead | None = None
        self.fits: list[dict] = []
        self._since_fit = 0

    def _fit(self) -> None:
        if self.head is None:
            self.head = ValueHead(self.task, self.rng)
        error = self.head.fit(np.array(self.nodes), np.array(self.labels), self.rng)
        self.fits.append({"labels": len(self.labels), "held_out_error": error})
        self._since_fit = 0

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        if self.head is None:
            labelled = np.ones(nodes.size, dtype=bool)
        else:
            labelled = self.rng.random(nodes.size) < self.explore
        out = np.empty(nodes.size)
        if labelled.any():
            estimate = self.rollouts.estimate(nodes[labelled])
            self.nodes += nodes[labelled].tolist()
            self.labels += estimate.tolist()
            self._since_fit += int(labelled.sum())
            out[labelled] = np.log(np.maximum(estimate, self.rollouts.floor))
        if (~labelled).any():
            out[~labelled] = self.head(nodes[~labelled])
        if (self.head is None and len(self.labels) >= self.warmup) or (self.head is not None and self._since_fit >= self.refit_every):
            self._fit()
        return out


def is_user_values(kind: str) -> bool:
    """Whether ``kind`` names a user's values (``UserValues``) rather than a built-in estimator."""
    path, sep, function = kind.rpartition(":")
    return kind.startswith(USER_VALUE_FORMS) or (bool(sep) and path.endswith(".py") and function.isidentifier())


class UserValues:
    """``V_hat`` from a user's function of partial text, ``(prompts, prefixes) -> values`` (or per text), or from a
    classifier folder (``hf:``) whose score is read as ``log V_hat``.

    Each node is asked once (cached per trie node), new nodes one batch per
    call. A value of 0 is refused by ``LMOracle`` (nothing proves the subtree
    empty): floor it, or return a small positive value.
    """

    proves_zeros = False
    deterministic = True  # a fixed function of the prefix
    floor = 1e-300  # the least V_hat given to a head that learns from these values (LearnedValues(labels=...))

    def __init__(self, task, name: str):
        self.task, self.name = task, name
        self.scorer = resolve_reward(name)
        self.in_log = name.startswith("hf:")
        self.cache: dict[int, float] = {}

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        fresh = [v for v in dict.fromkeys(nodes.ravel().tolist()) if v not in self.cache]
        if fresh:
            texts = self.task.text(np.array(fresh, dtype=np.int64))
            scores = np.asarray(self.scorer.score([self.task.prompt_text] * len(texts), texts), dtype=np.float64)
            if scores.shape != (len(texts),) or np.isnan(scores).any() or np.isposinf(scores).any() \
                    or (not self.in_log and (scores < 0).any()):
                raise OracleBoundError(f"the values {self.name} must give one finite value >= 0 per prefix (log "
                                       f"values for hf:); got {scores[:5]!r} for {texts[:5]!r}")
            self.cache.update(zip(fresh, scores if self.in_log else log_of(scores)))
        return np.array([self.cache[v] for v in nodes.ravel().tolist()]).reshape(nodes.shape)

    def estimate(self, nodes) -> np.ndarray:
        """``V_hat`` itself (not its log), as the labels of a head that learns from these values."""
        return np.exp(self(nodes))
