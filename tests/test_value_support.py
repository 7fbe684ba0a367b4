"""No silent zero values: a value of 0 only where the subtree is proven empty.

VGB and twisted SMC are exact only if ``V_hat > 0`` wherever ``V* > 0``. The
VGB paper's heuristic ``alpha^(H-h) r(prefix)`` is 0 on every unbalanced
Dyck prefix, and with it ``ttsample generate --reward dyck --values
heuristic`` returned the empty word 200 times out of 200 (pi* gives it
3.7e-4). Statistical checks reject a correct sampler with probability at most
FALSE_ALARM; each has a twin that must fail.
"""

import json

import numpy as np
import pytest

from extras import require

require("lm")

from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.errors import OracleBoundError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.exact import ExactLaw
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import REWARDS, dyck_valid
from ttsample.lm.samplers.smc import sample_smc
from ttsample.lm.samplers.vgb import sample_vgb
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import DepthCalibratedValues, ExactValues, HeuristicValues
from ttsample.testing import FALSE_ALARM, chi_square_p_value

H = 6


@pytest.fixture(scope="module")
def dyck():
    """The Dyck constraint at H = 6 with its exact pi* (float64, from the enumerated trie), indexed by tokens."""
    law = ExactLaw(GenerationTask(LanguageModel.load("dyck"), "", H, REWARDS["dyck"]))
    return law.task, law.pi_star, law.index


def cells(index, tokens) -> np.ndarray:
    return np.array([index[tuple(t)] for t in tokens])


def test_the_command_of_the_issue_now_samples_pi_star(dyck, tmp_path):
    task, pi_star, index = dyck
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--model", "dyck", "--horizon", str(H), "--reward", "dyck",
                                      "--sampler", "vgb", "--values", "heuristic", "-n", "200", "--seed", "0",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    tokens = [json.loads(line)["tokens"] for line in (out / "samples.jsonl").read_text().splitlines()]
    assert chi_square_p_value(cells(index, tokens), pi_star) > FALSE_ALARM
    empty = index[(task.eos_action,)]
    assert sum(cells(index, tokens) == empty) < 10  # was 200 of 200


def test_the_unfloored_heuristic_is_caught(dyck):
    """Twin: the VGB paper's alpha^(H-h) r(prefix), declared a proof of emptiness, collapses onto the empty word."""
    task, pi_star, index = dyck
    wrong = HeuristicValues(task, prefix=dyck_valid)  # claims r(prefix) = 0 proves the subtree empty: it does not
    drawn = sample_vgb(task, LMOracle(task, wrong), 200, np.random.default_rng(0)).samples
    assert chi_square_p_value(cells(index, task.tokens(drawn)), pi_star) < FALSE_ALARM


def test_without_a_prefix_check_the_heuristic_is_floored_and_still_exact(dyck):
    task, pi_star, index = dyck
    bare = GenerationTask(task.lm, "", H, dyck_valid)  # a plain callable: no prefix check declared
    values = HeuristicValues(bare)
    assert not values.proves_zeros
    inner = bare.tree.child(np.zeros(2, dtype=np.int64), [1, 3])  # ")" and "]": no response completes them
    assert np.all(np.isfinite(values(inner)))  # floored, not zero
    drawn = sample_vgb(bare, LMOracle(bare, values), 400, np.random.default_rng(1)).samples
    assert chi_square_p_value(cells(index, bare.tokens(drawn)), pi_star) > FALSE_ALARM


def test_twisted_smc_with_the_default_heuristic_no_longer_collapses(dyck):
    task, pi_star, index = dyck
    fresh = GenerationTask(task.lm, "", H, REWARDS["dyck"])
    run = sample_smc(fresh, LMOracle(fresh, HeuristicValues(fresh)), 400, np.random.default_rng(0), twist=True,
                     particles=4000)
    empty = sum(cells(index, fresh.tokens(run.samples)) == index[(fresh.eos_action,)])
    # pi* gives the empty word 3.7e-4 of its mass, so about 0.15 of 400 iid draws, and 20 or more with probability
    # 5.6e-36 (binomial tail); these are resampled from 4,000 particles, not iid, so the bound is loose, but a
    # collapse is not subtle: with the unfloored heuristic (the twin, checked by reverting) all 400 are empty
    assert empty < 20


def test_a_zero_nothing_proves_is_refused_with_the_node(dyck):
    task, _, _ = dyck
    fresh = GenerationTask(task.lm, "", H, REWARDS["dyck"])
    zero_off_balance = lambda nodes: np.log([dyck_valid(t) + 0.0 for t in fresh.text(nodes)])  # noqa: E731
    with np.errstate(divide="ignore"), pytest.raises(OracleBoundError, match=r"the values are 0 at the prefix '.+'"):
        sample_vgb(fresh, LMOracle(fresh, zero_off_balance), 10, np.random.default_rng(0))


def test_twisted_smc_with_exact_values_holds_z_at_every_depth(dyck):
    """With psi = V* every incremental weight is 1: the running normaliser is Z after every step (float32 model)."""
    task, _, _ = dyck
    exact = ExactValues(task)
    run = sample_smc(task, LMOracle(task, exact), 64, np.random.default_rng(0), twist=True)
    np.testing.assert_allclose(run.diagnostics["log_z_steps"], exact.log_v[0], atol=1e-4)


def test_depth_calibrated_values_keep_vgb_exact(dyck):
    """The pilot's scales change how fast the walk reaches leaves, never the leaf law; twin: a wrong law is caught."""
    task, pi_star, index = dyck
    fresh = GenerationTask(task.lm, "", H, REWARDS["dyck"])
    values = DepthCalibratedValues(fresh, np.random.default_rng(0))
    assert values.proves_zeros and np.all(np.isfinite(values.log_scale))
    drawn = sample_vgb(fresh, LMOracle(fresh, values), 400, np.random.default_rng(2)).samples
    got = cells(index, fresh.tokens(drawn))
    assert chi_square_p_value(got, pi_star) > FALSE_ALARM
    assert chi_square_p_value(got, np.roll(pi_star, 1)) < FALSE_ALARM


def test_calibrated_values_from_the_command_line_count_their_pilot(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--model", "dyck", "--horizon", str(H), "--reward", "dyck",
                                      "--sampler", "vgb", "--values", "calibrated", "-n", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["values"] == "calibrated" and ledger["info"]["values_setup"]["forward_passes"] > 0
    assert all(json.loads(line)["reward"] == 1.0 for line in (out / "samples.jsonl").read_text().splitlines())


def test_the_heuristic_never_underflows_to_a_zero(dyck):
    """alpha^(H-h) is below the smallest double here (1e-30 ** 19): computed in log space it stays finite, so no
    subtree is cut off by rounding (with a prefix check such a zero would pass as proven)."""
    task, _, _ = dyck
    long = GenerationTask(task.lm, "", 20, REWARDS["dyck"])
    log_v = HeuristicValues(long, alpha=1e-30)(long.tree.child(np.zeros(1, dtype=np.int64), [0]))  # "("
    assert np.isfinite(log_v).all() and log_v[0] == pytest.approx(19 * np.log(1e-30))
