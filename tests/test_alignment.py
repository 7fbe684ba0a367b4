"""The alignment reproduction: several prompts per task, paired comparisons, batched AISP over prompts,
heuristic values on a tilt, and `reproduce alignment --quick` end to end."""

import json
import math
import tomllib

import numpy as np
import pytest

from extras import require

require("lm")

import torch
from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.errors import ParameterError
from ttsample.eval.alignment import budget, method
from ttsample.eval.scaling import Pairing, paired_points
from ttsample.experiments.reproductions import ALIGNMENT_EXPECTATIONS
from ttsample.experiments.spec import parse_spec
from ttsample.lm.backend import LanguageModel
from ttsample.lm.rewards import lexicon_sentiment
from ttsample.lm.samplers.aisp import sample_aisp, sample_aisp_prompts
from ttsample.lm.task import GenerationTask, sample_suffixes
from ttsample.lm.values import HeuristicValues

SPEC = """
name = "prompts"
seeds = 2
samples = 4

[[lm_tasks]]
name = "s"
model = "subword"
prompts = ["this license", "the software", "you may"]
horizon = 4
reward = "sentiment"
beta = 0.1
samplers = ["best-of-n", "aisp"]
"""


@pytest.fixture(scope="module")
def lm():
    torch.set_num_threads(1)
    return LanguageModel.load("subword")


def test_prompts_expand_like_seeds_and_bad_lists_are_refused():
    tasks = parse_spec(tomllib.loads(SPEC)).runs()
    assert len(tasks) == 2 * 3 * 2  # samplers x prompts x seeds
    assert {t.prompt for t in tasks} == {"this license", "the software", "you may"}
    assert len({t.key for t in tasks}) == len(tasks)
    for bad, message in (({"prompt": "x"}, "not both"), ({"prompts": []}, "non-empty"),
                         ({"prompts": ["a", "a"]}, "distinct"), ({"prompts": "a"}, "list")):
        data = tomllib.loads(SPEC)
        data["lm_tasks"][0].update(bad)
        with pytest.raises(ParameterError, match=message):
            parse_spec(data)


def _row(sampler, options, prompt, seed, reward, base=0.0):
    return {"kind": "lm", "status": "ok", "delivered": 4, "lm_task": "t", "sampler": sampler,
            "options": json.dumps(options), "prompt": prompt, "seed": seed, "mean_reward": reward,
            "base_reward": base, "responses": options.get("candidates", 1) * options.get("iterations", 1)}


def _verdicts(offset: float, noise: float = 0.01) -> list[str]:
    """AISP = best-of-n + offset (+ seeded noise) on 3 prompts x 3 seeds, best-of-n gaining 0.2 over the base."""
    rng = np.random.default_rng(0)
    rows = []
    for prompt in ("a", "b", "c"):
        for seed in range(3):
            bon = 0.2 + 0.05 * rng.standard_normal()
            rows.append(_row("best-of-n", {"candidates": 16}, prompt, seed, bon))
            rows.append(_row("aisp", {"candidates": 4, "iterations": 4}, prompt, seed,
                             bon + offset + noise * rng.standard_normal()))
    pairing = Pairing("aisp - best-of-n", lambda r: method(r) == "aisp", lambda r: method(r) == "best-of-n",
                      "mean_reward", budget)
    (point,) = paired_points(rows, [pairing])
    assert point["pairs"] == 9 and point["match"] == 16 and math.isclose(point["b_reward_gain"], np.mean(
        [r["mean_reward"] for r in rows if r["sampler"] == "best-of-n"]))
    claim = ALIGNMENT_EXPECTATIONS[0]
    assert claim.applies(point)
    return claim.verdict(point)["verdict"]


def test_the_paired_claim_confirms_a_better_aligner_and_refutes_a_worse_one():
    # the band starts at a quarter of best-of-n's gain (0.05): +0.1 is inside, -0.1 wholly outside
    assert _verdicts(+0.1) == "confirmed"
    assert _verdicts(-0.1) == "refuted"
    assert _verdicts(0.0) == "refuted"  # no difference is told apart from the claim's margin


def test_pairs_need_both_sides_and_equal_budgets():
    rows = [_row("aisp", {"candidates": 4, "iterations": 4}, "a", 0, 0.3),
            _row("best-of-n", {"candidates": 4}, "a", 0, 0.1)]  # budgets 16 and 4: no pair
    pairing = Pairing("x", lambda r: r["sampler"] == "aisp", lambda r: r["sampler"] == "best-of-n", "mean_reward",
                      budget)
    assert paired_points(rows, [pairing]) == []
    rows.append(_row("best-of-n", {"candidates": 16}, "a", 0, 0.2) | {"status": "error", "delivered": 0})
    (point,) = paired_points(rows, [pairing])  # set up but failed: reported with no pairs
    assert point["pairs"] == 0 and point["mean_reward_difference"]["mean"] is None


def test_heuristic_values_on_a_tilt_are_alpha_powers_times_tau(lm):
    task = GenerationTask(lm, "this license", 4, lexicon_sentiment, beta=0.1)
    values = HeuristicValues(task, alpha=0.8)
    nodes = task.sample_suffix(np.zeros(6, dtype=np.int64), np.random.default_rng(1))
    nodes = np.concatenate([nodes, task.tree.parent(nodes)])
    r = np.array([lexicon_sentiment(t) for t in task.text(nodes)])
    expect = (4 - task.tree.depth_of(nodes)) * np.log(0.8) + r / 0.1
    np.testing.assert_allclose(values(nodes), expect)
    bad = GenerationTask(lm, "this license", 4, lambda text: -1.0, beta=0.1)
    assert np.isfinite(HeuristicValues(bad)(np.zeros(1, dtype=np.int64))).all()  # a negative reward is fine


def _greedy(rows, nodes, q):
    best = q.argmax(dim=1, keepdim=True)
    return torch.full_like(q, -np.inf).scatter_(1, best, 0.0)


def test_prompts_decoded_together_match_each_alone_and_share_forward_passes(lm):
    prompts = ("this license", "the software", "you may")
    alone = []
    for prompt in prompts:
        fresh = LanguageModel(lm.model, lm.tokenizer)
        task = GenerationTask(fresh, prompt, 5, lexicon_sentiment)
        alone.append((task.text(task.sample_suffix(np.zeros(2, dtype=np.int64), np.random.default_rng(0),
                                                    _greedy)), fresh.ledger.forward_passes))
    shared = LanguageModel(lm.model, lm.tokenizer)
    tasks = [GenerationTask(shared, p, 5, lexicon_sentiment) for p in prompts]
    leaves = sample_suffixes(tasks, [np.zeros(2, dtype=np.int64)] * 3, np.random.default_rng(0), [_greedy] * 3)
    assert [t.text(x) for t, x in zip(tasks, leaves)] == [texts for texts, _ in alone]
    # one model call per position serves all three prompts (the prompts' own passes come first)
    assert shared.ledger.forward_passes <= max(passes for _, passes in alone) + len(prompts)
    assert shared.ledger.forward_passes < sum(passes for _, passes in alone)
    # rows are numbered across the tasks: a hook that forces action (row + depth) sees each task's own rows
    def forced(rows, nodes, q):
        pick = torch.as_tensor((rows + tasks[0].tree.depth_of(nodes)) % 7 + 1)[:, None]
        return torch.full_like(q, -np.inf).scatter_(1, pick, 0.0)

    leaves = sample_suffixes(tasks, [np.zeros(2, dtype=np.int64)] * 3, np.random.default_rng(0), [forced] * 3)
    for i, (task, x) in enumerate(zip(tasks, leaves)):
        want = [tuple(int(task.actions[(2 * i + row + h) % 7 + 1]) for h in range(5)) for row in range(2)]
        assert task.tokens(x) == want
    other = GenerationTask(LanguageModel(lm.model, lm.tokenizer), "x", 3, lexicon_sentiment)
    with pytest.raises(ParameterError, match="share one model"):
        sample_suffixes([tasks[0], other], [np.zeros(1, dtype=np.int64)] * 2, np.random.default_rng(0))


def test_batched_aisp_decodes_each_prompt_as_it_would_alone(lm):
    shared = LanguageModel(lm.model, lm.tokenizer)
    tasks = [GenerationTask(shared, p, 4, lexicon_sentiment) for p in ("this license", "the software")]
    kwargs = dict(window=4, candidates=3, iterations=2, sigma=1e-6, decode="argmax")
    results = sample_aisp_prompts(tasks, 2, np.random.default_rng(0), **kwargs)
    assert len(results) == 2 and results[0].ledger is results[1].ledger
    assert results[0].ledger.tries == 2 * 2 * 3 * 2  # prompts x chains x candidates x iterations
    for task, result in zip(tasks, results):
        # sigma -> 0 with argmax: every candidate is the prompt's own greedy response, as with one prompt alone
        one = sample_aisp(GenerationTask(LanguageModel(lm.model, lm.tokenizer), task.prompt, 4, lexicon_sentiment),
                          None, 2, np.random.default_rng(5), **kwargs)
        single = GenerationTask(LanguageModel(lm.model, lm.tokenizer), task.prompt, 4, lexicon_sentiment)
        greedy = single.text(single.sample_suffix(np.zeros(1, dtype=np.int64), np.random.default_rng(0), _greedy))
        assert task.text(result.samples) == greedy * 2
        assert [r for r in one.diagnostics["best_reward"]] == list(result.diagnostics["best_reward"])
        assert result.params["prompts"] == 2 and len(result.diagnostics["rounds"]["kl"]) == 2


def test_reproduce_alignment_quick_end_to_end(tmp_path):
    out = tmp_path / "alignment"
    result = CliRunner().invoke(app, ["reproduce", "alignment", "--quick", "--out", str(out), "--workers", "1"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    paired = summary["lm_paired"]
    assert {p["pairing"] for p in paired} >= {"aisp - best-of-n", "aisp (lambda 0.001) - best-of-n"}
    assert all(p["pairs"] == 2 for p in paired)  # two prompts x one seed, every run ok
    claims = {v["claim"] for v in summary["expectations"]}
    assert any(c.startswith("AISP beats best-of-n") for c in claims)
    assert any(c.startswith("AISP tends to best-of-n") for c in claims)
    report = (out / "report.md").read_text()
    assert "## Where AISP wins and where it loses" in report and "## Reward against budget" in report
    for name in ("alignment_sentiment.png", "alignment_minilm.png"):
        assert (out / name).stat().st_size > 10_000
    points = {(p["lm_task"], method(p), p["responses"]["mean"]) for p in summary["lm_points"]}
    assert ("sentiment", "best-of-n", 16.0) in points and ("minilm", "aisp", 16.0) in points
