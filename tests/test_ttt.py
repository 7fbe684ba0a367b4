"""Test-time training over a class F: classes, exactness of the class samplers, consistency checks.

Exactness is checked two ways. (1) Exact, no randomness: one round of either
sampler, for a fixed version space V, accepts x with law q_V(x) * accept(x),
which must be mu* to 1e-9 (and accept(x) <= 1), for V = F and for V after
eliminations. (2) Monte Carlo: chi-square of seeded samples against mu*,
false-alarm rate FALSE_ALARM = 1e-6 per test, both for long runs and for the
first sample of many independent runs (where V is still large), and for
short runs on a class built so that V shrinks while batched proposals are
pending (their thinning is under test). Each twin breaks one step of the real
sampler (acceptance, thinning) and must fail.
"""

import numpy as np
import pytest
from typer.testing import CliRunner

from ttsample import Target, make_oracle, random_target
from ttsample.cli import app
from ttsample.errors import InconsistentClassError, ParameterError, TreeShapeError
from ttsample.eval.exact_laws import total_variation
from ttsample.problems.classes import TargetClass, make_class
from ttsample.registry import CLASS_SAMPLERS
from ttsample.samplers import ttt
from ttsample.samplers.ttt import VersionSpace, sample_learned_oracle, sample_mixture_rejection

from ttsample.testing import FALSE_ALARM, chi_square_p_value

KINDS = [("independent", 0.5), ("local", 2), ("tilt", 2.0)]


@pytest.mark.parametrize("kind, param", KINDS)
def test_generated_classes(kind, param):
    cls = make_class(kind, 6, 2, 4096, param, seed=3)
    assert cls.size == 4096 and 0 <= cls.true_index < 4096
    np.testing.assert_allclose(np.exp(cls.leaf_log_mass).sum(axis=1), 1.0)
    distinct = np.unique(np.round(cls.leaf_log_mass, 9), axis=0).shape[0]
    assert distinct > 0.9 * cls.size


def test_local_class_members_agree_above_their_subtree():
    cls = make_class("local", 8, 2, 32, 3, seed=0)
    internal = cls.log_mass[:, : cls.tree.level_starts[cls.tree.depth - 3]]  # depths 0..n-4
    np.testing.assert_allclose(internal, internal[0][None, :].repeat(cls.size, axis=0), atol=1e-12)
    assert np.abs(cls.leaf_log_mass - cls.leaf_log_mass[0]).max() > 0.1


def test_bad_classes():
    with pytest.raises(TreeShapeError, match="fit"):
        make_class("independent", 20, 2, 4096, 1.0)
    with pytest.raises(ParameterError, match="class kind"):
        make_class("psychic", 4, 2, 4, 1.0)
    with pytest.raises(ParameterError, match="spread"):
        make_class("local", 4, 2, 4, 1.5)
    with pytest.raises(TreeShapeError, match="same tree"):
        TargetClass.from_targets([random_target(3, 2), random_target(4, 2)], 0)


def round_law(vs: VersionSpace, sharpened: bool) -> tuple[np.ndarray, np.ndarray]:
    """Law of an accepted proposal in one round with this V, and the acceptance probabilities."""
    q = vs.leaf_sum / vs.count
    mu = np.exp(vs.target_class.truth.leaf_log_mass)
    with np.errstate(divide="ignore", invalid="ignore"):
        accept = np.where(q > 0, vs.count * mu / (vs.bound(sharpened) * vs.leaf_sum), 0.0)
    joint = q * np.minimum(accept, 1.0)
    return joint / joint.sum(), accept


@pytest.mark.parametrize("kind, param", KINDS)
@pytest.mark.parametrize("sharpened", [False, True])
def test_one_round_accepts_exactly_mu_star(kind, param, sharpened):
    cls = make_class(kind, 6, 3, 50, param, seed=7)
    vs = VersionSpace(cls, np.log(1.5))
    rng = np.random.default_rng(0)
    for _ in range(4):  # V = F, then V after eliminations by random leaf answers
        law, accept = round_law(vs, sharpened)
        assert accept.max() <= 1 + 1e-12
        assert total_variation(law, cls.truth.leaf_probs()) < 1e-9
        x = vs.sample(rng, 3)
        vs.observe(x + cls.tree.leaf_start, cls.truth.leaf_log_mass[x])


def test_twin_round_without_acceptance_is_caught():
    cls = make_class("local", 6, 3, 50, 2, seed=7)
    vs = VersionSpace(cls, np.log(1.5))
    q = vs.leaf_sum / vs.count  # accepting every proposal outputs the mixture itself
    assert total_variation(q, cls.truth.leaf_probs()) > 1e-3


INSTANCES = [("independent", 0.5, 64), ("local", 1, 32), ("tilt", 2.0, 32)]


@pytest.mark.parametrize("kind, param, size", INSTANCES)
@pytest.mark.parametrize("name", CLASS_SAMPLERS)
def test_class_samplers_draw_mu_star(kind, param, size, name):
    cls = make_class(kind, 5, 2, size, param, seed=11)
    oracle = make_oracle(cls.truth, "random", 1.5, seed=2)
    result = CLASS_SAMPLERS[name](cls, oracle, 20_000, np.random.default_rng(99))
    assert chi_square_p_value(result.samples, cls.truth.leaf_probs()) > FALSE_ALARM


def first_samples(sampler, cls, oracle, runs: int) -> np.ndarray:
    """The first sample of ``runs`` independent runs: where elimination has had least time to help."""
    return np.array([sampler(cls, oracle, 1, np.random.default_rng(seed)).samples[0] for seed in range(runs)])


@pytest.mark.parametrize("name", CLASS_SAMPLERS)
def test_first_samples_draw_mu_star(name):
    cls = make_class("local", 4, 2, 64, 1, seed=5)
    oracle = make_oracle(cls.truth, "random", 1.5, seed=2)
    draws = first_samples(CLASS_SAMPLERS[name], cls, oracle, 2500)
    assert chi_square_p_value(draws, cls.truth.leaf_probs()) > FALSE_ALARM


def test_twin_sampler_with_acceptance_neutralised_fails(monkeypatch):
    cls = make_class("local", 4, 2, 64, 1, seed=5)
    oracle = make_oracle(cls.truth, "random", 1.5, seed=2)
    monkeypatch.setattr(ttt.VersionSpace, "bound", lambda self, sharpened: 1e-12)  # accept every proposal
    draws = first_samples(sample_mixture_rejection, cls, oracle, 2500)
    assert chi_square_p_value(draws, cls.truth.leaf_probs()) < FALSE_ALARM


def swap_class(depth: int = 4, decoys: int = 3, tiny: float = 0.01) -> TargetClass:
    """The true member and decoys that each swap one sibling pair, (tiny, 1) -> (1, tiny), and agree elsewhere.

    Only an answer at a decoy's pair rules it out, so batches grow before it
    happens and proposals are pending when it does. A pending proposal sits at
    the decoy's heavy leaf far more often under the old mixture than under the
    new one: without thinning, those leaves (mu* = tiny) come out too often.
    """
    masses = np.random.default_rng(0).uniform(0.5, 1.5, size=2**depth)
    pairs = 2 * (np.arange(decoys) * 2 ** (depth - 1) // decoys)
    masses[pairs], masses[pairs + 1] = tiny, 1.0
    members = [Target.from_leaf_masses(masses, 2)]
    for a in pairs:
        swapped = masses.copy()
        swapped[[a, a + 1]] = masses[[a + 1, a]]
        members.append(Target.from_leaf_masses(swapped, 2))
    return TargetClass.from_targets(members, 0, "swaps")


def pooled_short_runs(sampler, cls, oracle, runs: int = 500, per_run: int = 20) -> np.ndarray:
    """The pooled samples of many independent short runs (decoys are eliminated early, with proposals pending)."""
    rngs = (np.random.default_rng(seed) for seed in range(runs))
    return np.concatenate([sampler(cls, oracle, per_run, rng).samples for rng in rngs])


@pytest.mark.parametrize("name", CLASS_SAMPLERS)
def test_proposals_pending_at_an_elimination_are_thinned_to_mu_star(name, monkeypatch):
    cls = swap_class()
    oracle = make_oracle(cls.truth, "random", 1.5, seed=2)
    real_thin, dropped = ttt.thin, []

    def counting_thin(*args):
        keep = real_thin(*args)
        dropped.append(int((~keep).sum()))
        return keep

    monkeypatch.setattr(ttt, "thin", counting_thin)
    draws = pooled_short_runs(CLASS_SAMPLERS[name], cls, oracle)
    assert chi_square_p_value(draws, cls.truth.leaf_probs()) > FALSE_ALARM
    assert sum(dropped) > 100  # the case under test happened: pending proposals were thinned away


@pytest.mark.parametrize("name", CLASS_SAMPLERS)
def test_twin_sampler_keeping_every_pending_proposal_fails(name, monkeypatch):
    cls = swap_class()
    oracle = make_oracle(cls.truth, "random", 1.5, seed=2)
    monkeypatch.setattr(ttt, "thin", lambda rng, old_sum, new_sum, x: np.ones(x.size, dtype=bool))
    draws = pooled_short_runs(CLASS_SAMPLERS[name], cls, oracle)
    assert chi_square_p_value(draws, cls.truth.leaf_probs()) < FALSE_ALARM


def test_accounting_and_amortisation():
    cls = make_class("independent", 8, 2, 64, 0.5, seed=1)
    for sampler in (sample_mixture_rejection, sample_learned_oracle):
        result = sampler(cls, make_oracle(cls.truth, "random", 1.5), 500, np.random.default_rng(0))
        led, info = result.ledger, result.diagnostics
        assert led.tries == 500 + led.restarts + led.surplus and led.queries_total >= led.tries  # a query per round
        assert 1 <= info["first_sample_queries"] <= led.queries_total
        assert info["final_version_space"] == 1  # independent members: the class collapses
        assert led.queries_total / 500 < 1.2  # after collapse, every proposal is accepted
    single = TargetClass.from_targets([cls.truth], 0)
    result = sample_mixture_rejection(single, make_oracle(cls.truth, "exact"), 300, np.random.default_rng(0))
    assert result.ledger.queries_total == 300 and result.ledger.restarts == 0


@pytest.mark.parametrize("sampler", [sample_mixture_rejection, sample_learned_oracle])
def test_wrong_class_is_reported(sampler):
    cls = make_class("independent", 6, 2, 16, 0.5, seed=1)
    stranger = random_target(6, 2, 0.5, seed=12345)
    with pytest.raises(InconsistentClassError, match="not in this class"):
        sampler(cls, make_oracle(stranger, "random", 1.2), 100, np.random.default_rng(0))


def test_oracle_on_another_tree_is_refused():
    cls = make_class("independent", 6, 2, 4, 0.5)
    with pytest.raises(ParameterError, match="tree"):
        sample_mixture_rejection(cls, make_oracle(random_target(5, 2), "exact"), 10, np.random.default_rng(0))


def test_cli_samples_a_class(tmp_path):
    out = tmp_path / "c"
    args = ["sample", "--random-target", "6", "--class", "local", "--class-size", "16", "--class-param", "2",
            "--sampler", "mixture-rejection", "--oracle", "random", "--rho", "1.5", "-n", "100", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert np.load(out / "samples.npy").shape == (100,)
    bad = CliRunner().invoke(app, ["sample", "--random-target", "6", "--sampler", "learned-oracle", "-n", "5",
                                   "--out", str(tmp_path / "d")])
    assert bad.exit_code == 2 and "class" in bad.output and not (tmp_path / "d").exists()


def test_quick_ttt_reproduction(tmp_path):
    out = tmp_path / "ttt"
    result = CliRunner().invoke(app, ["reproduce", "ttt", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = (out / "report.md").read_text()
    assert "## Class samplers against the class-agnostic walk" in report and "against class size |F|" in report
    for name in ["summary.json", "table.csv", "queries_vs_class_size_class-local_2_b2.png"]:
        assert (out / name).exists(), name
