"""SAT formulas as counting oracles: parsing, counts, exact laws, Monte Carlo, projection, the tools' traps.

Small formulas only (at most 16 variables), checked against brute force over every assignment. The exact-law tests
compute the descent probabilities of every leaf (no randomness, no false alarm); the Monte-Carlo tests are
chi-square tests that fail a correct sampler with probability FALSE_ALARM = 1e-6, each with a twin that feeds a
deliberately biased sampler to the same check and asserts that it fails.
"""

import gzip
import math
import random
import sys
import types

import numpy as np
import pytest

from extras import require

require("sat")

from ttsample.errors import OracleBoundError, ParameterError
from ttsample.eval.exact_laws import descent_leaf_law, jvv_output_law, total_variation
from ttsample.samplers.jvv import descend
from ttsample.sat import CNF, CountingOracle, make_counter, parse_dimacs, read_cnf, sample_cnf, variable_order
from ttsample.sat import tools
from ttsample.sat.cnf import residual
from ttsample.sat.counters import SatCosts
from ttsample.sat.tools import MissingToolError, quiet_stdout
from ttsample.testing import FALSE_ALARM, chi_square_p_value

TRAP = "p cnf 3 3\n1 2 0\n-1 3 0\n1 0\n"  # x1 and x3 forced, x2 free: 2 solutions


def random_3sat(n: int, ratio: float, seed: int) -> CNF:
    rng = random.Random(seed)
    clauses = tuple(tuple(rng.choice((-1, 1)) * v for v in rng.sample(range(1, n + 1), 3)) for _ in range(round(ratio * n)))
    return CNF(n, clauses, None, f"random({n}, {ratio}, {seed})")


def with_parity(n: int, length: int, ratio: float, seed: int) -> CNF:
    """Random 3-clauses on x1..xn, one parity of ``length`` of them (Tseitin-encoded), hidden variables; c ind = x1..xn."""
    base = random_3sat(n, ratio, seed)
    rng = random.Random(seed + 1000)
    clauses = list(base.clauses)
    acc, nxt = None, n + 1
    for v in rng.sample(range(1, n + 1), length):
        if acc is None:
            acc = v
            continue
        t, nxt = nxt, nxt + 1
        clauses += [(-t, acc, v), (-t, -acc, -v), (t, -acc, v), (t, acc, -v)]
        acc = t
    clauses.append((acc,))
    y1, y2 = nxt, nxt + 1  # two more hidden variables, not determined by x: counting them would overcount
    clauses += [(1, y1), (-y1, 2, y2), (-3, -y2, 4)]
    return CNF(y2, tuple(clauses), tuple(range(1, n + 1)), "parity")


def brute_force(cnf: CNF) -> set[tuple[int, ...]]:
    """Every projected solution, as DIMACS literals of the sampled variables by increasing number."""
    bits = ((np.arange(2**cnf.num_vars)[:, None] >> np.arange(cnf.num_vars)) & 1).astype(bool)  # column v-1: x_v
    ok = np.ones(bits.shape[0], dtype=bool)
    for clause in cnf.clauses:
        ok &= np.any([bits[:, abs(l) - 1] == (l > 0) for l in clause], axis=0)
    sampled = np.array(sorted(cnf.sampled))
    signs = np.where(bits[ok][:, sampled - 1], 1, -1) * sampled
    return set(map(tuple, signs.tolist()))


SMALL = random_3sat(12, 3.0, 0)  # 82 solutions: above ApproxMC's exact threshold (73 at epsilon 0.8)
FEW = random_3sat(12, 3.0, 2)  # 46 solutions
APPROX = random_3sat(14, 2.0, 0)  # 458 solutions: ApproxMC's counts of the top nodes are approximate
PROJECTED = with_parity(10, 4, 2.0, 3)
UNUSED = parse_dimacs("p cnf 6 2\n1 2 0\n-1 3 0\n")  # x4..x6 in no clause: 4 * 8 = 32 solutions


# -- parsing --------------------------------------------------------------------------------------------------------


def test_parse_dimacs_reads_clauses_sampling_set_and_gzip(tmp_path):
    text = "c a comment\np cnf 5 3\n1 -2 0\n3 4\n -5 0 2 0\nc ind 1 3 0\nc ind 5 3 0\n"
    cnf = parse_dimacs(text)
    assert cnf.num_vars == 5 and cnf.clauses == ((1, -2), (3, 4, -5), (2,))
    assert cnf.sampling_set == (1, 3, 5) and cnf.projected
    show = parse_dimacs("p cnf 4 1\nc p show 2 4 0\n1 2 0\n")
    assert show.sampling_set == (2, 4)
    satlib = parse_dimacs("p cnf 2 1\n1 2 0\n%\n0\n")  # SATLIB files end with % and a stray 0
    assert satlib.clauses == ((1, 2),) and satlib.sampling_set is None and satlib.sampled == (1, 2)
    path = tmp_path / "f.cnf.gz"
    path.write_bytes(gzip.compress(text.encode()))
    got = read_cnf(path)
    assert (got.num_vars, got.clauses, got.sampling_set) == (cnf.num_vars, cnf.clauses, cnf.sampling_set)


@pytest.mark.parametrize("text, message", [
    ("1 2 0\n", "before the 'p cnf"),
    ("c only comments\n", "no 'p cnf"),
    ("p cnf 2\n1 2 0\n", "p cnf VARIABLES CLAUSES"),
    ("p dnf 2 1\n1 2 0\n", "p cnf VARIABLES CLAUSES"),
    ("p cnf 2 1\np cnf 2 1\n1 2 0\n", "second 'p cnf'"),
    ("p cnf 2 1\n1 3 0\n", "literal 3 names variable 3"),
    ("p cnf 2 2\n1 2 0\n", "declares 2 clauses, the file has 1"),
    ("p cnf 2 1\n1 2 0\n-1 0\n", "declares 1 clauses, the file has 2"),
    ("p cnf 2 1\n1 2\n", "does not end with 0"),
    ("p cnf 2 1\n1 two 0\n", "'two' is not an integer"),
    ("p cnf 2 1\nx1 2 0\n", "XOR clauses"),
    ("p cnf 2 1\nc ind 1 7 0\n1 2 0\n", "names variable 7"),
    ("p cnf 2 1\nc ind 1 2\n1 2 0\n", "must end with 0"),
    ("p cnf 2 1\nc ind -1 0\n1 2 0\n", "positive numbers"),
    ("p cnf 0 0\n", "no variables to sample"),
])
def test_malformed_dimacs_is_refused_with_the_line(text, message):
    with pytest.raises(ParameterError, match=message):
        parse_dimacs(text, "f.cnf")


def test_unreadable_files_are_refused(tmp_path):
    with pytest.raises(ParameterError, match="cannot read"):
        read_cnf(tmp_path / "missing.cnf")
    (tmp_path / "bin.cnf").write_bytes(b"\xff\xfe\x00p cnf")
    with pytest.raises(ParameterError, match="not a text file"):
        read_cnf(tmp_path / "bin.cnf")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(ParameterError, match="gzip"):
        read_cnf(tmp_path / "bad.gz")


def test_residual_drops_satisfied_clauses_and_counts_free_variables():
    cnf = parse_dimacs("p cnf 4 3\n1 2 0\n-1 3 0\n2 -3 0\n")
    res = residual(cnf, np.array([1]), np.array([True]))  # x1 = 1: clause 1 satisfied, clause 2 becomes (x3)
    assert res.clauses == [[3], [2, -3]] and res.counted == [2, 3] and res.free == 1  # x4 occurs nowhere
    res = residual(cnf, np.array([1, 3]), np.array([True, False]))
    assert res.unsatisfiable


# -- counts and the tools' traps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("counter", ["ganak", "approxmc"])
def test_free_variable_trap_has_two_solutions(counter):
    cnf = parse_dimacs(TRAP)
    oracle = CountingOracle(cnf, make_counter(counter), enumerate_below=0)  # the counter, not an enumeration
    assert oracle.root_count == 2
    assert CountingOracle(UNUSED, make_counter(counter), enumerate_below=0).root_count == 32
    run = sample_cnf(cnf, 200, sampler="jvv" if counter == "ganak" else "lifted", counter=counter, seed=3)
    assert set(map(tuple, run.solutions)) == {(1, -2, 3), (1, 2, 3)}


@pytest.mark.parametrize("cnf", [SMALL, FEW, PROJECTED], ids=["small", "few", "projected"])
def test_counts_match_brute_force(cnf):
    truth = sorted(brute_force(cnf))
    costs = SatCosts()
    exact = make_counter("ganak")
    approx = make_counter("approxmc", epsilon=0.8, delta=0.2, seed=1)
    sol = truth[len(truth) // 2]
    for k in range(0, 6):  # fix the first k sampled variables to the values of one solution
        fixed = np.array([abs(l) for l in sol[:k]], dtype=np.int64)
        values = np.array([l > 0 for l in sol[:k]])
        below = sum(s[:k] == sol[:k] for s in truth)
        res = residual(cnf, fixed, values)
        assert exact.count(res, 0, costs) == (below, True)
        got, is_exact = approx.count(res, k, costs)
        assert below / 1.8 <= got <= 1.8 * below and (not is_exact or got == below)


def test_known_bad_approxmc_builds_are_refused(monkeypatch):
    bad = types.SimpleNamespace(__version__="4.4.1", __file__="pyganak's copy")
    monkeypatch.setitem(sys.modules, "pyapproxmc", bad)
    tools.approxmc_module.cache_clear()
    try:
        with pytest.raises(MissingToolError, match="undercounts.*pyapproxmc==4.1.24"):
            tools.approxmc_module()

        class Undercounter:  # an unknown version that fails the self-test on the trap
            def __init__(self, **kwargs):
                pass

            def add_clauses(self, clauses):
                pass

            def count(self, projection):
                return 1, 0

        monkeypatch.setitem(sys.modules, "pyapproxmc", types.SimpleNamespace(__version__="9.9", Counter=Undercounter))
        tools.approxmc_module.cache_clear()
        with pytest.raises(MissingToolError, match="counts 1 solutions"):
            tools.approxmc_module()
    finally:
        tools.approxmc_module.cache_clear()


def test_the_loaded_approxmc_is_a_verified_build():
    module = tools.approxmc_module()
    assert module.__version__ in tools.APPROXMC_VERIFIED, (
        f"pyapproxmc {module.__version__} from {module.__file__}: install order let another build win")


def test_a_missing_counter_names_the_sat_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyganak", None)  # import fails
    with pytest.raises(MissingToolError, match=r"ttsample\[sat\]"):
        make_counter("ganak")


def test_quiet_stdout_silences_ganak(capfd):
    import pyganak

    def count_unsat():
        c = pyganak.Counter()
        c.add_clauses([[1], [-1]])
        return c.count()

    assert count_unsat() == 0
    loud = capfd.readouterr().out
    with quiet_stdout():
        assert count_unsat() == 0
    print("after")
    assert "c o" in loud and capfd.readouterr().out == "after\n"


def test_unsatisfiable_formula_is_refused_without_counting(monkeypatch):
    def no_counting(*args):
        raise AssertionError("the counter was called on an unsatisfiable formula")

    monkeypatch.setattr("ttsample.sat.counters.GanakCounter.count", no_counting)
    with pytest.raises(ParameterError, match="unsatisfiable"):
        CountingOracle(parse_dimacs("p cnf 2 4\n1 2 0\n-1 2 0\n1 -2 0\n-1 -2 0\n"))


# -- exact laws -----------------------------------------------------------------------------------------------------


def leaf_law(oracle):
    """Every leaf's descent probability (JVV's proposal), keyed by its solution's literals."""
    oracle.tree.grow_all(1 << 16)
    law = descent_leaf_law(oracle)
    leaves = oracle.tree.leaf_nodes()
    return {tuple(lits): p for lits, p in zip(oracle.literals(leaves), law[leaves])}


@pytest.mark.parametrize("cnf", [SMALL, PROJECTED, UNUSED], ids=["small", "projected", "unused-variables"])
@pytest.mark.parametrize("order", ["file", "occurrence"])
@pytest.mark.parametrize("enumerate_below", [0, 8, 10_000])
def test_exact_counter_descent_is_exactly_uniform_and_reaches_every_solution(cnf, order, enumerate_below):
    oracle = CountingOracle(cnf, make_counter("ganak"), order=order, enumerate_below=enumerate_below)
    law = leaf_law(oracle)
    truth = brute_force(cnf)
    support = {s for s, p in law.items() if p > 0}
    assert support == truth  # every solution reachable, nothing else
    assert max(abs(p * len(truth) - 1) for s, p in law.items() if p > 0) < 1e-12
    leaves = oracle.tree.leaf_nodes()
    log_mu = oracle.log_weight(leaves)  # leaves exact: 1/Z on solutions, 0 elsewhere
    assert np.allclose(np.exp(log_mu[np.isfinite(log_mu)]), 1 / len(truth)) and np.isfinite(log_mu).sum() == len(truth)
    jvv_law, accept = jvv_output_law(oracle)  # an exact counter: rho = 1, bound rho**0
    on = jvv_law[oracle.tree.leaf_index(leaves)][np.isfinite(log_mu)]
    assert accept == pytest.approx(1.0, abs=1e-12) and np.abs(on * len(truth) - 1).max() < 1e-12


class PerturbedOracle(CountingOracle):
    """Counts of every 'true' child at levels 1..3 inflated by half: a biased descent (the twin)."""

    def log_weight(self, ids):
        out = super().log_weight(ids)
        ids = np.asarray(ids)
        bump = (self.tree.action(ids) == 1) & (self.tree.depth_of(ids) <= 3) & np.isfinite(out)
        return np.where(bump, out + np.log(1.5), out)


def test_twin_the_exact_law_check_catches_perturbed_counts():
    law = leaf_law(PerturbedOracle(SMALL, make_counter("ganak")))
    truth = brute_force(SMALL)
    uniform = np.full(len(truth), 1 / len(truth))
    got = np.array([law[s] for s in sorted(truth)])
    assert total_variation(got, uniform) > 0.05
    with pytest.raises(OracleBoundError):  # JVV notices: a proposal above its bound (rho = 1)
        sample_cnf(SMALL, 200, oracle=PerturbedOracle(SMALL, make_counter("ganak")))


def test_approximate_counts_stay_within_rho_of_the_truth():
    oracle = CountingOracle(APPROX, make_counter("approxmc", seed=2), enumerate_below=0)
    exact = CountingOracle(APPROX, make_counter("ganak"), enumerate_below=0)
    for o in (oracle, exact):
        o.tree.grow_all(1 << 16)
    nodes = np.arange(oracle.tree.num_nodes)
    ratio = np.array([oracle.count(h) / exact.count(h) for h in nodes.tolist() if exact.count(h) > 0])
    assert oracle.root_count != exact.root_count  # measured: some counts really are approximate here
    assert np.all(ratio <= 1.8 + 1e-9) and np.all(ratio >= 1 / 1.8 - 1e-9)
    assert oracle.log_rho == pytest.approx(math.log(1.8))


# -- Monte Carlo ----------------------------------------------------------------------------------------------------


def chi_square_uniform(solutions: list[list[int]], truth: set) -> float:
    """p-value of the samples against the uniform law on ``truth`` (every sample must be in it)."""
    index = {s: i for i, s in enumerate(sorted(truth))}
    return chi_square_p_value([index[tuple(s)] for s in solutions], np.ones(len(truth)))


N_MC = 3000  # 36 per cell on 82 solutions (the walk's 800: about 10; 3000 on 458: 6.5)


@pytest.mark.parametrize("cnf, sampler, counter, n", [
    (SMALL, "jvv", "ganak", N_MC), (SMALL, "lifted", "ganak", N_MC), (SMALL, "walk", "ganak", 800),
    (APPROX, "lifted", "approxmc", 3000),
], ids=["jvv-ganak", "lifted-ganak", "walk-ganak", "lifted-approxmc"])
def test_samples_are_uniform_by_chi_square(cnf, sampler, counter, n):
    truth = brute_force(cnf)
    run = sample_cnf(cnf, n, sampler=sampler, counter=counter, seed=5)
    assert chi_square_uniform(run.solutions, truth) > FALSE_ALARM


def test_twin_chi_square_catches_a_biased_sampler():
    oracle = PerturbedOracle(SMALL, make_counter("ganak"))
    leaves, _, _ = descend(oracle, np.random.default_rng(5), N_MC)  # the descent without JVV's correction
    assert chi_square_uniform(oracle.literals(leaves), brute_force(SMALL)) < FALSE_ALARM


def test_projected_samples_cover_the_projected_solutions():
    run = sample_cnf(PROJECTED, 400, sampler="jvv", counter="ganak", seed=2)
    truth = brute_force(PROJECTED)
    got = set(map(tuple, run.solutions))
    assert got == truth and all(len(s) == 10 for s in run.solutions)
    assert run.oracle.root_count == len(truth)
    every = CNF(PROJECTED.num_vars, PROJECTED.clauses, None)
    assert len(brute_force(every)) > len(truth)  # the hidden variables matter: the projection is not a relabelling


# -- costs ----------------------------------------------------------------------------------------------------------


def test_counts_are_paid_once_and_subtraction_saves_calls():
    oracle = CountingOracle(SMALL, make_counter("ganak"), enumerate_below=0)
    first = sample_cnf(SMALL, 100, oracle=oracle, seed=1)
    calls = oracle.sat_costs.counter_calls
    costs = oracle.sat_costs
    assert costs.by_subtraction >= calls - 1  # after the root, each count comes with its sibling's for free
    second = sample_cnf(SMALL, 100, oracle=oracle, seed=2)
    assert oracle.sat_costs.counter_calls - calls < calls / 2  # the top of the tree is not paid again
    assert first.result.ledger.queries_total == second.result.ledger.queries_total == 100 * 2 * 12


def test_enumeration_answers_small_subtrees_without_the_counter():
    oracle = CountingOracle(SMALL, make_counter("ganak"), enumerate_below=10_000)
    sample_cnf(SMALL, 50, oracle=oracle)
    assert oracle.sat_costs.counter_calls == 1 and oracle.sat_costs.enumerations == 1  # the root count, then one enumeration
    assert oracle.sat_costs.enumerated_solutions == 82


def test_variable_orders():
    cnf = parse_dimacs("p cnf 4 3\nc ind 4 2 3 0\n3 2 0\n-3 4 0\n3 1 0\n")
    assert variable_order(cnf, "file").tolist() == [4, 2, 3]
    assert variable_order(cnf, "occurrence").tolist() == [3, 4, 2]
    with pytest.raises(ParameterError, match="unknown variable order"):
        variable_order(cnf, "random")


def test_jvv_with_approxmc_is_refused_when_its_bound_is_unaffordable():
    with pytest.raises(ParameterError, match="lifted"):
        sample_cnf(SMALL, 10, sampler="jvv", counter="approxmc")
    run = sample_cnf(SMALL, 50, sampler="jvv", counter="approxmc", epsilon=0.05, seed=1)  # 1.05**22 = 2.9 tries per sample
    assert set(map(tuple, run.solutions)) <= brute_force(SMALL)
