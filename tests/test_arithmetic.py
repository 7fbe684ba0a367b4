"""The arithmetic reasoning task: problems, the verifier, the embedded policy and PRM, the support of a truncated law,
and the `reasoning` reproduction's spec."""

import hashlib
import json

import numpy as np
import pytest

from extras import require

require("lm")

from ttsample.errors import ParameterError, TreeShapeError
from ttsample.experiments.reproductions import get_reproduction
from ttsample.experiments.spec import parse_spec
from ttsample.lm import arithmetic
from ttsample.lm.arithmetic import Problem, problems, solution, verify
from ttsample.lm.backend import LanguageModel
from ttsample.lm.decoding import Decoding
from ttsample.lm.exact import ExactLaw
from ttsample.lm.loading import EMBEDDED
from ttsample.lm.prm import EMBEDDED_PRMS, PRMReading, ProcessRewardValues
from ttsample.lm.rewards import REWARDS
from ttsample.lm.steps import Steps
from ttsample.lm.task import GenerationTask
from ttsample.lm.tiny import train_tiny


def test_a_solution_is_one_line_per_step_its_step_labels_say_every_step_so_far_is_right_its_answer_label_the_verdict():
    problem = Problem((7, 5, 8))
    text, labels = solution(problem, np.random.default_rng(0), step_error=0.0)
    assert text == "7+5=12\n12+8=20\nanswer 20" and labels == [True, True, True]
    rng = np.random.default_rng(1)
    for _ in range(200):
        text, labels = solution(problem, rng, step_error=0.5)
        lines = text.split("\n")
        assert len(lines) == len(labels) == problem.steps + 1 and len(text) <= problem.horizon()
        steps = labels[:-1]
        assert steps == sorted(steps, reverse=True)  # once a step is wrong, every later prefix is
        assert labels[-1] == (verify([problem.prompt], [text]) == [1.0])  # slips that cancel give a right answer


def test_the_verifier_reads_the_last_answer_line_against_the_prompt_s_sum():
    prompts = ["7+5+8="] * 5
    responses = ["7+5=12\n12+8=20\nanswer 20", "7+5=12\n12+8=21\nanswer 21", "answer 20", "answer 20\nmore",
                 "garbage"]
    assert verify(prompts, responses) == [1.0, 0.0, 1.0, 0.0, 0.0]
    assert REWARDS["arithmetic"].batched and REWARDS["arithmetic"].score(prompts[:1], responses[:1]) == [1.0]
    with pytest.raises(ValueError, match="7\\+5\\+8="):
        verify(["what is seven plus five?"], ["answer 12"])


def test_held_out_problems_are_never_trained_on_and_the_reproduction_evaluates_on_them():
    for steps in arithmetic.DIFFICULTIES:
        held, trained = problems(steps, 40, 3, held_out=True), problems(steps, 40, 3, held_out=False)
        assert len(set(held)) == len(held) and all(p.steps == steps for p in held)
        assert all(p.held_out for p in held) and not any(p.held_out for p in trained)
    prompts = [p for spec in (get_reproduction("reasoning").spec(quick=q) for q in (False, True))
               for task in spec.lm_tasks if task["model"] == "arithmetic" for p in task["prompts"]]
    assert prompts and all(arithmetic.problem_of(p).held_out for p in prompts)


def test_train_tiny_arithmetic_and_its_prm_are_reproducible(tmp_path, monkeypatch):
    from ttsample.lm import tiny

    monkeypatch.setitem(tiny.ARITHMETIC, "solutions", 300)  # the recipe, on a small corpus and evaluation
    monkeypatch.setitem(tiny.ARITHMETIC, "eval_problems", 4)
    for task in ["arithmetic", "arithmetic-prm"]:
        a = train_tiny(task, tmp_path / f"{task}-a", steps=3, seed=2)
        b = train_tiny(task, tmp_path / f"{task}-b", steps=3, seed=2)
        weights = (tmp_path / f"{task}-a" / "model.safetensors").read_bytes()
        assert a["sha256"] == b["sha256"] == hashlib.sha256(weights).hexdigest()
    lm = LanguageModel.load(tmp_path / "arithmetic-a")
    assert lm.vocab_size == len(arithmetic.SYMBOLS)


def test_the_shipped_prm_matches_its_record_and_scores_a_right_step_above_a_slip():
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = EMBEDDED_PRMS["arithmetic-prm"]
    record = json.loads((folder / "training.json").read_text())
    assert hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest() == record["sha256"]
    assert "train-tiny --task arithmetic-prm" in record["command"]
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
    tag = PRMReading().tag
    plus_minus = tokenizer.convert_tokens_to_ids(["+", "-"])

    def good(text):  # P(+) against P(-) at the tag, as ProcessRewardValues reads a causal PRM
        ids = tokenizer.encode(text, add_special_tokens=False)
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0, ids.index(tokenizer.convert_tokens_to_ids(tag))]
        return float(torch.softmax(logits[plus_minus], 0)[0])

    # its held-out step accuracy is in its record (0.73, where calling every step good scores 0.62): it sees slips
    # that change a result's number of digits or its tens, and not the slips of one or two (docs/lm.md)
    assert good(f"7+5+8=7+5=12{tag}\n") > 0.5 > good(f"7+5+8=7+5=2{tag}\n")
    task = GenerationTask(LanguageModel.load("arithmetic"), "7+5+8=", Problem((7, 5, 8)).horizon(),
                          REWARDS["arithmetic"], step_rule=Steps(("\n",), max_step_tokens=arithmetic.MAX_STEP_TOKENS))
    assert ProcessRewardValues(task, "arithmetic-prm").tokenizer.convert_tokens_to_ids(tag) == len(tokenizer) - 1


def small_dyck(decoding, horizon=6):
    return GenerationTask(LanguageModel.load("dyck"), "", horizon, REWARDS["dyck"], decoding=decoding)


def test_a_truncated_law_is_enumerated_over_its_support_only_and_equals_the_full_enumeration():
    decoding = Decoding(top_k=2)
    support = ExactLaw(small_dyck(decoding))
    full_task = small_dyck(decoding)
    full_task.token_tree.grow_all(1 << 20)  # every node, pi_ref zero off the kept tokens
    full = ExactLaw(full_task)
    assert support.task.tree.num_nodes < full_task.tree.num_nodes
    kept = {tokens for tokens, i in full.index.items() if full.log_pi[i] > -np.inf}
    assert set(support.index) == kept  # the responses the decoding can give, and no other
    np.testing.assert_allclose([support.pi_star[support.index[t]] for t in kept],
                               [full.pi_star[full.index[t]] for t in kept], rtol=1e-9, atol=1e-300)
    assert np.isclose(support.log_z, full.log_z, rtol=1e-9)
    with pytest.raises(TreeShapeError, match="top_k or top_p"):
        ExactLaw(small_dyck(Decoding(top_k=4), horizon=12), max_nodes=1000)


def test_a_spec_s_step_and_decoding_tables_reach_the_task_and_its_key():
    from ttsample.experiments.lm_runs import task_settings

    table = {"name": "t", "model": "dyck", "horizon": 4, "reward": "dyck", "samplers": ["vgb"], "values": ["exact"]}
    plain = parse_spec({"name": "s", "lm_tasks": [table]}).runs()[0]
    stepped = parse_spec({"name": "s", "lm_tasks": [table | {"steps": {"delimiters": [")"], "max_step_tokens": 3},
                                                             "decoding": {"top_p": 0.9}}]}).runs()[0]
    settings = task_settings(stepped)
    assert settings["step_rule"] == Steps((")",), max_step_tokens=3) and settings["decoding"] == Decoding(top_p=0.9)
    assert task_settings(plain) == {"step_rule": None, "decoding": None}
    assert plain.key != stepped.key and plain.key + "|steps=" in stepped.key  # old keys are unchanged
    for bad, message in [({"steps": {"delimiters": [")"], "max_step_tokens": 0}}, "max_step_tokens"),
                         ({"decoding": {"top_p": 1.5}}, "top_p"), ({"steps": {"delimiter": ")"}}, "steps")]:
        with pytest.raises(ParameterError, match=message):
            parse_spec({"name": "s", "lm_tasks": [table | bad]})


def test_reproduce_reasoning_quick_end_to_end(tmp_path):
    from typer.testing import CliRunner

    from ttsample.cli import app

    out = tmp_path / "reasoning"
    result = CliRunner().invoke(app, ["reproduce", "reasoning", "--quick", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert {v["verdict"] for v in summary["expectations"]} <= {"confirmed", "refuted", "inconclusive", "not measured"}
    measured = {v["claim"] for v in summary["expectations"] if v["verdict"] != "not measured"}
    assert any(c.startswith("step-level VGB with exact V*") for c in measured)
    points = {(p["lm_task"], p["sampler"]) for p in summary["lm_points"]}
    assert {("arithmetic, 2 steps", "vgb"), ("arithmetic, 2 steps", "beam-search"),
            ("dyck steps, exact", "action-rs")} <= points
    vgb = [p for p in summary["lm_points"] if p["lm_task"] == "arithmetic, 2 steps" and p["sampler"] == "vgb"]
    assert vgb[0]["accuracy"]["mean"] == 1.0  # a sampler of pi* under a verifier outputs verified answers only
    report = (out / "report.md").read_text()
    assert "## Accuracy against compute" in report and "### arithmetic, 2 steps" in report


SEARCHES = 200


def test_beam_search_with_v_star_solves_a_problem_and_with_a_shuffled_prm_does_no_better_than_plain_sampling():
    """On the held-out '2+6+9=' under top-p 0.97, where pi_ref is right with probability Z (exact, by enumeration):
    200 beam searches with V* as the PRM end right at least 99% of the time, and with a shuffled PRM (a uniform
    score per node) no more often than plain sampling: at most Z + 3.3 standard deviations of 200 draws, a false
    alarm of 5e-4 were its accuracy Z. The perfect PRM is the twin that this bound catches (Z is far below 0.99)."""
    from test_search import Shuffled

    from ttsample.lm.oracle import LMOracle
    from ttsample.lm.samplers.search import sample_beam_search
    from ttsample.lm.values import ExactValues

    problem = arithmetic.problem_of("2+6+9=")
    assert problem.held_out
    task = GenerationTask(LanguageModel.load("arithmetic"), problem.prompt, problem.horizon(), REWARDS["arithmetic"],
                          step_rule=Steps(("\n",), max_step_tokens=arithmetic.MAX_STEP_TOKENS, max_steps=3),
                          decoding=Decoding(top_p=0.97))
    z = float(np.exp(ExactLaw(task).log_z))
    bound = z + 3.3 * np.sqrt(z * (1 - z) / SEARCHES)
    assert 0.2 < z and bound < 0.99

    def accuracy(values):
        result = sample_beam_search(task, LMOracle(task, values), SEARCHES, np.random.default_rng(0))
        return float(np.mean(task.rewards(result.samples)))

    assert accuracy(ExactValues(task)) >= 0.99
    assert accuracy(Shuffled(task)) <= bound
