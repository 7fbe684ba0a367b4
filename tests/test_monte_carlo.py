"""Monte-Carlo checks: the samplers draw from the laws computed in eval.exact_laws.

Each test is a chi-square goodness-of-fit test of seeded samples against the
exact output law (mu* for JVV; the exact T-step law for the walks, whose
stationary leaf law is mu* by test_exact_laws). Cells with expected count
below 5 are pooled. A correct sampler fails a test with probability
FALSE_ALARM = 1e-6 (chi-square asymptotics). Each test has a twin that feeds
a deliberately broken sampler to the same check and asserts it fails.
"""

import numpy as np
import pytest

from ttsample import (
    bounded_tilt_target,
    make_oracle,
    random_target,
    sample_jvv,
    sample_lifted,
    sample_walk,
    sample_walk_boosted,
)
from ttsample.errors import NoLeafReachedError
from ttsample.oracles import CountedOracle, Ledger
from ttsample.sampling import exact_output_law
from ttsample.samplers.chains import sample_with_restarts
from ttsample.samplers.jvv import descend
from ttsample.samplers.lifted import default_lifted_steps
from ttsample.samplers.walk import SinclairJerrumWalk, default_walk_steps
from ttsample.samplers.uniform_rejection import propose, sample_uniform_rejection
from ttsample.testing import FALSE_ALARM, chi_square_p_value, target_with_zeros
from twins import EagerFlipLiftedWalk, ParentWeightWalk

N = 20_000

INSTANCES = {
    "random-b2": (lambda: random_target(5, 2, concentration=0.7, seed=3), "random", 1.5),
    "zeros-b3": (lambda: target_with_zeros(3, 3, seed=8), "single", 2.0),
    "adversarial-b5": (lambda: random_target(2, 5, concentration=0.7, seed=1), "adversarial", 2.0),
}
SAMPLERS = {"jvv": sample_jvv, "walk": sample_walk, "walk-boosted": sample_walk_boosted, "lifted": sample_lifted}


@pytest.mark.parametrize("instance", INSTANCES)
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_samples_follow_the_exact_output_law(instance, sampler):
    make_target, kind, rho = INSTANCES[instance]
    target = make_target()
    oracle = make_oracle(target, kind, rho, seed=2)
    result = SAMPLERS[sampler](oracle, N, np.random.default_rng(1234))
    assert result.samples.size == N
    law = exact_output_law(sampler, oracle, result.params)
    assert chi_square_p_value(result.samples, law) > FALSE_ALARM


def test_twin_jvv_without_acceptance_fails_the_check():
    target = random_target(5, 2, concentration=0.7, seed=3)
    oracle = make_oracle(target, "random", 2.0, seed=2)
    leaves, _, _ = descend(CountedOracle(oracle, Ledger()), np.random.default_rng(1234), N)
    assert chi_square_p_value(leaves - target.tree.leaf_start, target.leaf_probs()) < FALSE_ALARM


def test_twin_broken_walk_fails_the_check():
    target = random_target(5, 2, concentration=0.7, seed=3)
    oracle = make_oracle(target, "random", 2.0, seed=2)
    steps = 400
    correct_law = exact_output_law("walk", oracle, {"kernel": "dense", "leaf_boost": 10.0, "steps": steps})
    broken = ParentWeightWalk(target.tree, 10.0)
    leaves, _ = sample_with_restarts(broken, CountedOracle(oracle, Ledger()), N, steps, np.random.default_rng(1234), Ledger())
    assert chi_square_p_value(leaves - target.tree.leaf_start, correct_law) < FALSE_ALARM


def test_twin_broken_lifted_walk_fails_the_check():
    target = random_target(5, 2, concentration=0.7, seed=3)
    oracle = make_oracle(target, "random", 2.0, seed=2)
    steps = default_lifted_steps(5, 2.0)
    correct_law = exact_output_law("lifted", oracle, {"leaf_hold": 10.0, "steps": steps})
    broken = EagerFlipLiftedWalk(target.tree, 10.0)
    leaves, _ = sample_with_restarts(broken, CountedOracle(oracle, Ledger()), N, steps, np.random.default_rng(1234),
                                     Ledger())
    assert chi_square_p_value(leaves - target.tree.leaf_start, correct_law) < FALSE_ALARM


class EagerWalk(SinclairJerrumWalk):
    """Broken on purpose: never lazy, so every chain moves at every step (and the plain walk is periodic)."""

    laziness = 0.0


SHORT_STEPS, N_SHORT = 15, 100_000  # before mixing, where a lazy step more or less shows in the output law


def test_walk_before_mixing_follows_its_exact_output_law():
    target = random_target(5, 2, concentration=0.7, seed=3)
    oracle = make_oracle(target, "random", 1.5, seed=2)
    result = sample_walk(oracle, N_SHORT, np.random.default_rng(1234), steps=SHORT_STEPS)
    law = exact_output_law("walk", oracle, result.params)
    assert chi_square_p_value(result.samples, law) > FALSE_ALARM


def test_twin_walk_without_laziness_fails_the_check():
    target = random_target(5, 2, concentration=0.7, seed=3)
    oracle = make_oracle(target, "random", 1.5, seed=2)
    lazy_law = exact_output_law("walk", oracle, {"kernel": "dense", "leaf_boost": 1.0, "steps": SHORT_STEPS})
    eager = EagerWalk(target.tree, 1.0)
    leaves, _ = sample_with_restarts(eager, CountedOracle(oracle, Ledger()), N_SHORT, SHORT_STEPS,
                                     np.random.default_rng(1234), Ledger())
    assert chi_square_p_value(leaves - target.tree.leaf_start, lazy_law) < FALSE_ALARM


def test_twin_periodic_walk_stops_with_an_error_instead_of_hanging():
    target = target_with_zeros(3, 3, seed=8)
    oracle = make_oracle(target, "single", 2.0, seed=2)
    steps = default_walk_steps(3, 2.0, 1.0)
    assert steps % 2 == 0  # leaves sit at odd depth 3: a chain that moves every step is never there at time T
    with pytest.raises(NoLeafReachedError, match="periodic"):
        sample_with_restarts(EagerWalk(target.tree, 1.0), CountedOracle(oracle, Ledger()), N, steps,
                             np.random.default_rng(1234), Ledger())


@pytest.mark.parametrize("b, n", [(2, 6), (3, 4)])
def test_uniform_rejection_samples_follow_mu_star(b, n):
    target = bounded_tilt_target(n, b, rho=2.0, seed=4)
    result = sample_uniform_rejection(make_oracle(target, "flat"), N, np.random.default_rng(1234))
    assert result.samples.size == N
    assert chi_square_p_value(result.samples, target.leaf_probs()) > FALSE_ALARM


def test_twin_uniform_rejection_accepting_every_proposal_fails_the_check():
    target = bounded_tilt_target(6, 2, rho=2.0, seed=4)
    leaves = propose(target.tree, np.random.default_rng(1234), N)  # the proposal, never rejected
    assert chi_square_p_value(leaves - target.tree.leaf_start, target.leaf_probs()) < FALSE_ALARM
