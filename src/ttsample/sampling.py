"""Sampling from names: target, oracle, sampler -> samples, ledger and exact distances.

Shared by the command line and the demo; nothing here prints or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ParameterError
from .eval.exact_laws import MAX_ENUMERABLE_LEAVES, total_variation, walk_output_law
from .oracles import make_oracle
from .registry import sampler_entry
from .runs import OracleProblem, check_seed, run
from .samplers import SampleResult
from .target import Target


@dataclass
class SamplingRun:
    target: Target
    oracle: object
    sampler: str
    result: SampleResult
    tv_output_law: float | None  # exact TV of the sampler's output law to mu*
    tv_empirical: float | None  # TV of the samples' empirical law to mu*

    def record(self) -> dict:
        tree = self.target.tree
        return {
            "sampler": self.sampler,
            "oracle": self.oracle.name,
            "rho": self.oracle.rho if np.isfinite(self.oracle.log_rho) else None,  # None: no finite bound
            "depth": tree.depth,
            "branching": tree.branching,
            "n_samples": int(self.result.samples.size),
            **self.result.ledger.as_dict(),
            **self.result.info,
            "tv_output_law": self.tv_output_law,
            "tv_empirical": self.tv_empirical,
        }


def exact_output_law(sampler: str, oracle, params: dict) -> np.ndarray | None:
    """The exact law of what ``sampler`` outputs with the parameters it reported (``result.params``; None: it has
    none)."""
    entry = sampler_entry(sampler)
    if entry.walk is not None:
        return walk_output_law(entry.walk(oracle.tree, params), oracle, params["steps"])[0]
    return entry.exact_law(oracle, params) if entry.exact_law is not None else None


def sample_once(
    target: Target,
    sampler: str,
    n_samples: int,
    *,
    oracle: str = "exact",
    rho: float = 1.0,
    seed: int = 0,
    steps: int | None = None,
    max_queries: float | None = None,
    progress=None,
    exact: bool = True,
    target_class=None,
) -> SamplingRun:
    """Sample ``target`` (or, for the class samplers, the true member of ``target_class``)."""
    entry = sampler_entry(sampler, "tree")
    if steps is not None and entry.walk is None:
        raise ParameterError(f"steps applies to the walk samplers only, not to {sampler}")
    orc = make_oracle(target, oracle, rho, check_seed(seed))
    options = {"max_queries": max_queries} if steps is None else {"max_queries": max_queries, "steps": steps}
    result = run(OracleProblem(orc, target_class), sampler, n_samples, seed, progress=progress, **options).result
    tv_law = tv_emp = None
    if exact and target.tree.num_leaves <= MAX_ENUMERABLE_LEAVES:
        mu = target.leaf_probs()
        law = exact_output_law(sampler, orc, result.params)  # none for the class samplers: exact by proof, tested by Monte Carlo
        if law is not None:
            tv_law = total_variation(law, mu)
        counts = np.bincount(result.samples, minlength=mu.size)
        tv_emp = total_variation(counts / counts.sum(), mu)
    return SamplingRun(target, orc, sampler, result, tv_law, tv_emp)
