"""Prompts from a JSONL file: parsing, bad lines named by number, and every prompt run with its own fields."""

import json

import pytest

from extras import needs

from ttsample.errors import ParameterError
from ttsample.lm.prompts import Prompt, read_prompts


def test_a_prompts_file_gives_prompts_with_ids_and_fields(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a", "answer": 3}\n\n{"prompt": "b", "id": "second"}\n')
    first, second = read_prompts(path)
    assert isinstance(first, str) and first == "a" and first.id == "1" and first.fields == {"answer": 3}
    assert second == "b" and second.id == "second" and second.fields == {}
    assert Prompt("x", 7).upper() == "X"  # a str wherever a prompt is read


@pytest.mark.parametrize("text, message", [
    ('{"prompt": "a"}\n{"prompt": \n', "line 2: not JSON"),
    ('{"prompt": "a"}\n["b"]\n', 'line 2: each line is an object with a text "prompt"'),
    ('{"text": "a"}\n', 'line 1: each line is an object with a text "prompt"'),
    ("\n\n", "holds no prompt"),
    ('{"prompt": "a", "id": 1}\n{"prompt": "b", "id": "1"}\n', "repeats the id '1'"),
])
def test_bad_prompts_files_are_refused_with_the_line(tmp_path, text, message):
    path = tmp_path / "p.jsonl"
    path.write_text(text)
    with pytest.raises(ParameterError, match=message):
        read_prompts(path)


@needs("lm")
def test_generate_runs_every_prompt_and_gives_the_reward_its_fields(tmp_path):
    from typer.testing import CliRunner

    from ttsample.cli import app

    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text('{"prompt": "", "id": "round", "target": "()"}\n{"prompt": "", "id": "square", "target": "[]"}\n')
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--model", "dyck", "--horizon", "6", "--prompts", str(prompts),
                                      "--reward", "python:user_rewards:contains_target", "--sampler", "outcome-rs",
                                      "-n", "8", "--seed", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [line["prompt_id"] for line in lines] == ["round"] * 8 + ["square"] * 8
    target = {"round": "()", "square": "[]"}
    assert all(target[line["prompt_id"]] in line["text"] and line["reward"] == 1.0 for line in lines)
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["prompts"] == ledger["prompts_run"] == 2 and ledger["samples"] == 16
    assert [(r["id"], r["seed"], r["samples"]) for r in ledger["runs"]] == [("round", 4, 8), ("square", 5, 8)]
    assert ledger["reward_texts"] == sum(r["reward_texts"] for r in ledger["runs"]) > 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "("}\nnot json\n')
    refused = CliRunner().invoke(app, ["generate", "--prompts", str(bad), "--sampler", "outcome-rs",
                                       "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 2 and "line 2: not JSON" in refused.output and not (tmp_path / "refused").exists()


@needs("lm")
@pytest.mark.parametrize("sampler, options", [("best-of-n", {"candidates": 4}), ("smc", {"particles": 8})])
def test_samplers_that_batch_prompts_decode_them_together(sampler, options):
    """One prompt through the batch is exactly the plain run (samples and weights); two prompts share each model
    call, so they cost fewer forward passes than two runs."""
    import numpy as np

    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.generate import generate, generate_prompts

    lm = LanguageModel.load("subword")
    fresh = lambda: LanguageModel(lm.model, lm.tokenizer)  # noqa: E731  (an empty cache and ledger each)
    settings = dict(sampler=sampler, beta=0.1, n=3, **options)
    alone = generate(fresh(), "this license", 6, "sentiment", seed=1, **settings)
    (batch_of_one,) = generate_prompts(fresh(), ["this license"], 6, "sentiment", seed=1, **settings)
    np.testing.assert_array_equal(alone.result.samples, batch_of_one.result.samples)
    if alone.result.log_weights is not None:
        np.testing.assert_array_equal(alone.result.log_weights, batch_of_one.result.log_weights)
    assert alone.result.ledger.forward_passes == batch_of_one.result.ledger.forward_passes
    together = generate_prompts(fresh(), ["this license", "the software"], 6, "sentiment", seed=1, **settings)
    separate = [generate(fresh(), p, 6, "sentiment", seed=1 + i, **settings)
                for i, p in enumerate(["this license", "the software"])]
    assert together[0].result.ledger is together[1].result.ledger  # one batch, one ledger
    assert together[0].result.ledger.forward_passes < sum(g.result.ledger.forward_passes for g in separate)
    assert [g.task.prompt_text for g in together] == ["this license", "the software"]


@needs("lm")
def test_best_of_n_decodes_several_prompts_in_one_batch():
    """Each answer of a batch is the best of its own prompt's candidates."""
    import numpy as np

    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.generate import generate_prompts

    lm = LanguageModel.load("subword")
    fresh = lambda: LanguageModel(lm.model, lm.tokenizer)  # noqa: E731  (an empty cache and ledger each)
    options = dict(sampler="best-of-n", beta=0.1, n=3, candidates=4)
    together = generate_prompts(fresh(), ["this license", "the software"], 6, "sentiment", seed=1, **options)
    for g in together:
        best = [max(r for _, r in c) for c in g.result.diagnostics["candidates"]]
        np.testing.assert_allclose(g.rewards(), best, rtol=0, atol=1e-12)  # its own prompt's best
        assert g.task.prompt_text in ("this license", "the software")


@needs("lm")
def test_prompts_on_two_models_cannot_be_decoded_together():
    import numpy as np

    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.rewards import REWARDS
    from ttsample.lm.samplers.best_of_n import sample_best_of_n_prompts
    from ttsample.lm.samplers.smc import sample_smc_prompts
    from ttsample.lm.task import GenerationTask

    base = LanguageModel.load("dyck")
    tasks = [GenerationTask(LanguageModel(base.model, base.tokenizer), "", 4, REWARDS["dyck"]) for _ in range(2)]
    for sample in (sample_best_of_n_prompts, sample_smc_prompts):
        with pytest.raises(ParameterError, match="must share one model"):
            sample(tasks, 2, np.random.default_rng(0))
