"""Statistical checks for samplers: does a seeded sample follow a given law?

The harness the project's own tests use, shipped so that a user can check
their own sampler or oracle the same way.

    from ttsample.testing import FALSE_ALARM, chi_square_p_value, check_oracle
    assert chi_square_p_value(samples, law) > FALSE_ALARM
    check_oracle(my_oracle)  # the protocol's promises: determinism, proposals, the error bound

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
from .trees.trie import MAX_CHILDREN_BRANCHING

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


def check_oracle(oracle, rng: np.random.Generator | None = None, nodes: int = 200, draws: int = 2000) -> None:
    """Check an oracle against its protocol (``ttsample.oracles.protocol``); raise ``AssertionError`` on the first
    property it breaks, naming it.

    On ``nodes`` nodes met by descending from the root (children drawn
    uniformly): answers keep their shape, are never NaN or ``+inf``, and are
    deterministic, also when asked in another batch; ``children`` agrees with
    ``log_weight`` of ``tree.children``; ``proposal_log_prob`` is a law over
    each node's children, ``propose_child`` returns it, and ``draws`` proposals
    from one node follow it (chi-square at ``FALSE_ALARM``; on trees too wide
    to list children, only that ``propose_child`` returns its log q). On an enumerated
    tree, also: every internal answer is within its ``log_rho`` of the mass of
    the leaves below it (leaves are exact, so their sum is the true mass).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    tree = oracle.tree
    found = [np.zeros(1, dtype=np.int64)]
    frontier = found[0]
    while frontier.size and sum(f.size for f in found) < nodes:
        inner = frontier[~tree.is_leaf(frontier)]
        if not inner.size:
            break
        frontier = tree.child(np.repeat(inner, 2), rng.integers(tree.branching, size=2 * inner.size))
        frontier = np.unique(frontier)[: nodes]
        found.append(frontier)
    ids = np.unique(np.concatenate(found))
    answers = np.asarray(oracle.log_weight(ids))
    _expect(answers.shape == ids.shape, f"log_weight changed the shape {ids.shape} to {answers.shape}")
    _expect(not np.isnan(answers).any() and not np.isposinf(answers).any(), "log_weight answered NaN or +inf")
    again = np.asarray(oracle.log_weight(ids[::-1]))[::-1]
    _expect(np.array_equal(answers, again), "log_weight is not deterministic: the same nodes asked again, in "
                                            "another order, got other answers")
    one = np.array([oracle.log_weight(ids[i:i + 1])[0] for i in range(min(ids.size, 20))])
    _expect(np.array_equal(one, answers[:one.size]), "log_weight depends on the batch a node is asked in")
    inner = ids[~tree.is_leaf(ids)]
    if inner.size:
        drawn, log_q = oracle.propose_child(np.repeat(inner[:1], draws), rng)
        _expect(np.allclose(log_q, oracle.proposal_log_prob(drawn)), "propose_child's log q disagrees with "
                                                                     "proposal_log_prob")
    if inner.size and tree.branching <= MAX_CHILDREN_BRANCHING:  # wider trees list no children: draws only
        kids, log_w = oracle.children(inner)
        _expect(np.array_equal(kids, tree.children(inner)), "children returned other nodes than tree.children")
        _expect(np.array_equal(log_w, oracle.log_weight(kids)), "children's weights differ from log_weight's")
        total = np.logaddexp.reduce(np.asarray(oracle.proposal_log_prob(kids), dtype=np.float64), axis=1)
        _expect(np.all(np.abs(total) < 1e-4), "proposal_log_prob is not a law over each node's children: "
                                              f"its mass sums to {np.exp(total[np.argmax(np.abs(total))]):.6g}")
        law = np.exp(np.asarray(oracle.proposal_log_prob(kids[0]), dtype=np.float64))
        where = {int(k): i for i, k in enumerate(kids[0])}
        _expect(all(int(d) in where for d in drawn), "propose_child drew a node that is not a child")
        _expect(chi_square_p_value([where[int(d)] for d in drawn], law) > FALSE_ALARM,
                "propose_child does not draw from proposal_log_prob (chi-square below the false-alarm rate)")
    if tree.enumerated:
        every = np.arange(tree.num_nodes, dtype=np.int64)
        log_w = np.asarray(oracle.log_weight(every), dtype=np.float64)
        below = np.where(tree.is_leaf(every), log_w, -np.inf)
        depth = tree.depth_of(every)
        for h in range(int(depth.max()), 0, -1):
            level = every[depth == h]
            np.logaddexp.at(below, tree.parent(level), below[level])
        inner = ~tree.is_leaf(every) & (np.isfinite(log_w) | np.isfinite(below))
        with np.errstate(invalid="ignore"):
            gap = np.abs(log_w[inner] - below[inner])
        worst = float(np.nanmax(np.where(np.isnan(gap), np.inf, gap))) if gap.size else 0.0
        _expect(worst <= oracle.log_rho + 1e-6, f"an internal answer is off by a factor exp({worst:.4g}) from the "
                                                f"mass of the leaves below it, beyond rho = exp({oracle.log_rho:.4g})")


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(f"oracle check failed: {message}")


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
