"""Rewards by name (built-ins, regex:, python:, file.py:), batched rewards, and the ledger of reward calls."""

import json

import numpy as np
import pytest

from extras import require

require("lm")

import user_rewards  # noqa: E402
from user_models import tiny_classifier  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from ttsample.cli import app  # noqa: E402
from ttsample.errors import ParameterError, RewardError  # noqa: E402
from ttsample.lm.backend import LanguageModel  # noqa: E402
from ttsample.lm.generate import generate  # noqa: E402
from ttsample.lm.rewards import REWARDS, check_reward_name, resolve_reward  # noqa: E402
from ttsample.lm.task import GenerationTask  # noqa: E402
from ttsample.registry import names  # noqa: E402


def test_every_named_form_resolves_to_a_reward():
    assert resolve_reward("dyck") is REWARDS["dyck"]
    regex = resolve_reward("regex:\\(+\\)+")
    assert regex.bounds == (0.0, 1.0) and regex("(())") == 1.0 and regex("()()") == 0.0
    per_text = resolve_reward("python:user_rewards:balanced")
    assert not per_text.batched and per_text.name == "python:user_rewards:balanced" and per_text("[]") == 1.0
    batch = resolve_reward("python:user_rewards:balanced_batched")
    assert batch.batched and batch.score(["", ""], ["()", "(("]) == [1.0, 0.0]
    declared = resolve_reward("python:user_rewards:bounded_length")  # a Reward object keeps its range
    assert declared.name == "bounded-length" and declared.range(5) == (0.0, 5.0)
    assert resolve_reward(user_rewards.balanced).name == "balanced"  # a callable, as generate() takes it


def test_a_reward_in_a_file_is_read_from_it(tmp_path):
    path = tmp_path / "my_reward.py"
    path.write_text("def short(text):\n    return float(len(text) <= 2)\n")
    reward = resolve_reward(f"{path}:short")
    assert reward("ab") == 1.0 and reward("abc") == 0.0


@pytest.mark.parametrize("name, message", [
    ("joy", "unknown reward 'joy'; give a built-in name"),
    ("regex:(", "is not a regular expression"),
    ("python:no_such_module_here:f", "cannot import 'no_such_module_here'"),
    ("python:user_rewards:nothing", "has no 'nothing'"),
    ("/no/such/file.py:f", "does not exist"),
    ("hf:", "unknown reward"),
])
def test_bad_reward_names_say_what_is_wrong(name, message):
    with pytest.raises(ParameterError, match=message):
        resolve_reward(name)


def test_check_reward_name_loads_nothing_and_refuses_what_resolve_would():
    for good in ("dyck", "regex:a", "similarity:a text", "hf:some/folder:positive", "python:m:f", "x.py:f"):
        check_reward_name(good)
    with pytest.raises(ParameterError, match="unknown reward"):
        check_reward_name("regex:")


def test_a_batched_reward_with_the_wrong_number_of_scores_stops_the_run():
    task = GenerationTask(LanguageModel.load("dyck"), "", 4, resolve_reward("python:user_rewards:one_short"))
    with pytest.raises(RewardError, match="returned 1 scores for 2 responses"):
        task.score(["()", "(("])


@pytest.mark.parametrize("sampler", [s for s in names("generation") if s != "majority-vote"])  # it reads no reward
def test_a_batched_reward_gives_the_same_run_in_fewer_calls(sampler):
    """The same reward per text and batched: the same samples (the scores are equal, the seed is), the same texts
    scored, and one call per batch instead of one per text."""
    options = {"iterations": 2, "candidates": 4} if sampler == "aisp" else {}
    runs = {}
    user_rewards.CALLS.clear()
    for form in ("balanced", "balanced_batched"):
        runs[form] = generate("dyck", "", 6, f"python:user_rewards:{form}", sampler=sampler, values="exact", n=20,
                              seed=3, **options)
    per_text, batch = runs["balanced"].result, runs["balanced_batched"].result
    np.testing.assert_array_equal(per_text.samples, batch.samples)
    assert per_text.ledger.reward_calls == per_text.ledger.reward_texts == batch.ledger.reward_texts > 0
    assert batch.ledger.reward_calls == len(user_rewards.CALLS) >= 1  # every call counted
    assert sum(user_rewards.CALLS) == batch.ledger.reward_texts  # every text counted once, in its batch
    assert batch.ledger.reward_calls < batch.ledger.reward_texts  # batches, not one call per text


def test_the_cli_takes_a_named_reward_and_records_its_calls(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["generate", "--model", "dyck", "--horizon", "6", "--reward",
                                      "python:user_rewards:balanced_batched", "--sampler", "best-of-n", "-n", "5",
                                      "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["reward"] == "python:user_rewards:balanced_batched"
    assert 0 < ledger["reward_calls"] < ledger["reward_texts"]
    bad = CliRunner().invoke(app, ["generate", "--reward", "python:user_rewards:nothing", "--sampler", "vgb",
                                   "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "has no 'nothing'" in bad.output


def test_a_sweep_spec_takes_a_named_reward(tmp_path):
    import tomllib

    from ttsample.experiments.runner import run_spec
    from ttsample.experiments.spec import parse_spec
    from ttsample.experiments.store import ResultStore

    spec = 'name = "r"\nseeds = 1\nsamples = 30\n[[lm_tasks]]\nname = "d"\nmodel = "dyck"\nhorizon = 4\n' \
           'reward = "python:user_rewards:balanced_batched"\nexact = true\nsamplers = ["outcome-rs"]\n'
    store = ResultStore(tmp_path / "results.sqlite")
    assert run_spec(parse_spec(tomllib.loads(spec)), store, workers=1) == 1
    (row,) = store.rows()
    assert row["status"] == "ok" and row["accuracy"] == 1.0 and 0 < row["reward_calls"] < row["reward_texts"]
    with pytest.raises(ParameterError, match="unknown reward 'joy'"):
        parse_spec(tomllib.loads(spec.replace("python:user_rewards:balanced_batched", "joy")))


def test_a_reward_model_folder_scores_pairs_in_batches(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from ttsample.lm import reward_model

    folder = tiny_classifier(tmp_path / "rm", labels=2)
    reward = resolve_reward(f"hf:{folder}:good")
    assert reward.batched and reward.bounds == (-np.inf, 0.0)
    prompts, responses = ["a prompt"] * 40, [f"response number {i}" for i in range(40)]  # two batches of 32
    scores = np.asarray(reward.score(prompts, responses))
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    with torch.no_grad():  # one pair at a time, by hand: the log-probability of "good"
        alone = [torch.log_softmax(model(**tokenizer("a prompt", r, return_tensors="pt")).logits.double(), 1)[0, 1]
                 for r in responses]
    np.testing.assert_allclose(scores, alone, rtol=0, atol=1e-5)  # float32 model, padded batches
    assert np.all(scores <= 0) and np.ptp(scores) > 0  # a real function of the response
    logit = np.asarray(resolve_reward(f"hf:{folder}:logit:good").score(prompts[:3], responses[:3]))
    assert not np.allclose(logit, scores[:3])
    assert reward_model.parse(f"{folder}:1") == (str(folder), "1", "logprob")
    with pytest.raises(ParameterError, match="has 2 labels \\(bad, good\\), not a scalar head"):
        resolve_reward(f"hf:{folder}")
    with pytest.raises(ParameterError, match="has no label 'great'; its labels: bad, good"):
        resolve_reward(f"hf:{folder}:great")
    with pytest.raises(ParameterError, match="does not exist"):
        resolve_reward(f"hf:{tmp_path / 'nowhere'}:good")


def test_a_scalar_reward_model_drives_a_sampler(tmp_path):
    folder = tiny_classifier(tmp_path / "scalar", labels=1, seed=1)
    run = generate("dyck", "", 5, f"hf:{folder}", sampler="best-of-n", beta=0.5, n=6, seed=0, candidates=4)
    led = run.result.ledger
    assert run.result.samples.size == 6 and led.reward_texts >= 6 and led.reward_calls < led.reward_texts
    chosen = run.rewards()
    best = [max(r for _, r in c) for c in run.result.diagnostics["candidates"]]
    np.testing.assert_allclose(chosen, best, rtol=0, atol=1e-6)  # best-of-n kept the top score of each


def test_users_values_by_name_are_cached_per_node_and_drive_vgb_to_pi_star():
    """VGB is exact with any values positive where V* is (ALGORITHMS.md §2): the user's completability values give
    the exact pi* of valid Dyck words. Chi-square at FALSE_ALARM (1e-6 false alarms); the twin below runs the same
    walk far too short to mix (T = 8 instead of the default 1,960), which is biased, and must be caught."""
    from ttsample.lm.exact import ExactLaw
    from ttsample.testing import FALSE_ALARM, chi_square_p_value

    user_rewards.CALLS.clear()
    run = generate("dyck", "", 6, "dyck", sampler="vgb", values="python:user_rewards:completable_values", n=1500,
                   seed=5)
    asked = sum(user_rewards.CALLS)
    assert asked == len(run.oracle.values.cache) and len(user_rewards.CALLS) < asked  # once per node, in batches
    law = ExactLaw(GenerationTask(LanguageModel.load("dyck"), "", 6, REWARDS["dyck"]))
    drawn = [law.index[t] for t in run.task.tokens(run.result.samples)]
    assert chi_square_p_value(drawn, law.pi_star) > FALSE_ALARM
    twin = generate("dyck", "", 6, "dyck", sampler="vgb", values="python:user_rewards:completable_values",
                    n=1500, seed=5, steps=8)
    assert chi_square_p_value([law.index[t] for t in twin.task.tokens(twin.result.samples)], law.pi_star) < FALSE_ALARM


def test_users_values_that_give_an_unproven_zero_are_refused():
    from ttsample.errors import OracleBoundError

    with pytest.raises(OracleBoundError, match="values are 0 at the prefix"):
        generate("dyck", "", 6, "dyck", sampler="vgb", values="python:user_rewards:zero_values", n=5, seed=0)
    with pytest.raises(ParameterError, match="or name your own"):
        generate("dyck", "", 6, "dyck", sampler="vgb", values="magic", n=5, seed=0)


def test_a_classifier_folder_as_values_is_read_as_log_v(tmp_path):
    folder = tiny_classifier(tmp_path / "verifier", labels=2, seed=2)
    run = generate("dyck", "", 5, "dyck", sampler="twisted-smc", values=f"hf:{folder}:good", n=10, seed=0,
                   particles=16)
    values = run.oracle.values
    nodes = np.array(list(values.cache), dtype=np.int64)
    expected = resolve_reward(f"hf:{folder}:good").score([""] * nodes.size, run.task.text(nodes))
    np.testing.assert_allclose(values(nodes), expected, rtol=0, atol=1e-5)  # log V_hat = log P(good | prefix)
    assert run.result.samples.size > 0


def test_a_python_reward_equal_to_the_built_in_gives_pi_star_and_a_twin_off_by_one_response_is_caught():
    """OutcomeLevelRS is exact (rejection): with python:user_rewards:balanced, the built-in dyck's function, its
    samples fit lm-exact's pi* (chi-square, 1e-6 false alarms). The twin differs from it on the one response "()"
    and must be caught."""
    from ttsample.lm.exact import ExactLaw
    from ttsample.testing import FALSE_ALARM, chi_square_p_value

    law = ExactLaw(GenerationTask(LanguageModel.load("dyck"), "", 6, REWARDS["dyck"]))
    n = 3000
    tokenizer = law.task.lm.tokenizer
    pair = (*tokenizer.encode("()"), tokenizer.eos_id)  # the response "()" and its <eos>
    assert law.pi_star[law.index[pair]] * n > 30  # the twin's change is visible at this n
    for name, fits in (("balanced", True), ("balanced_but_one", False)):
        run = generate("dyck", "", 6, f"python:user_rewards:{name}", sampler="outcome-rs", n=n, seed=9)
        p = chi_square_p_value([law.index[t] for t in run.task.tokens(run.result.samples)], law.pi_star)
        assert (p > FALSE_ALARM) == fits, (name, p)


def test_a_stop_string_ends_responses_and_pi_star_is_over_the_stopped_responses():
    """With stop ")", a response ends at its first ")": the trie's leaves are the stopped responses and the exact
    law is over them. OutcomeLevelRS and VGB with exact values (both exact) fit it (chi-square, 1e-6 false
    alarms each); the twin, the same VGB walk at T = 8, must not."""
    from ttsample.lm.exact import ExactLaw
    from ttsample.testing import FALSE_ALARM, chi_square_p_value

    lm = LanguageModel.load("dyck")
    law = ExactLaw(GenerationTask(lm, "", 5, REWARDS["dyck-completable"], stop=(")",)))
    texts = law.task.text(law.leaves)
    assert all(")" not in t[:-1] for t in texts) and any(t.endswith(")") for t in texts)  # nothing after the stop
    for sampler, options, fits in (("outcome-rs", {}, True), ("vgb", {}, True), ("vgb", {"steps": 8}, False)):
        run = generate(lm, "", 5, "dyck-completable", sampler=sampler, values="exact", stop=(")",), n=2000, seed=2,
                       **options)
        assert all(")" not in t[:-1] for t in run.texts())
        drawn = [law.index[t] for t in run.task.tokens(run.result.samples)]
        assert (chi_square_p_value(drawn, law.pi_star) > FALSE_ALARM) == fits, (sampler, options)


def test_python_values_equal_to_v_star_give_vgb_pi_star_and_no_zero_is_refused_where_v_star_is_zero():
    """A user's verifier returning V* exactly: VGB's samples fit lm-exact's pi* (chi-square, 1e-6 false alarms;
    the twin is the same walk at T = 8). V* is 0 on prefixes no response completes, and a user's values do not
    prove zeros, so those are refused rather than trusted: a floored copy is what runs."""
    from ttsample.errors import OracleBoundError
    from ttsample.lm.exact import ExactLaw
    from ttsample.testing import FALSE_ALARM, chi_square_p_value

    with pytest.raises(OracleBoundError, match="values are 0"):
        generate("dyck", "", 6, "dyck", sampler="vgb", values="python:user_rewards:exact_dyck_values", n=5, seed=0)
    law = ExactLaw(GenerationTask(LanguageModel.load("dyck"), "", 6, REWARDS["dyck"]))
    for options, fits in (({}, True), ({"steps": 8}, False)):
        run = generate("dyck", "", 6, "python:user_rewards:balanced", sampler="vgb",
                       values="python:user_rewards:floored_v_star", n=1500, seed=6, **options)
        drawn = [law.index[t] for t in run.task.tokens(run.result.samples)]
        assert (chi_square_p_value(drawn, law.pi_star) > FALSE_ALARM) == fits, options


def test_the_test_time_head_learns_from_a_users_values_and_vgb_stays_exact():
    """head:NAME: the head is fitted on the user's values at the nodes it labels (warm-up and exploration) and
    answers the rest, so the user's function is asked at fewer nodes than the sampler queries. VGB is exact for
    any positive values (the head floors its answers), so its samples fit pi* (chi-square, 1e-6 false alarms);
    the twin, the same walk at T = 8, must not."""
    from ttsample.lm.exact import ExactLaw
    from ttsample.testing import FALSE_ALARM, chi_square_p_value

    law = ExactLaw(GenerationTask(LanguageModel.load("dyck"), "", 6, REWARDS["dyck"]))
    for options, fits in (({}, True), ({"steps": 8}, False)):
        user_rewards.CALLS.clear()
        run = generate("dyck", "", 6, "dyck", sampler="vgb", values="head:python:user_rewards:completable_values",
                       n=1500, seed=7, **options)
        labelled = sum(user_rewards.CALLS)
        assert run.result.diagnostics["head_fits"] and 0 < labelled < run.result.ledger.queries_distinct
        drawn = [law.index[t] for t in run.task.tokens(run.result.samples)]
        assert (chi_square_p_value(drawn, law.pi_star) > FALSE_ALARM) == fits, options
