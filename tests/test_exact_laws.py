"""Exact output laws on enumerable trees: the exact samplers reach mu* to floating-point precision.

No randomness here: each law is computed, not sampled, so there is no false-alarm rate.
Each claim has a twin that shows the same check rejects a broken sampler.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttsample import Target, bounded_tilt_target, make_oracle, random_target
from ttsample.eval.exact_laws import (
    jvv_output_law,
    leaf_marginal,
    total_variation,
    uniform_rejection_output_law,
    walk_best_cost,
    walk_output_law,
    walk_stationary_law,
    walk_tv_curve,
)
from ttsample.samplers.chains import schedule_rho
from ttsample.samplers.lifted import LiftedWalk, default_lifted_steps
from ttsample.samplers.walk import SinclairJerrumWalk, default_walk_steps

from ttsample.testing import target_with_zeros

from twins import EagerFlipLiftedWalk, ParentWeightWalk

SHAPES = [(2, n) for n in range(1, 9)] + [(3, n) for n in range(1, 6)] + [(5, n) for n in range(1, 5)]
ORACLES = [
    ("exact", 1.0), ("random", 1.5), ("random", 4.0), ("adversarial", 2.0), ("single", 2.0),
    ("signs", 2.0), ("decoy", 2.0), ("drift", 2.0), ("delayed", 1.0),
]


def instances():
    for b, n in SHAPES:
        yield f"random-b{b}-n{n}", random_target(n, b, concentration=0.5, seed=100 * b + n)
        yield f"zeros-b{b}-n{n}", target_with_zeros(n, b, seed=b + n)


def walks(tree):
    return [SinclairJerrumWalk(tree, 1.0), SinclairJerrumWalk(tree, 2.0 * tree.depth), LiftedWalk(tree, 2.0 * tree.depth)]


def stationary_leaf_law(walk, oracle):
    leaf = leaf_marginal(walk, walk_stationary_law(walk, oracle))
    return leaf / leaf.sum()


@pytest.mark.parametrize("kind, rho", ORACLES)
def test_jvv_output_law_is_exactly_mu_star(kind, rho):
    for name, target in instances():
        oracle = make_oracle(target, kind, rho, seed=7)
        if not np.isfinite(oracle.log_rho):
            continue  # JVV refuses oracles without a bound (tested in test_samplers)
        law, accept = jvv_output_law(oracle)
        assert total_variation(law, target.leaf_probs()) < 1e-9, name
        assert accept >= np.exp(-2 * (target.tree.depth - 1) * oracle.log_rho) * (1 - 1e-9)


@pytest.mark.parametrize("kind, rho", ORACLES)
def test_walks_stationary_leaf_law_is_exactly_mu_star(kind, rho):
    for name, target in instances():
        if target.tree.num_leaves > 300:
            continue
        oracle = make_oracle(target, kind, rho, seed=7)
        for walk in walks(target.tree):
            assert total_variation(stationary_leaf_law(walk, oracle), target.leaf_probs()) < 1e-9, (name, walk.name)


def test_hard_family_with_flat_oracle():
    target = bounded_tilt_target(6, 2, rho=1.5, seed=1)
    oracle = make_oracle(target, "flat")
    assert oracle.rho <= 1.5 + 1e-9
    assert total_variation(jvv_output_law(oracle)[0], target.leaf_probs()) < 1e-9
    for walk in walks(target.tree):
        assert total_variation(stationary_leaf_law(walk, oracle), target.leaf_probs()) < 1e-9


@pytest.mark.parametrize("b, n", [(2, 1), (2, 2), (2, 5), (2, 9), (3, 1), (3, 3), (3, 6)])
@pytest.mark.parametrize("tilt", [1.2, 3.0])
def test_uniform_rejection_is_exact_on_bounded_tilts_at_acceptance_one_over_b_rho(b, n, tilt):
    target = bounded_tilt_target(n, b, rho=tilt, seed=10 * b + n)
    oracle = make_oracle(target, "flat")
    assert oracle.rho <= tilt * (1 + 1e-12)
    law, accept = uniform_rejection_output_law(oracle)
    assert total_variation(law, target.leaf_probs()) < 1e-9
    assert accept == pytest.approx(1 / (b * oracle.rho), rel=1e-9)  # b rho queries per sample, at every depth


def test_uniform_rejection_is_exact_whenever_the_flat_bound_is_finite():
    target = random_target(6, 3, concentration=0.5, seed=2)  # far from flat: a large measured rho, still exact
    oracle = make_oracle(target, "flat")
    law, accept = uniform_rejection_output_law(oracle)
    assert total_variation(law, target.leaf_probs()) < 1e-9
    assert accept == pytest.approx(1 / (3 * oracle.rho), rel=1e-9)


@pytest.mark.parametrize("b, n", [(2, 3), (2, 6), (2, 9), (3, 4), (5, 3)])
@pytest.mark.parametrize(
    "kind, rho",
    [("exact", 1.0), ("random", 2.0), ("adversarial", 2.0), ("single", 2.0), ("signs", 2.0), ("decoy", 2.0),
     ("drift", 2.0), ("flat", 2.0)],
)
def test_default_walk_lengths_reach_tv_one_percent(b, n, kind, rho):
    """The calibrated default T (docs/walk_schedule.md) keeps the output law within 0.01 of mu*."""
    target = bounded_tilt_target(n, b, rho, seed=n + 7) if kind == "flat" else random_target(n, b, 0.5, seed=n)
    oracle = make_oracle(target, kind, rho, seed=3)
    rho = schedule_rho(oracle)  # what the samplers use: the stated rho, or the measured one
    for walk in walks(target.tree):
        steps = (
            default_lifted_steps(n, rho) if isinstance(walk, LiftedWalk) else default_walk_steps(n, rho, walk.leaf_boost)
        )
        law, p_leaf = walk_output_law(walk, oracle, steps)
        assert total_variation(law, target.leaf_probs()) <= 0.01, walk.name
        assert p_leaf > 0.3 / (n + 1) if walk.name == "walk" else p_leaf > 0.3


leaf_masses = st.integers(1, 4).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.sampled_from([2, 3]),
    )
).flatmap(
    lambda nb: st.tuples(
        st.just(nb[1]),
        st.lists(
            st.one_of(st.just(0.0), st.floats(1e-6, 1e3)), min_size=nb[1] ** nb[0], max_size=nb[1] ** nb[0]
        ).filter(lambda xs: sum(xs) > 0),
    )
)


@settings(max_examples=40, deadline=None)
@given(
    leaf_masses,
    st.sampled_from(["random", "adversarial", "single", "signs", "decoy", "drift"]),
    st.floats(1.0, 3.0),
    st.integers(0, 99),
)
def test_exactness_on_arbitrary_targets(bm, kind, rho, seed):
    b, masses = bm
    target = Target.from_leaf_masses(np.array(masses), b)
    oracle = make_oracle(target, kind, rho, seed=seed)
    assert total_variation(jvv_output_law(oracle)[0], target.leaf_probs()) < 1e-9
    for walk in walks(target.tree):
        assert total_variation(stationary_leaf_law(walk, oracle), target.leaf_probs()) < 1e-9


# ---- twins: the same checks reject broken samplers ----


def noisy_instance():
    target = random_target(5, 2, concentration=0.5, seed=5)
    return target, make_oracle(target, "random", 2.0, seed=1)


def test_twin_uniform_rejection_without_acceptance_is_caught():
    target = bounded_tilt_target(6, 2, rho=1.5, seed=1)
    proposal_law, accept = uniform_rejection_output_law(make_oracle(target, "flat"), log_bound=-np.inf)
    assert accept == pytest.approx(1.0)  # every proposal accepted: the uniform law
    assert total_variation(proposal_law, target.leaf_probs()) > 1e-3


def test_twin_jvv_without_acceptance_is_caught():
    target, oracle = noisy_instance()
    proposal_law, _ = jvv_output_law(oracle, log_bound=-np.inf)  # accept every proposal
    assert total_variation(proposal_law, target.leaf_probs()) > 1e-3


@pytest.mark.parametrize("broken", [ParentWeightWalk, EagerFlipLiftedWalk])
def test_twin_broken_walks_are_caught(broken):
    target, oracle = noisy_instance()
    walk = broken(target.tree, 1.0) if broken is ParentWeightWalk else broken(target.tree, 10.0)
    assert total_variation(stationary_leaf_law(walk, oracle), target.leaf_probs()) > 1e-3


@pytest.mark.parametrize("kind, rho", [("random", 2.0), ("signs", 1.5), ("exact", 1.0)])
def test_best_cost_scan_stops_early_without_missing_the_best(kind, rho):
    target = random_target(6, 2, concentration=0.5, seed=5)
    oracle = make_oracle(target, kind, rho, seed=5)
    for walk in walks(target.tree):
        curve = list(walk_tv_curve(walk, oracle, target.leaf_probs(), 3000))
        full = min((t / p, t) for t, p, tv in curve if tv <= 0.01 and p > 0)
        best = walk_best_cost(walk, oracle, target.leaf_probs(), 0.01, 3000)
        assert best == (full[1], full[0])
