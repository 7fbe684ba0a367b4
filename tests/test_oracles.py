import numpy as np
import pytest

from ttsample import Target, make_oracle, random_target
from ttsample.errors import OracleBoundError
from ttsample.oracles import ORACLES, CountedOracle, Ledger, Oracle

from ttsample.testing import target_with_zeros

STATED = ["exact", "random", "adversarial", "single", "signs", "decoy", "drift"]  # rho is the stated bound
KINDS = [*STATED, "delayed", "flat"]


@pytest.mark.parametrize("kind", KINDS)
def test_leaves_exact_and_bound_holds(kind):
    t = target_with_zeros(5, 3, seed=2)
    o = make_oracle(t, kind, rho=1.7, seed=9)
    ids = np.arange(t.tree.num_nodes)
    answers = o.log_weight(ids)
    leaves = ids >= t.tree.leaf_start
    np.testing.assert_array_equal(answers[leaves], t.log_mass[leaves])
    if kind in STATED:
        assert o.rho == (1.0 if kind == "exact" else 1.7)
        zero = np.isneginf(t.log_mass)
        np.testing.assert_array_equal(np.isneginf(answers), zero)  # zero subtrees stay zero
        assert np.all(np.abs(answers[~zero] - t.log_mass[~zero]) <= o.log_rho + 1e-12)
    np.testing.assert_array_equal(o.log_weight(ids[::-1]), answers[::-1])  # same answer when re-asked


def test_random_oracle_depends_on_seed_only():
    t = random_target(6, 2, seed=0)
    a = make_oracle(t, "random", 2.0, seed=1).log_weight(np.arange(127))
    b = make_oracle(t, "random", 2.0, seed=1).log_weight(np.arange(127))
    c = make_oracle(t, "random", 2.0, seed=2).log_weight(np.arange(127))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 0.1
    err = (a - t.log_mass)[: t.tree.leaf_start] / np.log(2.0)
    assert err.min() < -0.8 and err.max() > 0.8  # uses the whole band


def test_adversarial_alternates_by_depth():
    t = random_target(4, 2, seed=0)
    o = make_oracle(t, "adversarial", 2.0)
    ids = np.arange(t.tree.leaf_start)
    err = np.round((o.log_weight(ids) - t.log_mass[ids]) / np.log(2.0))
    np.testing.assert_array_equal(err, np.where(t.tree.depth_of(ids) % 2 == 1, 1, -1))


def test_single_perturbs_one_child_per_node():
    t = random_target(5, 3, seed=0)
    o = make_oracle(t, "single", 1.5, seed=4)
    internal_parents = np.arange(t.tree.level_starts[t.tree.depth - 1])
    kids = t.tree.children(internal_parents)
    perturbed = ~np.isclose(o.log_weight(kids), t.log_mass[kids])
    np.testing.assert_array_equal(perturbed.sum(axis=1), 1)


def internal_log_errors(oracle):
    t = oracle.base.target
    ids = np.arange(t.tree.leaf_start)
    with np.errstate(invalid="ignore"):  # zero-mass nodes: -inf - -inf
        return ids, oracle.log_weight(ids) - t.log_mass[ids]


@pytest.mark.parametrize("kind", ["signs", "decoy", "drift"])
def test_new_error_models_are_deterministic_functions_of_node_and_seed(kind):
    t = random_target(5, 3, concentration=0.5, seed=4)
    ids = np.arange(t.tree.num_nodes)
    a = make_oracle(t, kind, 1.6, seed=3).log_weight(ids)
    np.testing.assert_array_equal(make_oracle(t, kind, 1.6, seed=3).log_weight(ids), a)
    np.testing.assert_array_equal(make_oracle(t, kind, 1.6, seed=3).log_weight(ids[::7]), a[::7])  # any batch


def test_signs_are_the_extreme_points_of_the_random_oracle():
    t = random_target(6, 2, seed=0)
    ids, err = internal_log_errors(make_oracle(t, "signs", 2.0, seed=5))
    _, noise = internal_log_errors(make_oracle(t, "random", 2.0, seed=5))
    np.testing.assert_allclose(err, np.log(2.0) * np.sign(noise), rtol=0, atol=1e-12)
    assert 0.3 < np.mean(err > 0) < 0.7  # both signs, about half each
    kids = t.tree.children(np.arange(t.tree.level_starts[t.tree.depth - 1]))
    assert np.any(err[kids[:, 0]] != err[kids[:, 1]])  # siblings disagree somewhere: conditionals distorted


def test_decoy_favours_the_lightest_positive_sibling_and_disfavours_the_rest():
    t = target_with_zeros(5, 3, seed=6)
    o = make_oracle(t, "decoy", 1.8, seed=2)
    ids, err = internal_log_errors(o)
    assert err[0] == 0.0  # the root has no siblings
    parents = np.arange(t.tree.level_starts[t.tree.depth - 1])
    kids = t.tree.children(parents)
    mass = t.log_mass[kids]
    live = ~np.isneginf(mass).all(axis=1)
    sign = np.round(err[kids[live]] / np.log(1.8))
    favoured = np.where(np.isneginf(mass[live]), np.inf, mass[live]).argmin(axis=1)
    expected = -np.ones_like(sign)
    expected[np.arange(sign.shape[0]), favoured] = 1
    positive = ~np.isneginf(mass[live])
    np.testing.assert_array_equal(sign[positive], expected[positive])  # zero-mass children stay zero (no factor)


def test_decoy_breaks_ties_by_the_seed():
    t = Target.from_leaf_masses(np.ones(3**4), 3)  # every sibling ties
    a = internal_log_errors(make_oracle(t, "decoy", 2.0, seed=1))[1]
    b = internal_log_errors(make_oracle(t, "decoy", 2.0, seed=2))[1]
    kids = t.tree.children(np.arange(t.tree.level_starts[t.tree.depth - 1]))
    np.testing.assert_array_equal((a[kids] > 0).sum(axis=1), 1)  # one decoy per set of siblings
    assert np.any(a != b)


def test_drift_is_the_depth_profile():
    t = random_target(6, 2, seed=0)
    ids, err = internal_log_errors(make_oracle(t, "drift", 3.0))
    np.testing.assert_allclose(err, np.log(3.0) * (1 - 2 * t.tree.depth_of(ids) / 6), rtol=0, atol=1e-12)


def test_only_the_flat_oracle_promises_a_flat_bound():
    t = random_target(3, 2)
    assert [k for k in ORACLES if make_oracle(t, k, 1.5).flat_promise] == ["flat"]


def test_delayed_is_parent_value_over_b():
    t = random_target(4, 2, seed=0)
    o = make_oracle(t, "delayed")
    v = np.arange(1, t.tree.leaf_start)
    np.testing.assert_allclose(o.log_weight(v), t.log_mass[t.tree.parent(v)] - np.log(2))
    assert np.isclose(o.log_rho, np.max(np.abs(o.log_weight(v) - t.log_mass[v])))


def test_measured_bound_is_infinite_when_zero_subtrees_get_weight():
    o = make_oracle(target_with_zeros(4, 2, seed=1), "delayed")
    assert np.isinf(o.log_rho)


def test_bad_rho_and_kind():
    t = random_target(3, 2)
    for rho in [0.5, np.nan, np.inf, -1]:
        with pytest.raises(OracleBoundError, match="rho"):
            make_oracle(t, "random", rho)
    with pytest.raises(OracleBoundError, match="unknown oracle"):
        make_oracle(t, "psychic", 1.0)


class CountingCalls(Oracle):
    def __init__(self, oracle):
        self.oracle, self.tree, self.log_rho, self.name, self.asked = oracle, oracle.tree, oracle.log_rho, "spy", []

    def log_weight(self, ids):
        self.asked.extend(np.asarray(ids).tolist())
        return self.oracle.log_weight(ids)


def test_ledger_counts_total_and_distinct_and_caches():
    t = random_target(4, 2, seed=0)
    spy = CountingCalls(make_oracle(t, "random", 1.5, seed=1))
    ledger = Ledger()
    counted = CountedOracle(spy, ledger)
    first = counted.log_weight(np.array([[3, 4], [3, 5]]))
    again = counted.log_weight(np.array([5, 3, 6]))
    assert ledger.queries_total == 7
    assert ledger.queries_distinct == 4
    assert sorted(spy.asked) == [3, 4, 5, 6]  # each node asked of the oracle once
    assert first[0, 0] == again[1] and first.shape == (2, 2)


def test_a_node_asked_by_log_values_is_one_distinct_query_whichever_method_asks_it():
    class Valued(CountingCalls):
        def log_values(self, ids):
            self.asked.extend(np.asarray(ids).tolist())
            return np.zeros(np.shape(ids))

    ledger = Ledger()
    counted = CountedOracle(Valued(make_oracle(random_target(4, 2, seed=0), "exact")), ledger)
    counted.log_values(np.array([3, 4, 3]))
    counted.log_weight(np.array([4, 5]))
    counted.log_values(np.array([5, 6]))
    assert ledger.queries_total == 7 and ledger.queries_distinct == 4  # 3, 4, 5, 6


def test_nan_answers_are_refused():
    class NaNOracle(CountingCalls):
        def log_weight(self, ids):
            return np.full(np.shape(ids), np.nan)

    counted = CountedOracle(NaNOracle(make_oracle(random_target(3, 2), "exact")), Ledger())
    with pytest.raises(OracleBoundError, match="NaN"):
        counted.log_weight(np.array([1]))
