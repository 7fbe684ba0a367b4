"""First-sample costs: the queries (total and distinct, from a fresh cache) until a sampler's first sample.

Reports compare samplers on this cost, so it must be what a user who wants one
sample would pay, however the sampler batches its work.
"""

import numpy as np
import pytest

from ttsample import make_oracle, random_target, sample_jvv, sample_lifted, sample_walk, sample_walk_boosted
from ttsample.problems.classes import make_class
from ttsample.samplers.ttt import sample_learned_oracle, sample_mixture_rejection

WALKS = {"walk": sample_walk, "walk-boosted": sample_walk_boosted, "lifted": sample_lifted}


@pytest.mark.parametrize("name", WALKS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_walks_first_sample_costs_what_a_one_sample_run_costs(name, seed):
    target = random_target(8, 2, concentration=0.5, seed=seed)
    oracle = make_oracle(target, "random", 1.5, seed=seed)
    many = WALKS[name](oracle, 200, np.random.default_rng(seed))
    one = WALKS[name](oracle, 1, np.random.default_rng(seed))
    assert many.diagnostics["first_sample_queries"] == one.ledger.queries_total
    assert many.diagnostics["first_sample_distinct"] == one.ledger.queries_distinct
    assert many.ledger.queries_distinct > many.diagnostics["first_sample_distinct"]


def test_jvv_first_sample_with_an_exact_oracle_is_one_descent():
    target = random_target(7, 3, seed=2)
    result = sample_jvv(make_oracle(target, "exact"), 50, np.random.default_rng(0))
    assert result.diagnostics["first_sample_queries"] == result.diagnostics["first_sample_distinct"] == 7 * 3


def test_jvv_first_sample_counts_every_try_before_it():
    """With one sample asked, the run's queries are the first sample's plus the rest of its last batch.

    Batches hold ceil(B) tries (B = rho^(2(n-1)) = 8.2 here) and a third of them accept
    nothing, so a count that forgot the earlier batches would leave a full batch or more
    unexplained.
    """
    target = random_target(5, 2, seed=4)
    oracle = make_oracle(target, "random", 1.3, seed=4)
    per_try = 5 * 2
    batch = int(np.ceil(1.3 ** 8))
    for seed in range(200):
        result = sample_jvv(oracle, 1, np.random.default_rng(seed))
        first, total = result.diagnostics["first_sample_queries"], result.ledger.queries_total
        assert first % per_try == 0 and 0 <= (total - first) // per_try < batch
        assert result.diagnostics["first_sample_distinct"] <= min(first, result.ledger.queries_distinct)


@pytest.mark.parametrize("sampler", [sample_mixture_rejection, sample_learned_oracle])
def test_class_samplers_first_sample_is_within_the_run(sampler):
    """One sample asked: the batch that delivered it may have asked (and tested) proposals after it."""
    cls = make_class("local", 8, 2, 64, 2, seed=0)
    oracle = make_oracle(cls.truth, "random", 1.5, seed=0)
    before_the_end = 0
    for seed in range(20):
        result = sampler(cls, oracle, 1, np.random.default_rng(seed))
        led, info = result.ledger, result.diagnostics
        assert 1 <= info["first_sample_queries"] <= led.queries_total
        assert 1 <= info["first_sample_distinct"] <= min(info["first_sample_queries"], led.queries_distinct)
        before_the_end += info["first_sample_queries"] < led.queries_total
    assert before_the_end > 0  # the count is a position in the batch, not the run's total
