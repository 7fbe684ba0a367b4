"""Runs ended early: --max-seconds, --max-queries and Ctrl-C keep the samples completed, marked partial.

A partial run must be the start of the full run with the same seed (its
samples are the first draws, not those that came fastest), so each test
compares the two. Ctrl-C is simulated by a progress callback that raises
KeyboardInterrupt, which is where a real one lands as often as anywhere.
VGB keeps whole rounds of chains, and a round holds about n / (leaf rate)
chains, so the VGB tests cap a round at 16 chains to have several.
"""

import dataclasses
import functools
import json

import numpy as np
import pytest

from extras import require

require("lm")

from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.lm.generate import generate
from ttsample.registry import REGISTRY
from ttsample.lm.samplers import best_of_n, outcome_rs
from ttsample.samplers import chains
from ttsample.lm.samplers.base import Interrupted

DYCK = dict(model="dyck", prompt="", horizon=6, reward="dyck", values="exact", seed=3)


def ctrl_c_once(done_at: float):
    """A progress callback that presses Ctrl-C the first time ``done`` reaches ``done_at`` samples."""

    def progress(done, total):
        if done >= done_at:
            raise KeyboardInterrupt

    return progress


@pytest.fixture
def small_rounds(monkeypatch):
    """Several batches of outcome-rs and rounds of VGB, so that a run has a middle to stop in."""
    monkeypatch.setattr(outcome_rs, "MAX_BATCH", 8)
    monkeypatch.setattr(chains, "MAX_CHAINS", 16)


@pytest.mark.parametrize("sampler, options", [("outcome-rs", {}), ("vgb", {})])
def test_ctrl_c_keeps_the_first_draws_of_the_full_run(small_rounds, sampler, options):
    full = generate(**DYCK, sampler=sampler, n=40, **options)
    with pytest.raises(Interrupted) as caught:
        generate(**DYCK, sampler=sampler, n=40, progress=ctrl_c_once(20), **options)
    partial = caught.value.partial
    k = partial.result.samples.size
    assert partial.partial and partial.result.stopped == "interrupted"
    assert 0 < k < 40
    np.testing.assert_array_equal(partial.result.samples, full.result.samples[:k])
    assert partial.result.ledger.forward_passes > 0 and partial.result.ledger.seconds > 0
    assert f"with {k} of the 40 samples asked" in partial.stop_message()


def test_best_of_n_keeps_the_batches_it_completed(monkeypatch):
    monkeypatch.setattr(best_of_n, "MAX_BATCH", 8)  # 2 outputs of 4 candidates per batch
    full = generate(**DYCK, sampler="best-of-n", n=10, candidates=4)
    with pytest.raises(Interrupted) as caught:
        generate(**DYCK, sampler="best-of-n", n=10, candidates=4, progress=ctrl_c_once(6))
    result = caught.value.partial.result
    assert result.samples.size == 6 and len(result.diagnostics["candidates"]) == 6
    np.testing.assert_array_equal(result.samples, full.result.samples[:6])
    assert result.ledger.tries == 24


def test_aisp_keeps_the_best_of_the_rounds_it_completed():
    settings = dict(model="subword", prompt="this license", horizon=4, reward="length", beta=1.0, seed=0,
                    sampler="aisp", n=3, candidates=4, window=2)
    two_rounds = generate(**settings, iterations=2)
    with pytest.raises(Interrupted) as caught:
        generate(**settings, iterations=4, progress=ctrl_c_once(3 * 2 / 4))  # after the second of four rounds
    result = caught.value.partial.result
    assert result.diagnostics["iterations_done"] == 2
    np.testing.assert_array_equal(result.samples, two_rounds.result.samples)


def test_ctrl_c_inside_an_aisp_round_keeps_only_the_rounds_completed():
    """Two prompts; Ctrl-C from the second prompt's reward in the third of four rounds (where progress never
    looks), after the first prompt's chains took that round's update: every prompt's samples, diagnostics, tried
    candidates and U are those of the two completed rounds, as a two-round run's."""
    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.rewards import length_reward
    from ttsample.lm.samplers.aisp import sample_aisp_prompts
    from ttsample.lm.task import GenerationTask

    lm = LanguageModel.load("subword")
    settings = dict(candidates=4, window=2)
    calls = {"n": 0}

    def pressed_in_round_three(text):
        calls["n"] += 1
        if calls["n"] > 2 * 3 * 4:  # 3 chains x 4 candidates per round: its first reward of round 3
            raise KeyboardInterrupt
        return length_reward(text)

    def tasks(second_reward):
        return [GenerationTask(lm, "this license", 4, length_reward, beta=1.0),
                GenerationTask(lm, "the software", 4, second_reward, beta=1.0)]

    two = sample_aisp_prompts(tasks(length_reward), 3, np.random.default_rng(0), iterations=2, **settings)
    with pytest.raises(Interrupted) as caught:
        sample_aisp_prompts(tasks(pressed_in_round_three), 3, np.random.default_rng(0), iterations=4, **settings)
    for result, reference in zip(caught.value.partial, two):
        assert result.diagnostics["iterations_done"] == 2 and result.stopped == "interrupted"
        np.testing.assert_array_equal(result.samples, reference.samples)
        assert all(len(trace) == 2 for trace in result.diagnostics["rounds"].values())
        assert all(len(chain) == 2 * 4 for chain in result.diagnostics["tried"])
        np.testing.assert_array_equal(result.diagnostics["u"], reference.diagnostics["u"])


@pytest.mark.parametrize("sampler", ["smc", "twisted-smc", "mh", "action-rs"])
def test_samplers_without_a_partial_answer_return_none(sampler):
    """SMC's particles, MH's chains and ActionLevelRS's descents are all unfinished until the end: no sample."""
    with pytest.raises(Interrupted) as caught:
        generate(**DYCK, sampler=sampler, n=8, progress=ctrl_c_once(1e-9))
    assert caught.value.partial.result.samples.size == 0
    assert "no sample was complete" in caught.value.partial.stop_message()


def test_max_queries_ends_vgb_with_the_start_of_the_full_run(small_rounds):
    full = generate(**DYCK, sampler="vgb", n=200)
    stopped = generate(**DYCK, sampler="vgb", n=200, max_queries=full.result.ledger.queries_total / 4)
    k = stopped.result.samples.size
    assert stopped.result.stopped == "max_queries" and 0 < k < 200
    assert stopped.result.ledger.queries_total >= full.result.ledger.queries_total / 4
    np.testing.assert_array_equal(stopped.result.samples, full.result.samples[:k])
    assert "queries" in stopped.stop_message() and "at this rate all of it would take about" in stopped.stop_message()


def test_a_budget_never_reached_changes_nothing():
    full = generate(**DYCK, sampler="vgb", n=30)
    roomy = generate(**DYCK, sampler="vgb", n=30, max_queries=1e12, max_seconds=1e6)
    assert roomy.result.stopped is None and roomy.stop_message() is None
    np.testing.assert_array_equal(roomy.result.samples, full.result.samples)


def test_max_seconds_stops_at_the_first_check():
    """A budget of a nanosecond is over by the first progress point: the samples of the first batch are kept."""
    full = generate(**DYCK, sampler="outcome-rs", n=500)
    stopped = generate(**DYCK, sampler="outcome-rs", n=500, max_seconds=1e-9)
    k = stopped.result.samples.size
    assert stopped.result.stopped == "max_seconds" and k < 500
    np.testing.assert_array_equal(stopped.result.samples, full.result.samples[:k])
    assert "time budget, max_seconds = 1e-09" in stopped.stop_message()


def run(args, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", *args, "--out", str(out)])
    return result, out


def read(out):
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    return lines, json.loads((out / "ledger.json").read_text())


def test_cli_max_queries_writes_the_partial_run_and_exits_0(tmp_path, small_rounds):
    result, out = run(["--sampler", "vgb", "--horizon", "6", "--values", "exact", "-n", "200", "--seed", "3",
                       "--max-queries", "200000"], tmp_path)
    assert result.exit_code == 0, result.output
    lines, ledger = read(out)
    assert ledger["partial"] and ledger["stopped"] == "max_queries" and ledger["max_queries"] == 200000
    assert 0 < ledger["samples"] == len(lines) < 200 and all(line["reward"] == 1.0 for line in lines)
    assert f"with {len(lines)} of the 200 samples asked" in result.output
    assert f"(partial: {len(lines)} of 200)" in result.output


@pytest.mark.parametrize("sampler, done_at, some", [("outcome-rs", 20, True), ("smc", 1e-9, False)])
def test_cli_ctrl_c_writes_what_it_has_and_exits_130(tmp_path, monkeypatch, small_rounds, sampler, done_at, some):
    real = REGISTRY[sampler]

    @functools.wraps(real.sample)
    def pressed(*args, progress=None, **kwargs):
        return real.sample(*args, progress=ctrl_c_once(done_at), **kwargs)

    monkeypatch.setitem(REGISTRY, sampler, dataclasses.replace(real, sample=pressed))
    result, out = run(["--sampler", sampler, "--horizon", "6", "-n", "40", "--seed", "3"], tmp_path)
    assert result.exit_code == 130, result.output
    lines, ledger = read(out)
    assert ledger["partial"] and ledger["stopped"] == "interrupted" and ledger["samples"] == len(lines)
    assert (0 < len(lines) < 40) if some else not lines
    assert "interrupted (Ctrl-C)" in result.output


def test_ctrl_c_while_the_values_are_set_up_is_a_plain_interrupt(monkeypatch):
    """Nothing is drawn before the values exist: no Interrupted (whose partial would be the pilot's result)."""
    from ttsample.lm.samplers import smc

    def pressed(*args, **kwargs):
        raise Interrupted(None)

    monkeypatch.setattr(smc, "sample_smc", pressed)  # the calibrated values' pilot
    with pytest.raises(KeyboardInterrupt) as caught:
        generate(**{**DYCK, "values": "calibrated"}, sampler="vgb", n=5)
    assert not isinstance(caught.value, Interrupted)
