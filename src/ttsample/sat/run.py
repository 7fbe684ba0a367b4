"""Run one of the lab's samplers on a CNF formula: solutions, the sampler's ledger and the oracle's tool costs.

The samplers are the registry's (``ttsample.registry``, the rows that run on a formula), unchanged:
the formula is just another oracle on a trie. Which give what:

- ``jvv`` with Ganak: exactly uniform (JVV's rejection accepts every try,
  since the proposal is the exact conditional law).
- ``jvv`` with ApproxMC: exactly uniform if every count is within its
  ``1 + epsilon`` (each is with probability ``1 - delta``); its acceptance is
  ``(1 + eps)**-(2(n-1))``, so it is refused unless that is affordable (small
  ``epsilon``, or few variables).
- ``walk``, ``walk-boosted``, ``walk-proposal``, ``lifted``: stationary leaf
  law exactly uniform whatever the counts' errors; the output law after the
  default ``T`` steps is within the lab's calibrated 0.01 of it (calibrated on
  the lab's trees, not on formulas).
Nothing here prints or writes files.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ..errors import ParameterError
from ..registry import REGISTRY, names, sampler_entry
from ..runs import OracleProblem, check_seed, run
from ..samplers import SampleResult
from .cnf import CNF
from .counters import make_counter
from .oracle import CountingOracle
from .tools import tool_versions

SAT_SAMPLERS = names("formula")
MAX_TRIES = 1000.0  # expected tries per sample above which a rejection sampler is refused (JVV with ApproxMC's bound)


@dataclass
class SatRun:
    cnf: CNF
    oracle: CountingOracle
    sampler: str
    result: SampleResult
    seed: int
    wall_seconds: float  # the whole call: the oracle's root count (if built here) and the sampler

    @property
    def solutions(self) -> list[list[int]]:
        """One list of DIMACS literals per sample (the sampled variables, by increasing number)."""
        return self.oracle.literals(self.result.samples)

    def record(self) -> dict:
        led = self.result.ledger.as_dict()
        return {
            "formula": self.cnf.source, "variables": self.cnf.num_vars, "clauses": len(self.cnf.clauses),
            "sampling_set": len(self.cnf.sampled), "projected": self.cnf.projected,
            "sampler": self.sampler, "seed": self.seed, "n_samples": int(self.result.samples.size),
            "rho": math.exp(self.oracle.log_rho),
            **{k: v for k, v in led.items() if k not in ("forward_passes", "tokens", "reward_calls", "reward_texts")},
            "repeat_queries": led["queries_total"] - led["queries_distinct"], "wall_seconds": self.wall_seconds,
            **self.oracle.stats(), "tools": tool_versions(),
            "info": {k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.result.info.items()},
        }


def make_oracle_for(cnf: CNF, counter: str = "ganak", *, epsilon: float = 0.8, delta: float = 0.2, seed: int = 0,
                    order: str = "file", enumerate_below: int | None = None) -> CountingOracle:
    return CountingOracle(cnf, make_counter(counter, epsilon=epsilon, delta=delta, seed=seed), order=order,
                          enumerate_below=enumerate_below)


def sample_cnf(
    cnf: CNF,
    n_samples: int,
    *,
    sampler: str = "jvv",
    counter: str = "ganak",
    seed: int = 0,
    epsilon: float = 0.8,
    delta: float = 0.2,
    order: str = "file",
    enumerate_below: int | None = None,
    oracle: CountingOracle | None = None,
    max_queries: float | None = None,
    progress=None,
) -> SatRun:
    """``n_samples`` solutions of ``cnf`` by ``sampler``; pass ``oracle`` to reuse the counts of an earlier run."""
    start = time.perf_counter()
    if sampler not in names("formula"):  # before the registry's own check, to say which it is
        what = f"{sampler} does not apply to a formula" if sampler in REGISTRY else f"unknown sampler {sampler!r}"
        raise ParameterError(f"{what}; choose one of {', '.join(names('formula'))}")
    entry = sampler_entry(sampler, "formula")
    check_seed(seed)
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ParameterError(f"the number of samples must be an integer >= 1, got {n_samples!r}")
    if oracle is None:
        oracle = make_oracle_for(cnf, counter, epsilon=epsilon, delta=delta, seed=seed, order=order,
                                 enumerate_below=enumerate_below)
    tries = entry.expected_tries(oracle) if entry.expected_tries is not None else 1.0
    if tries > MAX_TRIES:
        raise ParameterError(
            f"{sampler} with {oracle.name} (rho = 1 + epsilon = {math.exp(oracle.log_rho):.3g}) accepts a try with "
            f"probability {1 / tries:.3g} on {oracle.n} variables (its bound at this rho): too many tries. Use "
            "--counter ganak (exact: every try accepted), a walk sampler (--sampler lifted or walk), or a much "
            "smaller --epsilon"
        )
    done = run(OracleProblem(oracle, kind="formula"), sampler, int(n_samples), seed, max_queries=max_queries,
               progress=progress)
    return SatRun(cnf, oracle, sampler, done.result, int(seed), time.perf_counter() - start)
