"""Sampler behaviour beyond the law: accounting, seeds, budgets and bad input."""

import numpy as np
import pytest

from ttsample import SAMPLERS, make_oracle, random_target, sample_jvv, sample_walk
from ttsample.registry import REGISTRY
from ttsample.oracles import ExactOracle, RandomOracle
from ttsample.oracles.error_models import hashed_uniform
from ttsample.errors import BudgetExhaustedError, NoLeafReachedError, OracleBoundError, ParameterError

from ttsample.testing import target_with_zeros

ANY_ORACLE = [s for s in SAMPLERS if not REGISTRY[s].flat_promise]  # the others: test_uniform_rejection.py


@pytest.mark.parametrize("name", ANY_ORACLE)
def test_same_seed_same_samples_and_full_ledger(name):
    target = random_target(6, 2, seed=1)
    oracle = make_oracle(target, "random", 1.3, seed=1)
    a = SAMPLERS[name](oracle, 300, np.random.default_rng(5))
    b = SAMPLERS[name](oracle, 300, np.random.default_rng(5))
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.samples.dtype == np.int64 and a.samples.shape == (300,)
    assert 0 <= a.samples.min() and a.samples.max() < target.tree.num_leaves
    led = a.ledger
    assert led.queries_total >= led.queries_distinct > 0
    assert led.queries_distinct <= target.tree.num_nodes
    assert led.tries == 300 + led.restarts + led.surplus and led.steps > 0


def test_jvv_exact_oracle_costs_n_times_b_per_sample():
    target = random_target(7, 3, seed=2)
    result = sample_jvv(make_oracle(target, "exact"), 100, np.random.default_rng(0))
    assert result.ledger.restarts == 0
    assert result.ledger.queries_total == 100 * 7 * 3  # one query per child per level, nothing else


@pytest.mark.parametrize("name", ANY_ORACLE)
def test_zero_mass_leaves_are_never_sampled(name):
    target = target_with_zeros(4, 3, seed=5)
    oracle = make_oracle(target, "delayed" if name != "jvv" else "random", 2.0, seed=5)
    result = SAMPLERS[name](oracle, 2000, np.random.default_rng(0))
    assert np.all(target.leaf_probs()[result.samples] > 0)


def test_jvv_refuses_an_oracle_without_bound():
    oracle = make_oracle(target_with_zeros(4, 2, seed=1), "delayed")
    with pytest.raises(OracleBoundError, match="walk"):
        sample_jvv(oracle, 10, np.random.default_rng(0))


def test_jvv_detects_an_oracle_outside_its_bound():
    class UnderstatedBound(RandomOracle):
        def __init__(self, target):
            super().__init__(ExactOracle(target), 3.0, seed=0)
            self.noise = self.log_rho
            self.log_rho = 0.01  # claims far less error than it has

        def log_error(self, ids):
            return self.noise * (2.0 * hashed_uniform(ids, self.seed) - 1.0)

    oracle = UnderstatedBound(random_target(6, 2, concentration=0.3, seed=0))
    with pytest.raises(OracleBoundError, match="outside its stated bound"):
        sample_jvv(oracle, 200, np.random.default_rng(0))


def test_budget_is_enforced_with_a_clear_message():
    target = random_target(16, 2, seed=0)
    with pytest.raises(BudgetExhaustedError, match="rho"):
        sample_jvv(make_oracle(target, "random", 2.0), 10, np.random.default_rng(0), max_queries=1e6)
    with pytest.raises(BudgetExhaustedError, match="budget"):
        sample_walk(make_oracle(target, "random", 2.0), 10, np.random.default_rng(0), max_queries=1e4)


@pytest.mark.parametrize("n_samples", [0, -3, 2.5])
def test_bad_sample_counts(n_samples):
    oracle = make_oracle(random_target(3, 2), "exact")
    for sampler in SAMPLERS.values():
        with pytest.raises(ParameterError):
            sampler(oracle, n_samples, np.random.default_rng(0))


def test_bad_walk_parameters():
    oracle = make_oracle(random_target(3, 2), "exact")
    with pytest.raises(ParameterError, match="steps"):
        SAMPLERS["walk"](oracle, 5, np.random.default_rng(0), steps=0)
    with pytest.raises(ParameterError, match="leaf_boost"):
        SAMPLERS["walk"](oracle, 5, np.random.default_rng(0), leaf_boost=0.5)
    with pytest.raises(ParameterError, match="leaf_hold"):
        SAMPLERS["lifted"](oracle, 5, np.random.default_rng(0), leaf_hold=np.nan)


@pytest.mark.parametrize("name", ["walk", "walk-boosted", "lifted"])
def test_a_walk_too_short_to_reach_a_leaf_stops_with_an_error(name):
    oracle = make_oracle(random_target(6, 2, seed=0), "exact")
    with pytest.raises(NoLeafReachedError, match="--steps"):  # T = 5 < depth 6: no chain can be at a leaf
        SAMPLERS[name](oracle, 50, np.random.default_rng(0), steps=5)
