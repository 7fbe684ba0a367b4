"""Tilted targets on a language model's generation tree, exact for small vocabularies and horizons.

The generation tree has depth ``H`` (the horizon) and one branch per allowed
token (every token but ``<bos>``; ``pi_ref`` is the model's next-token law
renormalised over them). ``<eos>`` is absorbing: after it only ``<eos>``
follows, with probability 1, so every leaf is a length-``H`` sequence and
shorter responses are padded. The target is

    pi*(y | x) ∝ pi_ref(y | x) * tau(x, y),   tau = exp(r / beta)  or  tau = 1{r(y) > 0} (a constraint),

computed exactly by enumerating the generation task's trie
(``ExactLaw``, batched forward passes), laid out on the
complete tree and returned as a lab ``Target``: every sampler, oracle error model and exact
law of the lab applies to it unchanged. ``log_values()`` gives
``log V*(v) = log E_{pi_ref}[tau | v]`` at every node.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..target import Target, subtree_log_masses
from ..trees import Tree
from .decoding import Decoding
from .exact import ExactLaw
from .task import GenerationTask


@dataclass
class LMTarget:
    target: Target
    log_pi_ref: np.ndarray  # log pi_ref(v | prompt) for every node, heap order
    actions: np.ndarray  # action index -> token id
    prompt: tuple[int, ...]
    lm: object

    @property
    def tree(self) -> Tree:
        return self.target.tree

    def tokens(self, leaf_index: int) -> tuple[int, ...]:
        """The response at a leaf (without the prompt and the padding after <eos>)."""
        rest, digits = int(leaf_index), []
        for _ in range(self.tree.depth):
            rest, a = divmod(rest, self.tree.branching)
            digits.append(a)
        out = []
        for a in digits[::-1]:
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


def tilted_target(lm, prompt: str | tuple, horizon: int, reward, *, beta: float | None = None,
                  decoding: Decoding | None = None, max_leaves: int = 1 << 24) -> LMTarget:
    """Exact ``pi*`` for a prompt, horizon and reward (``beta=None``: the reward is a 0/1 constraint).

    Lays the task's exact law (``ExactLaw``: the enumerated trie) on the
    complete tree, each response padded with ``<eos>``.
    ``decoding``: temperature, top-k, top-p of ``pi_ref`` (the model's own law by default).
    """
    task = GenerationTask(lm, prompt, horizon, reward, beta=beta, decoding=decoding)
    b = task.tree.branching
    if b**horizon > max_leaves:
        raise ParameterError(f"{b}**{horizon} leaves are too many to enumerate (limit {max_leaves}); lower the horizon")
    law = ExactLaw(task, max_nodes=4 * max_leaves)
    trie = task.tree
    every = np.arange(trie.num_nodes, dtype=np.int64)
    depth = trie.depth_of(every)
    position = np.zeros(every.size, dtype=np.int64)  # a node's index among the complete tree's nodes of its depth
    for h in range(1, horizon + 1):
        level = every[depth == h]
        position[level] = position[trie.parent(level)] * b + trie.action(level)
    leaves = law.leaves
    pad = horizon - depth[leaves]  # <eos> after <eos>, to the horizon
    padding = np.array([sum(task.eos_action * b**j for j in range(k)) for k in range(horizon + 1)], dtype=np.int64)
    index = position[leaves] * b**pad + padding[pad]
    tree = Tree(b, horizon)
    leaf_log_pi = np.full(tree.num_leaves, -np.inf)
    leaf_log_pi[index] = law.log_pi
    leaf_log_tau = np.full(tree.num_leaves, -np.inf)
    leaf_log_tau[index] = law.log_tau
    target = Target.from_leaf_log_masses(tree, leaf_log_pi + leaf_log_tau)
    log_pi_ref = subtree_log_masses(tree, leaf_log_pi[None, :])[0]  # pi_ref(v) sums over the leaves below v
    return LMTarget(target, log_pi_ref, task.actions, task.prompt, lm)
