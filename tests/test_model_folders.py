"""A user's model folder: GPT-2, Llama, Qwen2 and Mistral configurations at random initialisation, saved with a
tokenizer that carries a chat template, through ``ttsample generate`` with every sampler."""

import json

import pytest

from extras import require

require("lm")

import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from ttsample.cli import app  # noqa: E402
from user_models import model_folder, tiny_classifier  # noqa: E402
from ttsample.lm.backend import LanguageModel  # noqa: E402
from ttsample.registry import REGISTRY, names  # noqa: E402


@pytest.fixture(scope="module", params=["gpt2", "llama", "qwen2", "mistral"])
def folder(request, tmp_path_factory):
    return model_folder(request.param, tmp_path_factory.mktemp(request.param))


def test_the_folder_loads_with_its_chat_template_and_dtype(folder):
    lm = LanguageModel.load(str(folder), dtype="bfloat16")
    assert lm.model.dtype == torch.bfloat16 and lm.node_bytes > 0
    assert LanguageModel.load(str(folder)).node_bytes > lm.node_bytes  # the cache counts the dtype's bytes


@pytest.mark.parametrize("sampler", names("generation"))
def test_every_sampler_runs_on_the_folder(folder, sampler, tmp_path):
    options = {"aisp": ["--set", "iterations=2", "--set", "candidates=2"],
               "smc": ["--set", "particles=32"], "twisted-smc": ["--set", "particles=32"]}.get(sampler, [])  # SMC: enough
    # particles that one avoids e (a random model writes e in most tokens)
    result = CliRunner().invoke(app, ["generate", "--model", str(folder), "--prompt", "the software", "--horizon", "3",
                                      "--reward", "no-e", "--sampler", sampler, "--values", "heuristic", "-n", "3",
                                      "--seed", "0", *options, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    lines = (tmp_path / "out" / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    if not REGISTRY[sampler].maximiser:  # a sampler of pi* returns only responses without an e (or weight 0)
        assert samples and all("e" not in s["text"].lower() or s.get("weight") == 0 for s in samples)
    ledger = json.loads((tmp_path / "out" / "ledger.json").read_text())
    assert ledger["forward_passes"] > 0 and ledger["tokens"] > 0


def test_chat_lays_the_prompt_out_by_the_template_and_the_reward_gets_the_prompt_as_given(folder, tmp_path):
    from ttsample.lm.generate import generate
    from ttsample.lm.rewards import batched

    seen = []

    @batched
    def spy(prompts, responses):
        seen.extend(prompts)
        return [1.0] * len(responses)

    run = generate(str(folder), "the software", 3, spy, sampler="best-of-n", beta=1.0, chat=True, system="be brief",
                   n=2, seed=0, candidates=2)
    tokenizer = run.task.lm.tokenizer
    laid_out = tokenizer.decode(run.task.prompt)
    assert laid_out == "<|system|>be brief\n<|user|>the software\n"  # the template of the fixture, system first
    assert set(seen) == {"the software"}  # the user's text, not the template
    result = CliRunner().invoke(app, ["generate", "--model", "dyck", "--chat", "--sampler", "outcome-rs",
                                      "--out", str(tmp_path / "no-template")])
    assert result.exit_code == 2 and "no chat template" in result.output and not (tmp_path / "no-template").exists()
    result = CliRunner().invoke(app, ["generate", "--model", str(folder), "--system", "x", "--sampler", "outcome-rs",
                                      "--out", str(tmp_path / "system-alone")])
    assert result.exit_code == 2 and "give chat=True (--chat)" in result.output


def test_a_users_model_prompts_chat_reward_model_and_values_end_to_end(tmp_path):
    """The issue's two commands on folders made here: a chat model, a prompts file, a reward-model folder with
    best-of-n; the same model with VGB and a Python value function."""
    folder = model_folder("llama", tmp_path / "policy")
    rm = tiny_classifier(tmp_path / "rm", labels=1)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "the software", "id": "a"}\n{"prompt": "this license", "id": "b"}\n')
    values = tmp_path / "values.py"
    values.write_text("def no_e_so_far(prefix):\n    return 1.0 if 'e' not in prefix.lower() else 1e-3\n")
    runs = {
        "best-of-n": ["--reward", f"hf:{rm}", "--beta", "1", "--sampler", "best-of-n", "--set", "candidates=4"],
        "vgb": ["--reward", "no-e", "--sampler", "vgb", "--values", f"{values}:no_e_so_far"],
    }
    for name, args in runs.items():
        out = tmp_path / name
        result = CliRunner().invoke(app, ["generate", "--model", str(folder), "--prompts", str(prompts), "--chat",
                                          "--horizon", "3", "-n", "2", "--seed", "0", *args, "--out", str(out)])
        assert result.exit_code == 0, result.output
        lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
        assert [line["prompt_id"] for line in lines] == ["a", "a", "b", "b"]
        ledger = json.loads((out / "ledger.json").read_text())
        assert ledger["chat"] and ledger["prompts_run"] == 2 and ledger["reward_texts"] > 0
        if name == "vgb":
            assert all("e" not in line["text"].lower() for line in lines)  # a sampler of pi*: the constraint holds


def test_a_folder_that_is_not_a_model_or_has_no_tokenizer_exits_2_and_writes_nothing(tmp_path):
    import shutil

    folder = model_folder("gpt2", tmp_path / "gpt2")
    empty = tmp_path / "empty"
    empty.mkdir()
    no_tokenizer = tmp_path / "weights-only"
    shutil.copytree(folder, no_tokenizer, ignore=shutil.ignore_patterns("tokenizer*", "special_tokens*", "vocab*",
                                                                           "merges*", "chat_template*"))
    for model, message in ((empty, "cannot read a model config"), (no_tokenizer, "no tokenizer beside the model"),
                           (tmp_path / "nowhere", "does not exist")):
        out = tmp_path / f"out-{model.name}"
        result = CliRunner().invoke(app, ["generate", "--model", str(model), "--sampler", "outcome-rs",
                                          "--out", str(out)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert not out.exists()
