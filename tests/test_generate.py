"""``ttsample generate``: every sampler on the embedded models and on a saved model folder; bad input exits 2."""

import json

import numpy as np
import pytest

from extras import require

require("lm")

from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.lm import rewards
from ttsample.lm.backend import LanguageModel
from ttsample.registry import names

SAMPLER_NAMES = names("generation")


def run(args, tmp_path, name="out"):
    out = tmp_path / name
    result = CliRunner().invoke(app, ["generate", *args, "--out", str(out)])
    return result, out


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
def test_every_sampler_writes_samples_and_ledger(tmp_path, sampler):
    args = ["--model", "dyck", "--horizon", "4", "--reward", "dyck", "--sampler", sampler, "--values", "exact",
            "--rho", "1.5", "-n", "6", "--seed", "1"]
    result, out = run(args, tmp_path)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and all({"text", "tokens", "reward"} <= set(line) for line in lines)
    assert ("log_weight" in lines[0]) == sampler.endswith("smc")
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["sampler"] == sampler and ledger["forward_passes"] > 0 and ledger["seconds"] > 0
    if sampler in ("vgb", "outcome-rs", "mh"):  # exact samplers of the constraint: every sample satisfies it
        assert all(line["reward"] == 1.0 for line in lines)
    again, out2 = run(args, tmp_path, "again")
    assert (out2 / "samples.jsonl").read_text() == (out / "samples.jsonl").read_text()  # seeded


@pytest.mark.parametrize("sampler", SAMPLER_NAMES)
@pytest.mark.parametrize("model, prompt", [("text", "the "), ("subword", "this license")])
def test_every_sampler_on_the_text_and_subword_models(tmp_path, model, prompt, sampler):
    extra = ["--set", "particles=64"] if sampler.endswith("smc") else []  # 4 particles can all break the constraint
    result, out = run(["--model", model, "--prompt", prompt, "--horizon", "5", "--reward", "no-e", "--sampler", sampler,
                       "--values", "heuristic", "-n", "4", *extra], tmp_path)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 4
    if sampler in ("vgb", "outcome-rs", "mh"):  # exact for the constraint
        assert all("e" not in line["text"] for line in lines)



@pytest.mark.parametrize("reward", list(rewards.REWARDS))
def test_outcome_rs_tilts_every_built_in_reward_without_a_hand_given_bound(tmp_path, reward):
    result, out = run(["--model", "dyck", "--horizon", "4", "--reward", reward, "--beta", "0.7", "--sampler",
                       "outcome-rs", "-n", "20", "--seed", "11"], tmp_path)
    assert result.exit_code == 0, result.output
    assert len((out / "samples.jsonl").read_text().splitlines()) == 20


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, as strict parsers (JavaScript's, jq's) do."""
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")
    return json.loads(text, parse_constant=refuse)


def test_weighted_particles_are_marked_and_written_as_strict_json(tmp_path):
    """Plain SMC's particles are a weighted set: once written like draws (9 of 10 breaking the constraint) with
    log-weights of -Infinity. Each line now carries its weight, the ledger and the table say it is weighted."""
    result, out = run(["--sampler", "smc", "-n", "10", "--seed", "0"], tmp_path)
    assert result.exit_code == 0, result.output
    lines = [strict_json(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    ledger = strict_json((out / "ledger.json").read_text())
    assert ledger["weighted"] is True and "weighted set of particles, not draws" in result.output
    weights = np.array([line["weight"] for line in lines])
    assert np.isclose(weights.sum(), 1.0) and all((line["log_weight"] is None) == (line["weight"] == 0) for line in lines)
    assert all(rewards.dyck_valid(line["text"]) for line in lines if line["weight"] > 0)  # weight only on valid words
    assert any(line["log_weight"] is None for line in lines)  # the case that was written as -Infinity
    drawn, out2 = run(["--sampler", "outcome-rs", "-n", "3"], tmp_path, "drawn")
    assert strict_json((out2 / "ledger.json").read_text())["weighted"] is False
    assert "weight" not in strict_json((out2 / "samples.jsonl").read_text().splitlines()[0])


def test_a_model_folder_saved_with_save_pretrained(tmp_path):
    lm = LanguageModel.load("subword")
    lm.model.save_pretrained(tmp_path / "mine")
    lm.tokenizer.hf.save_pretrained(tmp_path / "mine")
    result, out = run(["--model", str(tmp_path / "mine"), "--prompt", "this", "--horizon", "4", "--reward", "length",
                       "--beta", "2", "--sampler", "best-of-n", "-n", "3"], tmp_path)
    assert result.exit_code == 0, result.output
    assert len((out / "samples.jsonl").read_text().splitlines()) == 3


@pytest.mark.parametrize("args, message", [
    (["--sampler", "magic"], "unknown sampler"),
    (["--sampler", "vgb", "--reward", "magic"], "unknown reward"),
    (["--sampler", "vgb", "--values", "magic"], "unknown values"),
    (["--sampler", "vgb", "--model", "subword", "--values", "exact", "--horizon", "3"], "too many"),
    (["--sampler", "vgb", "--horizon", "40"], "context"),
    (["--sampler", "vgb", "--rho", "0.5"], "rho"),
    (["--sampler", "outcome-rs", "--beta", "inf"], "beta must be a finite number"),
    (["--sampler", "smc", "-n", "2", "--horizon", "8", "--seed", "3"], "every one of the 2 particles ended with weight zero"),
    (["--sampler", "vgb", "--set", "max_queries=10"], "--max-queries N instead of --set max_queries=N"),
    (["--sampler", "vgb", "--set", "seed=3"], "--seed N instead of --set seed=N"),  # once a TypeError
    (["--sampler", "smc", "--max-queries", "10"], "asks no value queries"),
    (["--sampler", "vgb", "--max-seconds", "0"], "max_seconds must be a finite number > 0"),
    (["--sampler", "action-rs", "--model", "subword", "--prompt", "this", "--horizon", "3", "--reward", "length",
      "--beta", "1"], "--set max_log_value"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, message):
    result, out = run(args, tmp_path)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not out.exists()


def test_a_reward_that_raises_exits_2_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setitem(rewards.REWARDS, "broken", lambda text: 1 / 0)
    result, out = run(["--sampler", "best-of-n", "--reward", "broken", "-n", "2"], tmp_path)
    assert result.exit_code == 2 and "raised ZeroDivisionError" in result.output
    assert not out.exists()


def test_lm_exact_writes_pi_star_jsonl(tmp_path):
    result = CliRunner().invoke(app, ["lm-exact", "--horizon", "4", "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (tmp_path / "e" / "pi_star.jsonl").read_text().splitlines()]
    assert np.isclose(sum(line["p"] for line in lines), 1.0) and all(rewards.dyck_valid(line["text"]) for line in lines)
    assert lines[0]["p"] >= lines[-1]["p"]


def test_an_unknown_backend_is_refused_before_anything_loads(tmp_path):
    result, out = run(["--model", "dyck", "--sampler", "vgb", "--backend", "onnx"], tmp_path)
    assert result.exit_code == 2 and "unknown backend 'onnx'" in result.output and not out.exists()


@pytest.mark.skipif(__import__("importlib.util").util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_the_vllm_backend_without_vllm_says_how_to_get_it(tmp_path):
    result, out = run(["--model", "dyck", "--sampler", "vgb", "--backend", "vllm"], tmp_path)
    assert result.exit_code == 2 and "make .venv-vllm/.installed" in result.output and not out.exists()
