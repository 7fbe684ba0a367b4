"""Uniform rejection: propose a uniform leaf, accept with its exact mass over a flat bound.

Textbook rejection sampling (von Neumann 1951) with the flat oracle's promise
as the envelope; the observation that this makes the bounded-tilt family easy
is ours (EVALUATION.md, "Hard instances, honestly"). Propose a uniform leaf
``x`` (free: no query), ask the oracle ``mu*(x)`` (one leaf query; leaves are
exact) and accept with probability ``mu*(x) / (b rho b**-n)``, else try again.

Exact: under the flat oracle's promise every internal node is within ``rho``
of ``b**-depth``, so ``mu*(x) <= mu*(parent) <= rho b**-(n-1)``: the
acceptance is at most 1 and the output law is exactly ``mu*``. Any other
oracle's promise says nothing about the leaves against the uniform measure,
so it is refused (as is a flat oracle with no finite bound on its target).
Cost: each try accepts with probability exactly ``1/(b rho)``, so
``b rho`` queries per sample in expectation, at every depth.
"""

from __future__ import annotations

import numpy as np

from ..errors import BudgetExhaustedError, OracleBoundError
from ..ledger import Ledger
from ..oracles.counted import CountedOracle
from .base import Progress, SampleResult, check_sample_count
from .rejection import sample_by_rejection


def log_acceptance_bound(tree, log_rho: float) -> float:
    """``log(b rho b**-n)``: every leaf's mass is at most this under the flat promise."""
    return float((1 - tree.depth) * np.log(tree.branching) + log_rho)


def propose(tree, rng: np.random.Generator, m: int) -> np.ndarray:
    """``m`` independent uniform leaves (node ids)."""
    return tree.leaf_nodes()[rng.integers(0, tree.num_leaves, size=m)]


def check_flat_promise(oracle) -> None:
    """Refuse an oracle whose promise does not bound every leaf by ``rho b**-(n-1)``."""
    if not oracle.flat_promise:
        raise OracleBoundError(
            f"uniform rejection needs the flat oracle's promise (every node within rho of b**-depth, so every "
            f"leaf is at most rho b**-(n-1)); the {oracle.name} oracle promises nothing against the uniform "
            "measure: use --oracle flat, or another sampler (jvv, a walk)"
        )
    if not np.isfinite(oracle.log_rho):
        raise OracleBoundError(
            f"uniform rejection needs a finite bound, but the {oracle.name} oracle has none on this target "
            "(a zero-mass subtree is infinitely far from flat); use a walk sampler, which needs no bound"
        )


def sample_uniform_rejection(
    oracle,
    n_samples: int,
    rng: np.random.Generator,
    *,
    max_queries: float | None = None,
    progress: Progress | None = None,
) -> SampleResult:
    """Exact samples from ``mu*`` by uniform proposals and rejection under the flat oracle's promise."""
    n_samples = check_sample_count(n_samples)
    check_flat_promise(oracle)
    tree = oracle.tree
    log_bound = log_acceptance_bound(tree, oracle.log_rho)
    expected_tries = tree.branching * oracle.rho
    if max_queries is not None and expected_tries * n_samples > 10 * max_queries:
        raise BudgetExhaustedError(
            f"uniform rejection accepts with probability 1/(b rho) = {1 / expected_tries:.3g} here, so "
            f"{n_samples} samples need about {expected_tries * n_samples:.3g} queries, far over the budget "
            f"of {max_queries:.0f}; ask for fewer samples or raise max_queries"
        )
    ledger = Ledger()
    counted = CountedOracle(oracle, ledger)

    def tries(m: int) -> tuple[np.ndarray, np.ndarray]:
        leaves = propose(tree, rng, m)
        return leaves, counted.log_weight(leaves) - log_bound

    with ledger.timed():
        leaves, first = sample_by_rejection(
            tries, n_samples, expected_tries, rng, ledger, name="uniform rejection",
            broken_bound=f"the {oracle.name} oracle broke its promise: a leaf's mass exceeds rho b**-(n-1) with "
                         f"rho = {oracle.rho:.6g}; state a larger rho",
            queries_per_try=1, steps_per_try=0, asked=np.unique, max_queries=max_queries, progress=progress,
        )
    return SampleResult(tree.leaf_index(leaves), ledger, diagnostics={"log_acceptance_bound": log_bound, **first})
