"""Statistical checks for samplers: does a seeded sample follow a given law?

The harness the project's own tests use, shipped so that a user can check
their own sampler or oracle the same way.

    from ttsample.testing import FALSE_ALARM, chi_square_p_value
    assert chi_square_p_value(samples, law) > FALSE_ALARM

Every check here rejects a correct sampler with probability at most
``FALSE_ALARM`` (asymptotically, under the chi-square or normal
approximation). A check that passes a correct sampler only proves something
if the same check fails a broken one: pair each with a twin.

Expected laws are taken as float64 and normalised here, before any
statistic: a law computed from a model's float32 log-probabilities sums to 1
only to about 1e-7, and how far from 1 depends on the CPU's rounding.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from .target import Target

FALSE_ALARM = 1e-6  # the probability that a check rejects a correct sampler
MIN_EXPECTED = 5.0  # cells expected fewer times than this are pooled into one (the chi-square approximation's rule)


def normalised_law(probs) -> np.ndarray:
    """``probs`` as float64 summing to 1 (finite, non-negative, not all zero, else ``ValueError``)."""
    p = np.asarray(probs, dtype=np.float64).ravel()
    if p.size == 0 or not np.all(np.isfinite(p)) or np.any(p < 0):
        raise ValueError("an expected law must be a non-empty array of finite, non-negative numbers")
    total = p.sum()
    if total <= 0:
        raise ValueError("an expected law must have positive total mass")
    return p / total


def law_from_log_probs(log_probs) -> np.ndarray:
    """A normalised float64 law from log-probabilities (any float dtype; ``-inf`` for zero), by log-sum-exp."""
    lp = np.asarray(log_probs, dtype=np.float64).ravel()
    top = np.max(lp)
    if not np.isfinite(top):
        raise ValueError("every log-probability is -inf (or one is NaN or +inf): no law")
    return normalised_law(np.exp(lp - top))


def chi_square_p_value(samples, probs) -> float:
    """The p-value of a chi-square goodness-of-fit test of ``samples`` (indices into ``probs``) against ``probs``.

    ``probs`` is normalised in float64 first, so it may be any non-negative
    weights. Cells expected fewer than ``MIN_EXPECTED`` times are pooled into
    one. A sample on a cell of probability zero is impossible under the law:
    the p-value is then 0.
    """
    p = normalised_law(probs)
    samples = np.asarray(samples, dtype=np.int64).ravel()
    if samples.size == 0:
        raise ValueError("no samples to test")
    if samples.min() < 0 or samples.max() >= p.size:
        raise ValueError(f"samples must be indices in [0, {p.size}) of the expected law")
    counts = np.bincount(samples, minlength=p.size)
    if counts[p == 0].any():
        return 0.0
    expected = p * samples.size
    small = expected < MIN_EXPECTED
    observed = np.append(counts[~small], counts[small].sum())
    expected = np.append(expected[~small], expected[small].sum())
    keep = expected > 0
    observed, expected = observed[keep], expected[keep]
    if observed.size < 2:
        return 1.0  # one cell: every sample lands in it, whatever the sampler
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    return float(stats.chi2.sf(statistic, df=observed.size - 1))


def normal_band(false_alarm: float = FALSE_ALARM) -> float:
    """``z`` with ``P(|N(0, 1)| > z) = false_alarm``: a mean within ``z`` standard errors passes (4.89 at 1e-6)."""
    return float(stats.norm.isf(false_alarm / 2))


def target_with_zeros(depth: int, branching: int, seed: int) -> Target:
    """A random lab target where about a third of the leaves, and whole subtrees, have mass zero.

    Zero subtrees are where samplers divide by zero or walk into dead ends: a
    good instance to check any sampler on.
    """
    rng = np.random.default_rng(seed)
    masses = rng.gamma(0.7, size=branching**depth)
    masses[rng.random(masses.size) < 0.35] = 0.0
    if branching**depth >= branching**2:
        masses[: branching ** (depth - 1)] = 0.0  # the whole first subtree of the root
    masses[-1] += 1.0  # never all zero
    return Target.from_leaf_masses(masses, branching)
