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
