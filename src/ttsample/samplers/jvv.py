"""JVV: descend with the oracle's conditionals, then correct by rejection.

Jerrum, Valiant & Vazirani (1986). From the root, query every child and step
to child ``c`` with probability ``mu_hat(c) / sum mu_hat(c')``, keeping the
proposal probability ``p(x)`` of the leaf reached. Accept ``x`` with
probability ``mu*(x) / (rho**(2(n-1)) p(x))``, else start again.

Exact: the output law is ``mu*`` whenever the oracle is within ``rho`` of
``mu*`` at internal nodes (leaf answers are exact, normalised masses).
Cost: ``n*b`` queries per try and ``rho**(2(n-1))`` tries per sample
(O(n b) for ``rho = 1 + O(1/n)``, exponential in ``n`` at constant ``rho``).
"""

from __future__ import annotations

import numpy as np

from ..errors import BudgetExhaustedError, OracleBoundError
from ..logspace import log_normalize
from ..ledger import Ledger
from ..oracles.counted import CountedOracle
from .base import Progress, SampleResult, categorical, check_sample_count
from .rejection import sample_by_rejection


def descend(oracle, rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``m`` independent descents; returns leaf ids, ``log p(leaf)`` and the leaf answers ``log mu*(leaf)``."""
    tree = oracle.tree
    ids = np.zeros(m, dtype=np.int64)
    log_p = np.zeros(m)
    rows = np.arange(m)
    for _ in range(tree.depth):
        children = tree.children(ids).T  # (b, m): one column per descent
        answers = oracle.log_weight(children)
        if np.isneginf(answers).all(axis=0).any():
            raise OracleBoundError("the oracle gave every child of a node it reached mass zero: it breaks its bound")
        log_q = log_normalize(answers, axis=0)
        j = categorical(rng, np.exp(log_q))
        ids = children[j, rows]
        log_p += log_q[j, rows]
    return ids, log_p, answers[j, rows]  # the last answers are exact leaf masses


def asked_nodes(tree, leaves: np.ndarray) -> np.ndarray:
    """The distinct nodes that descents ending at ``leaves`` asked: every child of every node on their paths."""
    on_path = [tree.parent(leaves)]
    for _ in range(tree.depth - 1):
        on_path.append(tree.parent(on_path[-1]))
    return np.unique(tree.children(np.concatenate(on_path)))


def log_acceptance_bound(tree, log_rho: float) -> float:
    """``log rho**(2(n-1))``: the proposal is within this factor of ``mu*`` at every leaf."""
    return 2.0 * (tree.depth - 1) * log_rho


def sample_jvv(
    oracle,
    n_samples: int,
    rng: np.random.Generator,
    *,
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> SampleResult:
    """Exact samples from ``mu*`` by JVV descent with rejection."""
    n_samples = check_sample_count(n_samples)
    tree = oracle.tree
    if not oracle.normalised:
        raise OracleBoundError(
            f"JVV needs normalised leaf masses and the {oracle.name} oracle's are not (its normaliser is "
            "unknown); use a walk sampler, which needs only ratios"
        )
    if not np.isfinite(oracle.log_rho):
        raise OracleBoundError(
            f"JVV needs a finite error bound, but the {oracle.name} oracle has none on this target "
            "(it gives weight to zero-mass subtrees); use a walk sampler, which needs no bound"
        )
    log_bound = log_acceptance_bound(tree, oracle.log_rho)
    expected_tries = float(np.exp(log_bound))
    if max_queries is not None and expected_tries * n_samples * tree.depth * tree.branching > 10 * max_queries:
        raise BudgetExhaustedError(
            f"JVV accepts with probability rho**-(2(n-1)) = {1 / expected_tries:.3g} here, so {n_samples} "
            f"samples need about {expected_tries * n_samples * tree.depth * tree.branching:.3g} queries, "
            f"far over the budget of {max_queries:.0f}; lower rho or the depth, or use a walk sampler"
        )
    ledger = Ledger()
    counted = CountedOracle(oracle, ledger)

    def tries(m: int) -> tuple[np.ndarray, np.ndarray]:
        leaves, log_p, log_mu = descend(counted, rng, m)
        return leaves, log_mu - log_bound - log_p

    with ledger.timed():
        leaves, first = sample_by_rejection(
            tries, n_samples, expected_tries, rng, ledger, name="JVV",
            broken_bound=f"the {oracle.name} oracle is outside its stated bound rho = {oracle.rho:.6g} "
                         "(a proposal exceeded mu* times the JVV bound); state a larger rho",
            queries_per_try=tree.depth * tree.branching, steps_per_try=tree.depth,
            asked=lambda x: asked_nodes(tree, x), max_queries=max_queries, progress=progress,
        )
    return SampleResult(tree.leaf_index(leaves), ledger, diagnostics={"log_acceptance_bound": log_bound, **first})
