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
from scipy import stats

from ttsample import make_oracle, random_target, sample_jvv, sample_lifted, sample_walk, sample_walk_boosted
from ttsample.oracles import CountedOracle, Ledger
from ttsample.run import exact_output_law
from ttsample.samplers.chains import sample_with_restarts
from ttsample.samplers.jvv import descend

from conftest import FALSE_ALARM, target_with_zeros
from test_exact_laws import ParentWeightWalk

N = 20_000


def chi_square_p_value(samples: np.ndarray, probs: np.ndarray) -> float:
    counts = np.bincount(samples, minlength=probs.size)
    assert counts[probs == 0].sum() == 0, "a zero-probability leaf was sampled"
    expected = probs * samples.size
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    return float(stats.chisquare(obs[keep], exp[keep]).pvalue)


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
    law = exact_output_law(sampler, oracle, result.info)
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
    correct_law = exact_output_law("walk", oracle, {"leaf_boost": 10.0, "steps": steps})
    broken = ParentWeightWalk(target.tree, 10.0)
    leaves = sample_with_restarts(broken, CountedOracle(oracle, Ledger()), N, steps, np.random.default_rng(1234), Ledger())
    assert chi_square_p_value(leaves - target.tree.leaf_start, correct_law) < FALSE_ALARM
