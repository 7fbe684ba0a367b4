"""The tools behind the counting oracle: model counters, and a SAT solver for checks and enumeration.

- ``GanakCounter``: exact projected model counts (pyganak).
- ``ApproxMCCounter``: ``(epsilon, delta)`` counts (pyapproxmc 4.1.24):
  ``P[c/(1+eps) <= c_hat <= (1+eps) c] >= 1 - delta`` for each call, and the
  count is exact when it is below ApproxMC's cell threshold (hash count 0).
- ``SatSolver``: one incremental CryptoMiniSat instance for the whole run:
  satisfiability under assumptions (a partial assignment), a witness, and the
  enumeration of the projected solutions below a partial assignment (blocking
  clauses guarded by a fresh activation literal, switched off afterwards, so
  the solver is never rebuilt).

A counter is given a ``Residual`` (the formula simplified by the partial
assignment, ``cnf.residual``): it counts over the unfixed sampled variables
that still occur, and multiplies by ``2**free`` for those that no longer do,
so no tool ever sees a free sampled variable (the trap of the bad pyapproxmc
builds, and ApproxMC refuses projections on variables absent from the clauses).
Each pyganak or pyapproxmc object counts once: a call builds a new one.
Every call is timed and counted in ``SatCosts``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ParameterError
from .cnf import CNF, Residual
from .tools import approxmc_module, cryptosat_module, ganak_module, quiet_stdout


@dataclass
class SatCosts:
    """What the oracle's answers cost, by tool; ``seconds`` fields are wall-clock inside the tool calls."""

    counter_calls: int = 0
    counter_seconds: float = 0.0
    sat_calls: int = 0
    sat_seconds: float = 0.0
    enumerations: int = 0
    enumerated_solutions: int = 0
    enumeration_seconds: float = 0.0
    enumerations_abandoned: int = 0  # an approximate count below the threshold whose subtree held more than the cap
    by_subtraction: int = 0  # child counts known as count(parent) - count(sibling): exact counter only
    by_unsat_sibling: int = 0  # child counts equal to the parent's because the sibling has no solution
    by_enumeration: int = 0  # node counts read off an enumeration
    nodes_answered: int = 0  # distinct nodes whose count the oracle computed (the rest of the queries hit caches)

    def as_dict(self) -> dict:
        return asdict(self)


def closed_form(res: Residual) -> tuple[int, bool] | None:
    """The count of a residual that needs no counter: 0 if unsatisfiable, ``2**free`` if nothing is left to count."""
    if res.unsatisfiable:
        return 0, True
    if not res.counted:
        return 2**res.free, True
    return None


class GanakCounter:
    """Exact projected counts with Ganak."""

    name = "ganak"
    exact = True
    log_rho = 0.0

    def __init__(self, seed: int = 0):
        self.module = ganak_module()
        self.seed = int(seed)

    def describe(self) -> dict:
        return {"counter": self.name, "exact": True}

    def count(self, res: Residual, key: int, costs: SatCosts) -> tuple[int, bool]:
        """``(count, exact)`` of the residual formula's projected solutions."""
        known = closed_form(res)
        if known is not None:
            return known
        start = time.perf_counter()
        counter = self.module.Counter(seed=self.seed)
        counter.add_clauses(res.clauses)
        counter.set_sampling_set(res.counted)
        with quiet_stdout():
            value = int(counter.count())
        costs.counter_calls += 1
        costs.counter_seconds += time.perf_counter() - start
        return value * 2**res.free, True


class ApproxMCCounter:
    """``(epsilon, delta)``-approximate projected counts with ApproxMC.

    ``log_rho = log(1 + epsilon)``: each count is within a factor ``1 + epsilon``
    of the truth with probability at least ``1 - delta``, independently per
    call (seeded by the node); counts below ApproxMC's threshold are exact.
    Nothing bounds the joint failure over many calls but a union bound:
    ``delta`` times the number of counter calls (in the ledger).
    """

    name = "approxmc"
    exact = False

    def __init__(self, epsilon: float = 0.8, delta: float = 0.2, seed: int = 0):
        if not (isinstance(epsilon, (int, float)) and 0 < epsilon and math.isfinite(epsilon)):
            raise ParameterError(f"--epsilon must be a number > 0, got {epsilon!r}")
        if not (isinstance(delta, (int, float)) and 0 < delta < 1):
            raise ParameterError(f"--delta must be a number in (0, 1), got {delta!r}")
        self.module = approxmc_module()
        self.epsilon, self.delta, self.seed = float(epsilon), float(delta), int(seed)
        self.log_rho = math.log1p(self.epsilon)

    def describe(self) -> dict:
        return {"counter": self.name, "exact": False, "epsilon": self.epsilon, "delta": self.delta}

    def count(self, res: Residual, key: int, costs: SatCosts) -> tuple[int, bool]:
        known = closed_form(res)
        if known is not None:
            return known
        start = time.perf_counter()
        seed = (self.seed * 1_000_003 + int(key)) % (2**31 - 1) + 1  # the node's own seed: same answer whatever the run
        counter = self.module.Counter(seed=seed, epsilon=self.epsilon, delta=self.delta)
        counter.add_clauses(res.clauses)
        with quiet_stdout():
            cells, hashes = counter.count(res.counted)
        costs.counter_calls += 1
        costs.counter_seconds += time.perf_counter() - start
        return int(cells) * 2 ** (int(hashes) + res.free), hashes == 0


COUNTERS = ("ganak", "approxmc")


def make_counter(name: str, *, epsilon: float = 0.8, delta: float = 0.2, seed: int = 0):
    if name == "ganak":
        return GanakCounter(seed)
    if name == "approxmc":
        return ApproxMCCounter(epsilon, delta, seed)
    raise ParameterError(f"unknown counter {name!r}; choose one of {', '.join(COUNTERS)}")


class SatSolver:
    """One incremental CryptoMiniSat instance over the whole formula (rebuilt after every REBUILD_AFTER enumerations)."""

    REBUILD_AFTER = 256  # switched-off activation variables still lengthen every solution CryptoMiniSat returns

    def __init__(self, cnf: CNF, costs: SatCosts):
        self.module = cryptosat_module()
        self.clauses = [list(c) for c in cnf.clauses]
        self.num_vars = cnf.num_vars
        self.costs = costs
        self._build()

    def _build(self) -> None:
        self.solver = self.module.Solver(threads=1)
        self.solver.add_clauses(self.clauses)
        if self.num_vars:
            self.solver.add_clause([self.num_vars, -self.num_vars])  # declares every variable, used or not
        self.next_var = self.num_vars + 1  # fresh activation literals for enumerations

    def solve(self, assumptions: list[int]) -> tuple[bool, tuple | None]:
        """Satisfiable under ``assumptions``? and a witness (``solution[v]`` is variable v's value)."""
        start = time.perf_counter()
        sat, solution = self.solver.solve(assumptions)
        self.costs.sat_calls += 1
        self.costs.sat_seconds += time.perf_counter() - start
        return bool(sat), solution

    def enumerate(self, assumptions: list[int], variables: np.ndarray, limit: int) -> np.ndarray | None:
        """Every assignment of ``variables`` that extends to a solution under ``assumptions``, as a (k, len) uint8 array.

        None if there are more than ``limit`` of them (the enumeration stops there).
        """
        start = time.perf_counter()
        if self.next_var > self.num_vars + self.REBUILD_AFTER:
            self._build()
        act = self.next_var
        self.next_var += 1
        self.solver.add_clause([act, -act])  # declares the variable (assumptions must name known variables)
        variables = np.asarray(variables, dtype=np.int64)
        var_list = variables.tolist()
        rows = []
        sat_calls = 0
        try:
            while True:
                sat, solution = self.solver.solve(assumptions + [act])
                sat_calls += 1
                if not sat:
                    break
                values = [bool(solution[v]) for v in var_list]
                rows.append(values)
                if len(rows) > limit:
                    return None
                if not var_list:
                    break
                self.solver.add_clause([-act] + [-v if b else v for v, b in zip(var_list, values)])
        finally:
            self.solver.add_clause([-act])  # the blocking clauses are off for good
            self.costs.sat_calls += sat_calls
            self.costs.enumerations += 1
            self.costs.enumeration_seconds += time.perf_counter() - start
        self.costs.enumerated_solutions += len(rows)
        return np.array(rows, dtype=np.uint8).reshape(len(rows), variables.size)
