"""Exact output laws of the samplers on trees small enough to enumerate.

JVV and uniform rejection by summing proposal times acceptance over the
leaves; walks through their
transition matrices, built from the very kernel the sampler runs (so the law
here is the law sampled there). Nothing here counts queries.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..errors import TreeShapeError
from ..logspace import log_normalize
from ..samplers import uniform_rejection
from ..samplers.jvv import log_acceptance_bound

MAX_ENUMERABLE_LEAVES = 1 << 16  # depth 16 binary: a walk law is a few hundred thousand states


def check_enumerable(tree) -> None:
    if tree.num_leaf_indices > MAX_ENUMERABLE_LEAVES:
        raise TreeShapeError(
            f"exact laws need at most {MAX_ENUMERABLE_LEAVES} leaves, this tree has {tree.num_leaf_indices}"
        )


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(np.asarray(p) - np.asarray(q)).sum())


def descent_log_probs(oracle) -> np.ndarray:
    """``log p(x)`` of descending from the root, each step to a child in proportion to its weight.

    JVV's proposal and guided decoding (ActionLevelRS); on any enumerable tree
    (a trie fully grown), indexed by ``tree.leaf_index`` (lexicographic order on
    a complete tree); ``-inf`` where no descent arrives.
    """
    tree = oracle.tree
    check_enumerable(tree)
    out = np.full(tree.num_leaf_indices, -np.inf)
    nodes, log_p = np.zeros(1, dtype=np.int64), np.zeros(1)
    while nodes.size:
        leaf = tree.is_leaf(nodes)
        out[tree.leaf_index(nodes[leaf])] = log_p[leaf]
        nodes, log_p = nodes[~leaf], log_p[~leaf]
        if nodes.size:
            kids, log_w = oracle.children(nodes)
            nodes, log_p = kids.ravel(), (log_p[:, None] + log_normalize(log_w, axis=1)).ravel()
    return out


def descent_leaf_law(oracle) -> np.ndarray:
    """The law of ``descent_log_probs`` (mass missing where a descent meets a node whose children all weigh zero)."""
    return np.exp(descent_log_probs(oracle))


def rejection_output_law(log_p: np.ndarray, log_mu: np.ndarray, log_bound: float) -> tuple[np.ndarray, float]:
    """Leaf law of accepted tries, and the acceptance probability of one try.

    A try proposes leaf ``x`` with probability ``p(x)`` and accepts it with
    ``min(1, mu*(x) / (bound * p(x)))``: the ``min`` only bites when the oracle
    breaks its bound (the samplers raise then instead).
    """
    with np.errstate(invalid="ignore"):
        log_acc = np.minimum(0.0, log_mu - log_bound - log_p)
    joint = np.where(np.isneginf(log_p), 0.0, np.exp(log_p + np.nan_to_num(log_acc, nan=-np.inf)))
    accept = float(joint.sum())
    return joint / accept, accept


def jvv_output_law(oracle, log_bound: float | None = None) -> tuple[np.ndarray, float]:
    """JVV: the descent's proposal, bound ``rho**(2(n-1))`` (see ``rejection_output_law``); on any enumerable
    tree (a trie fully grown too), indexed by ``tree.leaf_index`` like ``descent_log_probs``."""
    tree = oracle.tree
    if log_bound is None:
        log_bound = log_acceptance_bound(tree, oracle.log_rho)
    leaves = tree.leaf_nodes()
    log_mu = np.full(tree.num_leaf_indices, -np.inf)
    log_mu[tree.leaf_index(leaves)] = oracle.log_weight(leaves)
    return rejection_output_law(descent_log_probs(oracle), log_mu, log_bound)


def uniform_rejection_output_law(oracle, log_bound: float | None = None) -> tuple[np.ndarray, float]:
    """Uniform rejection: proposal ``b**-n``, acceptance ``mu*(x) / (b rho b**-n)`` (see ``rejection_output_law``).

    Under the flat oracle's promise the acceptance is at most 1, and a try
    accepts with probability exactly ``1/(b rho)``.
    """
    tree = oracle.tree
    check_enumerable(tree)
    if log_bound is None:
        log_bound = uniform_rejection.log_acceptance_bound(tree, oracle.log_rho)
    log_mu = oracle.log_weight(np.arange(tree.leaf_start, tree.num_nodes))
    log_p = np.full(tree.num_leaves, -tree.depth * np.log(tree.branching))
    return rejection_output_law(log_p, log_mu, log_bound - log_p[0])


def transition_matrix(walk, oracle) -> sp.csr_matrix:
    """The walk's full transition matrix (laziness included), rows = current state."""
    check_enumerable(walk.tree)
    states = np.arange(walk.num_states, dtype=np.int64)
    candidates, weights = walk.kernel(oracle, states)
    weights = weights / weights.sum(axis=0)
    rows = np.broadcast_to(states, candidates.shape)
    used = weights > 0  # candidates with weight 0 may name states that do not exist
    move = sp.csr_matrix((weights[used], (rows[used], candidates[used])), shape=(walk.num_states,) * 2)
    if walk.laziness:
        move = walk.laziness * sp.identity(walk.num_states, format="csr") + (1 - walk.laziness) * move
    return move.tocsr()


def walk_state_law(walk, oracle, steps: int) -> np.ndarray:
    """Law of the state after ``steps`` steps from ``walk.start``."""
    p_t = transition_matrix(walk, oracle).T.tocsr()
    law = np.zeros(walk.num_states)
    law[walk.start] = 1.0
    for _ in range(steps):
        law = p_t @ law
    return law


class LeafMap:
    """Which walk states sit at a leaf, and which leaf: built once, applied to many state laws."""

    def __init__(self, walk):
        tree = walk.tree
        check_enumerable(tree)
        nodes = walk.node_of(np.arange(walk.num_states, dtype=np.int64))
        self.states = np.flatnonzero(tree.is_leaf(nodes))
        self.leaf = tree.leaf_index(nodes[self.states])
        self.num_leaves = tree.num_leaf_indices

    def __call__(self, state_law: np.ndarray) -> np.ndarray:
        return np.bincount(self.leaf, weights=state_law[self.states], minlength=self.num_leaves)


def leaf_marginal(walk, state_law: np.ndarray) -> np.ndarray:
    """Mass of each leaf (by ``tree.leaf_index``: lexicographic order on a complete tree) under a law on the walk's states."""
    return LeafMap(walk)(state_law)


def walk_output_law(walk, oracle, steps: int) -> tuple[np.ndarray, float]:
    """Law of the T-steps-and-restart output, and the probability that one run ends at a leaf."""
    leaf = leaf_marginal(walk, walk_state_law(walk, oracle, steps))
    p_leaf = float(leaf.sum())
    return leaf / p_leaf, p_leaf


def walk_tv_curve(walk, oracle, mu: np.ndarray, max_steps: int):
    """Yield ``(T, P(at a leaf after T steps), TV of the restart rule's output law to mu)`` for T = 1..max_steps;
    ``mu``: the target law on leaves, by ``tree.leaf_index``."""
    p_t = transition_matrix(walk, oracle).T.tocsr()
    leaf_of = LeafMap(walk)
    law = np.zeros(walk.num_states)
    law[walk.start] = 1.0
    for t in range(1, max_steps + 1):
        law = p_t @ law
        leaf = leaf_of(law)
        p_leaf = float(leaf.sum())
        yield t, p_leaf, (total_variation(leaf / p_leaf, mu) if p_leaf > 0 else 1.0)


def walk_best_cost(walk, oracle, mu: np.ndarray, delta: float, max_steps: int) -> tuple[int, float] | None:
    """The restart rule at its best T: ``min T / P(leaf at T)`` over T with output TV <= delta.

    ``T / P(leaf)`` is the expected number of chain-steps per delivered sample;
    returns ``(T, steps per sample)``, or None if no T <= max_steps reaches delta.
    Since ``T / P(leaf) >= T``, no T beyond the best cost found so far can beat it:
    the scan stops there.
    """
    best = None
    for t, p_leaf, tv in walk_tv_curve(walk, oracle, mu, max_steps):
        if best is not None and t >= best[1]:
            break
        if tv <= delta and p_leaf > 0 and (best is None or t / p_leaf < best[1]):
            best = (t, t / p_leaf)
    return best


def walk_stationary_law(walk, oracle) -> np.ndarray:
    """Stationary law of the walk on the states reachable from the start (a linear solve)."""
    p = transition_matrix(walk, oracle)
    reach = _reachable(p, walk.start)
    sub = p[reach][:, reach]
    k = sub.shape[0]
    a = (sub.T - sp.identity(k, format="csr")).tolil()
    a[0, :] = np.ones(k)
    rhs = np.zeros(k)
    rhs[0] = 1.0
    pi = np.zeros(walk.num_states)
    pi[reach] = spla.spsolve(a.tocsc(), rhs)
    return pi


def _reachable(p: sp.csr_matrix, start: int) -> np.ndarray:
    seen = np.zeros(p.shape[0], dtype=bool)
    frontier = np.array([start])
    seen[start] = True
    while frontier.size:
        nxt = p[frontier].indices
        nxt = nxt[~seen[nxt]]
        seen[nxt] = True
        frontier = np.unique(nxt)
    return np.flatnonzero(seen)
