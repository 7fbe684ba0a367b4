"""AISP: the perturbation hook, the mean update, the limits the paper states, diagnostics, bad parameters."""

import json

import numpy as np
import pytest

from extras import require

require("lm")

import torch
from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.errors import ParameterError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.rewards import dyck_valid, length_reward
from ttsample.lm.samplers.aisp import aisp_update, perturbation_hook, sample_aisp
from ttsample.lm.task import GenerationTask


@pytest.fixture(scope="module")
def task():
    return GenerationTask(LanguageModel.load("subword"), "this license", 8, length_reward, beta=1.0)


def test_no_perturbation_decodes_as_the_model(task):
    """sigma -> 0 and U = 0: the same draws as plain sampling with the same seed, and greedy decoding under argmax."""
    rows = np.zeros(16, dtype=np.int64)
    zero = np.zeros((16, 4, task.lm.hidden_size))
    plain = task.sample_suffix(rows, np.random.default_rng(5))
    hooked = task.sample_suffix(rows, np.random.default_rng(5), logits_hook=perturbation_hook(task, zero + 1e-9))
    assert np.array_equal(plain, hooked)
    greedy = task.sample_suffix(rows[:1], np.random.default_rng(0), logits_hook=perturbation_hook(task, zero[:1], "argmax"))
    node = np.zeros(1, dtype=np.int64)
    while not task.tree.is_leaf(node)[0]:  # an independent greedy decoder
        node = task.tree.child(node, [int(np.argmax(task.next_log_probs(node)[0]))])
    assert greedy[0] == node[0]
    pushed = perturbation_hook(task, np.ones((16, 4, task.lm.hidden_size)) * 5.0)  # twin: a real perturbation changes them
    assert not np.array_equal(plain, task.sample_suffix(rows, np.random.default_rng(5), logits_hook=pushed))


def test_mean_update_by_hand():
    u = np.array([[1.0, 0.0]])  # window 1, d 2
    v = np.array([[[1.0, 1.0]], [[3.0, -1.0]]])  # two candidates
    rewards = np.array([0.0, 1.0])
    sigma, lam, alpha = 1.0, 0.5, 0.5
    # s = r / lam - ((1 - alpha) / sigma^2) <u, v>: s_1 = 0 - 0.5 * 1 = -0.5; s_2 = 2 - 0.5 * 3 = 0.5
    w = np.exp([-0.5, 0.5]) / np.exp([-0.5, 0.5]).sum()
    new_u, log_w = aisp_update(u, v, rewards, sigma, lam, alpha)
    np.testing.assert_allclose(np.exp(log_w), w)
    np.testing.assert_allclose(new_u, [[w[0] * 1 + w[1] * 3, w[0] * 1 - w[1] * 1]])


def test_weights_are_a_softmax_at_any_reward_scale_and_tend_to_best_of_n():
    rng = np.random.default_rng(0)
    u, v = np.zeros((3, 4)), rng.standard_normal((6, 3, 4))
    for scale in (1e-6, 1.0, 1e6):
        _, log_w = aisp_update(u, v, scale * rng.standard_normal(6), 0.7, 0.3, 0.999)
        assert np.all(np.isfinite(log_w)) and np.isclose(np.exp(log_w).sum(), 1.0)
    rewards = np.array([0.1, 0.9, 0.3, 0.2, 0.0, 0.5])
    new_u, log_w = aisp_update(u, v, rewards, 0.7, 1e-9, 0.999)  # lambda -> 0: all mass on the best candidate
    assert np.isclose(np.exp(log_w[1]), 1.0) and np.allclose(new_u, v[1])


def test_aisp_keeps_the_best_reports_diagnostics_and_reproduces(task):
    kwargs = dict(window=4, candidates=6, iterations=4, sigma=0.7, lam=0.3)
    result = sample_aisp(task, None, 2, np.random.default_rng(0), **kwargs)
    again = sample_aisp(task, None, 2, np.random.default_rng(0), **kwargs)
    assert np.array_equal(task.tokens(result.samples), task.tokens(again.samples))  # seeded
    diag = result.diagnostics["rounds"]
    assert all(len(diag[k]) == 4 for k in ("mean_reward", "best_reward", "ess", "u_norm", "kl"))
    assert all(1.0 <= e <= 6.0 for e in diag["ess"]) and diag["u_norm"][-1] > 0 and diag["kl"][-1] > 0
    best = [max(r for _, r, _ in tried) for tried in result.diagnostics["tried"]]
    assert np.allclose(best, result.diagnostics["best_reward"])  # the kept response is the best of all rounds
    assert result.ledger.forward_passes > 0 and result.ledger.reward_calls >= 2 * 6 * 4


@pytest.mark.parametrize("bad, message", [({"sigma": 0.0}, "sigma"), ({"window": 0}, "window"),
                                          ({"candidates": 1}, "2 candidates"), ({"decode": "beam"}, "decode")])
def test_bad_parameters_are_refused(task, bad, message):
    with pytest.raises(ParameterError, match=message):
        sample_aisp(task, None, 1, np.random.default_rng(0), **bad)


def test_cli_aisp_with_options_and_bad_ones(tmp_path):
    ok = CliRunner().invoke(app, ["generate", "--model", "dyck", "--horizon", "6", "--reward", "dyck", "--sampler", "aisp",
                                  "--set", "candidates=4", "--set", "iterations=2", "-n", "2", "--out", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.output
    ledger = json.loads((tmp_path / "a" / "ledger.json").read_text())
    assert ledger["options"] == {"candidates": 4, "iterations": 2} and len(ledger["info"]["rounds"]["kl"]) == 2
    assert (tmp_path / "a" / "aisp_diagnostics.png").stat().st_size > 1000
    bad = CliRunner().invoke(app, ["generate", "--sampler", "aisp", "--set", "sigma=0", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "sigma" in bad.output and not (tmp_path / "b").exists()
    unknown = CliRunner().invoke(app, ["generate", "--sampler", "aisp", "--set", "temperature=2", "--out", str(tmp_path / "c")])
    assert unknown.exit_code == 2 and "no option temperature" in unknown.output and not (tmp_path / "c").exists()
