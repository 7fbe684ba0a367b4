"""The statistical harness (ttsample.testing): float64 normalisation, its false-alarm rate, and its power."""

import numpy as np
import pytest
from scipy import stats

from ttsample.testing import FALSE_ALARM, chi_square_p_value, law_from_log_probs, normal_band, normalised_law

LAW = np.array([0.5, 0.25, 0.125, 0.0625, 0.03125, 0.03125, 0.0])


def test_a_float32_law_that_does_not_sum_to_one_is_tested_as_its_normalisation():
    """The failure seen on another CPU: a law from float32 log-probabilities summed to 1 + 7.47e-8."""
    rng = np.random.default_rng(0)
    law64 = rng.dirichlet(np.ones(4096))
    law32 = (law64 * (1 + 7.47e-8)).astype(np.float32)
    draws = rng.choice(4096, size=300, p=law64)
    counts = np.bincount(draws, minlength=4096)
    with pytest.raises(ValueError, match="sum of the observed frequencies"):  # what scipy's own check made of it
        stats.chisquare(counts, law32 * draws.size)
    p = chi_square_p_value(draws, law32)
    assert p == pytest.approx(chi_square_p_value(draws, law64), rel=1e-6)
    assert p == pytest.approx(chi_square_p_value(draws, law_from_log_probs(np.log(law32))), rel=1e-9)
    assert p > FALSE_ALARM


def test_p_values_of_a_correct_sampler_are_uniform():
    """Calibration: 400 seeded tests of exact draws; a KS test of their p-values (false-alarm rate FALSE_ALARM).

    The chi-square statistic is discrete, so the p-values are only
    approximately uniform; at 2,000 draws over 6 cells the approximation is
    far inside what 400 p-values can resolve. Twin: draws from a law off by
    0.02 in two cells give p-values piled near 0, and the same KS test fails.
    """
    rng = np.random.default_rng(1)
    wrong = LAW.copy()
    wrong[0] -= 0.02
    wrong[4] += 0.02
    right_p = [chi_square_p_value(rng.choice(LAW.size, 2000, p=LAW), LAW) for _ in range(400)]
    wrong_p = [chi_square_p_value(rng.choice(LAW.size, 2000, p=wrong), LAW) for _ in range(400)]
    assert stats.kstest(right_p, "uniform").pvalue > FALSE_ALARM
    assert stats.kstest(wrong_p, "uniform").pvalue < FALSE_ALARM


def test_a_wrong_sampler_is_caught_at_the_false_alarm_rate():
    rng = np.random.default_rng(2)
    assert chi_square_p_value(rng.choice(LAW.size, 20_000, p=LAW), LAW) > FALSE_ALARM
    assert chi_square_p_value(rng.integers(0, 6, 20_000), LAW) < FALSE_ALARM  # uniform draws on the support


def test_a_draw_where_the_law_has_no_mass_is_impossible():
    assert chi_square_p_value(np.array([0, 1, 6]), LAW) == 0.0


def test_rare_cells_are_pooled():
    """Cells expected fewer than 5 times count as one: a rare cell drawn once is not an extreme event."""
    law = np.append(np.full(4, 0.2499), np.full(40, 0.0004 / 40))
    draws = np.append(np.repeat(np.arange(4), 250), [40])  # 1,001 draws, one in a cell of probability 1e-5
    assert chi_square_p_value(draws, law) > 0.5


@pytest.mark.parametrize("law, samples, message", [
    (np.array([0.5, -0.1, 0.6]), [0], "non-negative"),
    (np.array([0.5, np.nan]), [0], "finite"),
    (np.zeros(3), [0], "positive total"),
    (LAW, [], "no samples"),
    (LAW, [7], "indices"),
])
def test_bad_input_is_refused(law, samples, message):
    with pytest.raises(ValueError, match=message):
        chi_square_p_value(np.array(samples, dtype=np.int64), law)


def test_the_normal_band_has_the_stated_rate():
    z = normal_band(FALSE_ALARM)
    assert z == pytest.approx(4.89, abs=0.01)
    assert 2 * stats.norm.sf(z) == pytest.approx(FALSE_ALARM, rel=1e-9)


# -- check_oracle: the protocol's promises, with a twin for each ---------------------------------------------------

from ttsample import make_oracle, random_target  # noqa: E402
from ttsample.oracles import ORACLES  # noqa: E402
from ttsample.testing import check_oracle  # noqa: E402

TARGET = random_target(6, 3, concentration=0.7, seed=4)


@pytest.mark.parametrize("kind", sorted(ORACLES))
def test_every_error_model_of_the_lab_keeps_the_protocol(kind):
    check_oracle(make_oracle(TARGET, kind, 2.0, seed=1))


class Forgetful:
    """Broken on purpose: each answer carries fresh noise (not deterministic)."""

    def __init__(self, oracle):
        self.inner, self.tree, self.log_rho, self.rng = oracle, oracle.tree, oracle.log_rho, np.random.default_rng(0)

    def log_weight(self, ids):
        return self.inner.log_weight(ids) + 0.01 * self.rng.standard_normal(np.shape(ids))

    def children(self, ids):
        kids = self.tree.children(ids)
        return kids, self.log_weight(kids)

    def proposal_log_prob(self, ids):
        return self.inner.proposal_log_prob(ids)

    def propose_child(self, ids, rng):
        return self.inner.propose_child(ids, rng)


class SkewedProposal(Forgetful):
    """Broken on purpose: deterministic answers, but proposals always pick the first child while claiming uniform."""

    def log_weight(self, ids):
        return self.inner.log_weight(ids)

    def propose_child(self, ids, rng):
        kids = self.tree.child(np.asarray(ids), np.zeros(np.shape(ids), dtype=np.int64))
        return kids, self.proposal_log_prob(kids)


class Overclaiming(SkewedProposal):
    """Broken on purpose: a random error model within rho = 2 that claims rho = 1.5."""

    def __init__(self, oracle):
        super().__init__(oracle)
        self.log_rho = np.log(1.5)

    def propose_child(self, ids, rng):
        return self.inner.propose_child(ids, rng)


@pytest.mark.parametrize("broken, message", [(Forgetful, "not deterministic"), (SkewedProposal, "does not draw"),
                                             (Overclaiming, "beyond rho")])
def test_check_oracle_catches_each_broken_promise(broken, message):
    with pytest.raises(AssertionError, match=message):
        check_oracle(broken(make_oracle(TARGET, "random", 2.0, seed=1)))
