"""Tilted targets on a language model's generation tree, exact for small vocabularies and horizons.

The generation tree has depth ``H`` (the horizon) and one branch per allowed
token (every token but ``<bos>``; ``pi_ref`` is the model's next-token law
renormalised over them). ``<eos>`` is absorbing: after it only ``<eos>``
follows, with probability 1, so every leaf is a length-``H`` sequence and
shorter responses are padded. The target is

    pi*(y | x) ∝ pi_ref(y | x) * tau(x, y),   tau = exp(r / beta)  or  tau = 1{r(y) > 0} (a constraint),

computed exactly by enumerating every prefix with batched forward passes,
and returned as a lab ``Target``: every sampler, oracle error model and exact
law of the lab applies to it unchanged. ``log_values()`` gives
``log V*(v) = log E_{pi_ref}[tau | v]`` at every node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..logspace import logsumexp
from ..target import Target
from ..trees import Tree
from .rewards import checked


@dataclass
class LMTarget:
    target: Target
    log_pi_ref: np.ndarray  # log pi_ref(v | prompt) for every node, heap order
    log_tau: np.ndarray  # log tau at the leaves
    actions: np.ndarray  # action index -> token id
    prompt: tuple[int, ...]
    lm: object

    @property
    def tree(self) -> Tree:
        return self.target.tree

    def tokens(self, leaf_index: int) -> tuple[int, ...]:
        """The response at a leaf (without the prompt and the padding after <eos>)."""
        digits = _digits(np.array([leaf_index]), self.tree.branching, self.tree.depth)[0]
        out = []
        for a in digits:
            out.append(int(self.actions[a]))
            if out[-1] == self.lm.tokenizer.eos_id:
                break
        return tuple(out)

    def text(self, leaf_index: int) -> str:
        return self.lm.tokenizer.decode(self.tokens(leaf_index))

    def log_values(self) -> np.ndarray:
        """``log V*(v)`` per node: ``log mu*(v) + log Z - log pi_ref(v)`` (-inf where pi_ref(v) = 0)."""
        with np.errstate(invalid="ignore"):
            out = self.target.log_mass + self.target.log_z - self.log_pi_ref
        return np.where(np.isneginf(self.log_pi_ref), -np.inf, out)


def _digits(positions: np.ndarray, b: int, h: int) -> np.ndarray:
    """Base-b digits (most significant first) of positions within a level of depth h."""
    out = np.zeros((positions.size, h), dtype=np.int64)
    rest = positions.copy()
    for k in range(h - 1, -1, -1):
        out[:, k] = rest % b
        rest //= b
    return out


def generation_actions(tokenizer) -> np.ndarray:
    """The tokens the generation tree branches on: every token but <bos>, in id order."""
    return np.array([t for t in range(tokenizer.vocab_size) if t != tokenizer.bos_id])


def prompt_ids(lm, prompt: str | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(prompt, str):
        return (lm.tokenizer.bos_id, *lm.tokenizer.encode(prompt))
    return tuple(int(t) for t in prompt)


def tilted_target(lm, prompt: str | tuple, horizon: int, reward, *, beta: float | None = None,
                  max_leaves: int = 1 << 24) -> LMTarget:
    """Exact ``pi*`` for a prompt, horizon and reward (``beta=None``: the reward is a 0/1 constraint)."""
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ParameterError(f"the horizon must be an integer >= 1, got {horizon!r}")
    if beta is not None and not beta > 0:
        raise ParameterError(f"beta must be > 0, got {beta}")
    prompt = prompt_ids(lm, prompt)
    if len(prompt) + horizon > lm.max_length:
        raise ParameterError(
            f"prompt ({len(prompt)} tokens) + horizon ({horizon}) exceed the model's context of {lm.max_length}"
        )
    tok = lm.tokenizer
    actions = generation_actions(tok)
    b = actions.size
    eos = int(np.flatnonzero(actions == tok.eos_id)[0])
    if b**horizon > max_leaves:
        raise ParameterError(f"{b}**{horizon} leaves are too many to enumerate (limit {max_leaves}); lower the horizon")
    tree = Tree(b, horizon)
    levels = [np.zeros(1)]
    ended = [np.zeros(1, dtype=bool)]
    for h in range(horizon):
        log_p, done = levels[-1], ended[-1]
        child = np.full((log_p.size, b), -np.inf)
        live = np.flatnonzero(~done & np.isfinite(log_p))
        if live.size:
            seqs = [prompt + tuple(int(t) for t in actions[d]) for d in _digits(live, b, h)]
            q = lm.next_logprobs(seqs)[:, actions]
            child[live] = log_p[live, None] + q - logsumexp(q, axis=1)[:, None]
        stopped = np.flatnonzero(done & np.isfinite(log_p))
        child[stopped, eos] = log_p[stopped]
        levels.append(child.ravel())
        ended.append((done[:, None] | (np.arange(b) == eos)[None, :]).ravel())
    leaf_log_p = levels[-1]
    rewarded = np.flatnonzero(np.isfinite(leaf_log_p))
    score = checked(reward, lm.ledger)
    texts = [tok.decode(int(t) for t in actions[d]) for d in _digits(rewarded, b, horizon)]
    r = np.array([score(t) for t in texts])
    log_tau = np.full(leaf_log_p.size, -np.inf)
    if beta is None:
        log_tau[rewarded] = np.where(r > 0, 0.0, -np.inf)
    else:
        log_tau[rewarded] = r / beta
    target = Target.from_leaf_log_masses(tree, leaf_log_p + log_tau)
    return LMTarget(target, np.concatenate(levels), log_tau, actions, prompt, lm)
