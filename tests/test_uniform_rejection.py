"""Uniform rejection: refusals, its promise check, its ledger and first-sample costs, and its plumbing.

Its law is checked exactly in test_exact_laws and by Monte Carlo in
test_monte_carlo. Nothing here is random beyond fixed seeds, so no
false-alarm rate applies.
"""

import numpy as np
import pytest

from ttsample import Target, bounded_tilt_target, make_oracle, random_target
from ttsample.errors import BudgetExhaustedError, OracleBoundError
from ttsample.experiments.runner import execute_run
from ttsample.experiments.spec import parse_spec
from ttsample.sampling import sample_once
from ttsample.registry import SAMPLERS
from ttsample.samplers.uniform_rejection import log_acceptance_bound, propose, sample_uniform_rejection

from ttsample.testing import target_with_zeros


def flat_instance(depth=6, branching=2, tilt=1.5):
    target = bounded_tilt_target(depth, branching, rho=tilt, seed=3)
    return target, make_oracle(target, "flat")


@pytest.mark.parametrize("kind", ["exact", "random", "adversarial", "single", "signs", "decoy", "drift", "delayed"])
def test_refuses_every_oracle_without_the_flat_promise(kind):
    target, _ = flat_instance()
    with pytest.raises(OracleBoundError, match="--oracle flat"):
        sample_uniform_rejection(make_oracle(target, kind, 1.5, seed=1), 10, np.random.default_rng(0))


def test_refuses_a_flat_oracle_without_a_finite_bound():
    oracle = make_oracle(target_with_zeros(4, 2, seed=1), "flat")
    with pytest.raises(OracleBoundError, match="finite bound"):
        sample_uniform_rejection(oracle, 10, np.random.default_rng(0))


def test_detects_a_flat_oracle_that_breaks_its_promise():
    oracle = make_oracle(random_target(6, 2, concentration=0.2, seed=0), "flat")
    oracle.log_rho = 0.0  # claims the target is exactly flat; its peaked leaves exceed b**-(n-1)
    with pytest.raises(OracleBoundError, match="broke its promise"):
        sample_uniform_rejection(oracle, 200, np.random.default_rng(0))


def test_ledger_and_first_sample_costs():
    target, oracle = flat_instance(5, 3)
    a = sample_uniform_rejection(oracle, 500, np.random.default_rng(7))
    b = sample_uniform_rejection(oracle, 500, np.random.default_rng(7))
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.samples.dtype == np.int64 and a.samples.shape == (500,)
    led = a.ledger
    assert led.tries == 500 + led.restarts + led.surplus
    assert led.queries_total == led.tries  # one leaf query per proposal, nothing else
    assert led.queries_distinct <= target.tree.num_leaves and led.steps == 0
    info = a.diagnostics
    assert 1 <= info["first_sample_distinct"] <= info["first_sample_queries"] <= led.tries


def sequential_first_sample(oracle, rng):
    """Replays the sampler's stream one proposal at a time: (queries, distinct leaves) until the first acceptance."""
    tree = oracle.tree
    log_bound = log_acceptance_bound(tree, oracle.log_rho)
    m = int(np.ceil(tree.branching * oracle.rho))  # the sampler's batch for one sample
    asked = []
    while True:
        leaves = propose(tree, rng, m)
        accept = np.log(rng.random(m)) < oracle.log_weight(leaves) - log_bound
        for leaf, ok in zip(leaves, accept):
            asked.append(leaf)
            if ok:
                return len(asked), len(set(asked))


def test_first_sample_costs_are_those_of_a_sequential_run():
    _, oracle = flat_instance(3, 2, tilt=3.0)  # low acceptance: some first samples need a second batch
    costs = []
    for seed in range(30):
        info = sample_uniform_rejection(oracle, 1, np.random.default_rng(seed)).diagnostics
        costs.append((info["first_sample_queries"], info["first_sample_distinct"]))
        assert costs[-1] == sequential_first_sample(oracle, np.random.default_rng(seed))
    assert max(q for q, _ in costs) > np.ceil(2 * oracle.rho)  # the path across batches was taken
    assert any(d < q for q, d in costs)  # and repeated leaves counted once


def test_zero_mass_leaves_are_never_sampled():
    masses = bounded_tilt_target(4, 3, rho=1.5, seed=1).leaf_probs()
    masses[::3] = 0.0  # a zero leaf under every parent: the flat bound stays finite (it is measured on internal nodes)
    oracle = make_oracle(Target.from_leaf_masses(masses, 3), "flat")
    assert np.isfinite(oracle.log_rho)
    result = sample_uniform_rejection(oracle, 2000, np.random.default_rng(0))
    assert np.all(masses[result.samples] > 0)


def test_budget_is_refused_up_front_and_enforced():
    _, oracle = flat_instance()
    with pytest.raises(BudgetExhaustedError, match="1/\\(b rho\\)"):
        sample_uniform_rejection(oracle, 10_000, np.random.default_rng(0), max_queries=100)
    with pytest.raises(BudgetExhaustedError, match="budget") as caught:
        sample_uniform_rejection(oracle, 1_000, np.random.default_rng(0), max_queries=2_000)
    assert caught.value.ledger.queries_total > 2_000


def test_progress_reaches_the_sample_count():
    _, oracle = flat_instance()
    seen = []
    sample_uniform_rejection(oracle, 300, np.random.default_rng(0), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (300, 300)


def test_registered_and_run_by_name_with_its_exact_tv():
    assert SAMPLERS["uniform-rejection"] is sample_uniform_rejection
    target, _ = flat_instance()
    run = sample_once(target, "uniform-rejection", 200, oracle="flat", seed=2)
    record = run.record()
    assert record["tv_output_law"] < 1e-9 and record["first_sample_queries"] >= 1
    with pytest.raises(OracleBoundError, match="--oracle flat"):
        sample_once(target, "uniform-rejection", 200, oracle="random", rho=1.5)


def test_a_spec_runs_it_on_the_bounded_tilt_family():
    spec = parse_spec({
        "name": "u", "samplers": ["uniform-rejection"], "depths": [3, 5], "seeds": 1, "samples": 50,
        "max_queries": 1e6, "families": [{"kind": "bounded_tilt", "rho": 1.5, "oracles": [{"kind": "flat"}]}],
    })
    for task in spec.runs():
        outcome = execute_run(task)
        assert outcome["status"] == "ok" and outcome["delivered"] == 50, outcome
        assert outcome["tv_output_law"] < 1e-9 and outcome["first_sample_queries"] >= 1
