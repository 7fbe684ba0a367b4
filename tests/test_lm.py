"""Language models as sampling targets: the cached backend, exact pi*, the LM oracle, values, bad input.

Statistical tests state their false-alarm rate; each has a twin that must fail.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest

from ttsample import make_oracle, sample_jvv, sample_walk_boosted
from ttsample.errors import ModelLoadError, OracleBoundError, ParameterError, RewardError
from ttsample.eval.exact_laws import (
    jvv_output_law,
    leaf_marginal,
    total_variation,
    walk_output_law,
    walk_stationary_law,
)
from ttsample.oracles import CountedOracle, Ledger
from ttsample.samplers.chains import sample_with_restarts, schedule_rho
from ttsample.samplers.walk import SinclairJerrumWalk, default_walk_steps
from ttsample.lm.backend import EMBEDDED, LanguageModel
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import dyck_completable, dyck_valid, lexicon_sentiment, no_letter, regex_reward
from ttsample.lm.targets import tilted_target
from ttsample.lm.tiny import train_tiny
from ttsample.lm.values import ExactValues, HeuristicValues, RolloutValues, ValueHead

from conftest import FALSE_ALARM
from test_exact_laws import ParentWeightWalk
from test_monte_carlo import chi_square_p_value


@pytest.fixture(scope="module")
def lm():
    return LanguageModel.load("dyck")


@pytest.fixture(scope="module")
def dyck5(lm):
    return tilted_target(lm, "", 5, dyck_valid)


def backtracking_workload(lm, rng, steps=400):
    """Prefixes visited by a walk that goes down and back up the generation tree."""
    path, visited = [lm.tokenizer.bos_id], []
    for _ in range(steps):
        visited.append(tuple(path))
        if len(path) > 1 and (len(path) >= 10 or rng.random() < 0.45):
            path.pop()
        else:
            path.append(int(rng.integers(5)))
    return visited


def test_cache_matches_uncached_forward_and_saves_passes():
    fresh = LanguageModel.load("dyck")
    visits = backtracking_workload(fresh, np.random.default_rng(0))
    cached = np.concatenate([fresh.next_logprobs([p]) for p in visits])
    passes = fresh.ledger.forward_passes
    plain = LanguageModel.load("dyck")
    uncached = plain.uncached_next_logprobs(visits)
    np.testing.assert_allclose(cached, uncached, atol=1e-5)
    assert plain.ledger.forward_passes == len(visits)
    assert passes <= len(set(visits)) < len(visits)  # never recomputes a prefix it has seen
    assert fresh.ledger.cache_hits + fresh.ledger.cache_misses == len(visits)
    assert fresh.ledger.cache_hits > 0.4 * len(visits)


def test_cache_eviction_keeps_answers_right():
    small = LanguageModel.load("dyck", cache_entries=20)
    visits = backtracking_workload(small, np.random.default_rng(1), steps=200)
    got = small.next_logprobs(visits)
    assert len(small._cache) <= 20
    np.testing.assert_allclose(got, LanguageModel.load("dyck").uncached_next_logprobs(visits), atol=1e-5)


def test_prelogits_and_head_give_the_logits(lm):
    prefixes = [(lm.tokenizer.bos_id,), (lm.tokenizer.bos_id, 0, 2)]
    z = lm.prelogits(prefixes)
    w, bias = lm.head()
    logits = z @ w.T + bias
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(logp, lm.next_logprobs(prefixes), atol=1e-5)


def test_exact_target_is_pi_ref_times_tau(lm, dyck5):
    t = dyck5
    p = t.target.leaf_probs()
    assert np.isclose(p.sum(), 1.0) and p.max() > 0
    rng = np.random.default_rng(0)
    support = np.flatnonzero(p > 0)
    z = np.exp(t.target.log_z)
    for leaf in rng.choice(support, min(20, support.size), replace=False):
        response = t.tokens(int(leaf))
        assert dyck_valid(lm.tokenizer.decode(response)) == 1.0
        # an independent path: the model's probability of the response, renormalised over non-<bos> tokens
        steps = [t.prompt + response[:k] for k in range(len(response))]
        q = lm.next_logprobs(steps)[:, t.actions]
        q -= np.log(np.exp(q).sum(axis=1, keepdims=True))
        log_pi = sum(q[k, list(t.actions).index(response[k])] for k in range(len(response)))
        assert np.isclose(np.log(p[leaf] * z), log_pi, atol=1e-5)
    invalid = np.flatnonzero((p == 0) & np.isfinite(t.log_pi_ref[t.tree.leaf_start:]))
    assert all(dyck_valid(t.text(int(i))) == 0.0 for i in invalid[:50])
    assert np.isclose(np.exp(t.log_values()[0]), z)  # V*(root) = E_pi_ref[tau]


def test_lab_samplers_and_exact_laws_apply(dyck5):
    noisy = make_oracle(dyck5.target, "random", 1.5, seed=0)  # V_hat within 1.5x of V*
    assert total_variation(jvv_output_law(noisy)[0], dyck5.target.leaf_probs()) < 1e-9
    walk = SinclairJerrumWalk(dyck5.tree, 10.0)
    delayed = make_oracle(dyck5.target, "delayed")  # VGB's delayed value
    leaf = leaf_marginal(walk, walk_stationary_law(walk, delayed))
    assert total_variation(leaf / leaf.sum(), dyck5.target.leaf_probs()) < 1e-9
    tilted = tilted_target(LanguageModel.load("dyck"), "(", 4, dyck_completable, beta=0.5)
    assert np.isclose(tilted.target.leaf_probs().sum(), 1.0)


def test_lm_oracle_drives_the_walk_with_counted_model_calls(dyck5):
    lm = LanguageModel.load("dyck")
    oracle = LMOracle(lm, "", 5, dyck_valid, ExactValues(dyck5))
    ids = np.arange(dyck5.tree.num_nodes)
    answers, truth = oracle.log_weight(ids), dyck5.target.log_mass + dyck5.target.log_z
    assert np.array_equal(np.isfinite(answers), np.isfinite(truth))
    np.testing.assert_allclose(answers[np.isfinite(truth)], truth[np.isfinite(truth)], atol=1e-5)
    fresh = LMOracle(LanguageModel.load("dyck"), "", 5, dyck_valid, ExactValues(dyck5))
    result = sample_walk_boosted(fresh, 200, np.random.default_rng(0))
    assert result.ledger.forward_passes > 0 and result.ledger.tokens > 0 and result.ledger.reward_calls > 0
    assert all(dyck_valid(dyck5.text(int(s))) == 1.0 for s in result.samples)
    with pytest.raises(OracleBoundError, match="normalised"):
        sample_jvv(fresh, 5, np.random.default_rng(0))


@pytest.fixture(scope="module")
def lm_walk(lm, dyck5):
    """The leaf-boosted walk on the LM oracle with exact values, its default T, and its exact output law at T."""
    oracle = LMOracle(lm, "", 5, dyck_valid, ExactValues(dyck5))
    walk = SinclairJerrumWalk(dyck5.tree, 2.0 * dyck5.tree.depth)
    steps = default_walk_steps(dyck5.tree.depth, schedule_rho(oracle), walk.leaf_boost)
    return oracle, walk, steps, walk_output_law(walk, oracle, steps)[0]


def test_boosted_walk_on_the_lm_oracle_samples_its_exact_law(dyck5, lm_walk):
    """Chi-square of the samples against the walk's exact T-step law: false-alarm rate FALSE_ALARM."""
    oracle, walk, steps, law = lm_walk
    fresh = LMOracle(LanguageModel.load("dyck"), "", 5, dyck_valid, ExactValues(dyck5))
    result = sample_walk_boosted(fresh, 3000, np.random.default_rng(0))
    assert result.info["steps"] == steps and result.info["leaf_boost"] == walk.leaf_boost
    assert chi_square_p_value(result.samples, law) > FALSE_ALARM
    # at stationarity the leaf law is exactly the oracle's leaf answers, which are pi* up to the model's float32
    leaf = leaf_marginal(walk, walk_stationary_law(walk, oracle))
    answers = np.exp(oracle.log_weight(np.arange(dyck5.tree.leaf_start, dyck5.tree.num_nodes)))
    assert total_variation(leaf / leaf.sum(), answers / answers.sum()) < 1e-9
    assert total_variation(leaf / leaf.sum(), dyck5.target.leaf_probs()) < 1e-6


def test_twin_broken_walk_on_the_lm_oracle_fails_the_check(dyck5, lm_walk):
    oracle, walk, steps, law = lm_walk
    broken = ParentWeightWalk(dyck5.tree, walk.leaf_boost)  # moves up with the parent's weight
    leaves, _ = sample_with_restarts(broken, CountedOracle(oracle, Ledger()), 3000, steps, np.random.default_rng(0),
                                     Ledger())
    assert chi_square_p_value(leaves - dyck5.tree.leaf_start, law) < FALSE_ALARM


def test_rollout_values_estimate_v_star(dyck5):
    """Hoeffding: |mean of k=2000 rollouts - V*| > 0.06 has probability <= 2 exp(-2 k 0.06^2) = 1.1e-6."""
    lm = LanguageModel.load("dyck")
    oracle = LMOracle(lm, "", 5, dyck_valid, values=None)
    v_star = np.exp(dyck5.log_values())
    prefixes = [(), (0,), (2, 3)]  # "", "(", "[]"
    ids = [0, 1, 1 + 5 * 3 + 3]
    est = RolloutValues(oracle, k=2000, seed=0).estimate(prefixes)
    assert np.all(np.abs(est - v_star[ids]) < 0.06)
    assert lm.ledger.reward_calls == 3 * 2000
    wrong = LMOracle(LanguageModel.load("dyck"), "", 5, lambda s: 1.0 - dyck_valid(s), values=None)
    twin = RolloutValues(wrong, k=2000, seed=0).estimate(prefixes)  # twin: the wrong reward is caught
    assert np.any(np.abs(twin - v_star[ids]) >= 0.06)


def test_heuristic_and_value_head(dyck5):
    lm = LanguageModel.load("dyck")
    oracle = LMOracle(lm, "", 5, dyck_valid, values=None)
    h = HeuristicValues(oracle, dyck_completable, alpha=0.5)
    assert np.allclose(np.exp(h(None, [(0,), (1,)])), [0.5**4, 0.0])
    inner = np.arange(1, dyck5.tree.leaf_start)
    inner = inner[np.isfinite(dyck5.log_pi_ref[inner])]
    responses = oracle.prefixes(inner)
    v = np.exp(dyck5.log_values()[inner])
    head = ValueHead(oracle, seed=0)
    error = head.fit(responses, v, epochs=400)
    baseline = float(np.mean(np.abs(v - v.mean())))
    assert error < 0.8 * baseline, (error, baseline)  # the head learns something a constant cannot
    assert np.all(np.isfinite(head(None, responses[:5])))


def test_rewards_and_their_guard(lm):
    assert dyck_valid("([])") == 1.0 and dyck_valid("(]") == 0.0 and dyck_completable("([") == 1.0
    assert no_letter("e")("hat") == 1.0 and no_letter("e")("the") == 0.0
    assert regex_reward(r"\(+\)+")("(())") == 1.0
    assert lexicon_sentiment("good free software") > 0 > lexicon_sentiment("no warranty")
    with pytest.raises(RewardError, match="finite"):
        tilted_target(lm, "", 2, lambda s: float("nan"))
    with pytest.raises(RewardError, match="raised"):
        tilted_target(lm, "", 2, lambda s: 1 / 0)


def test_bad_models_and_parameters(tmp_path, lm):
    with pytest.raises(ModelLoadError, match="does not exist"):
        LanguageModel.load(tmp_path / "nothing")
    (tmp_path / "bert").mkdir()
    (tmp_path / "bert" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelLoadError):
        LanguageModel.load(tmp_path / "bert")
    shutil.copytree(EMBEDDED["dyck"], tmp_path / "mismatch")
    (tmp_path / "mismatch" / "tokenizer.json").write_text(json.dumps({"type": "char", "symbols": list("abcdefgh")}))
    with pytest.raises(ModelLoadError, match="do not match"):
        LanguageModel.load(tmp_path / "mismatch")
    with pytest.raises(ParameterError, match="horizon"):
        tilted_target(lm, "", 0, dyck_valid)
    with pytest.raises(ParameterError, match="context"):
        tilted_target(lm, "(" * 40, 3, dyck_valid)
    with pytest.raises(ParameterError, match="vocabulary"):
        tilted_target(lm, "abc", 3, dyck_valid)


def test_train_tiny_script_is_reproducible(tmp_path):
    a = train_tiny("dyck", tmp_path / "a", steps=15, seed=3)
    b = train_tiny("dyck", tmp_path / "b", steps=15, seed=3)
    assert a["sha256"] == b["sha256"] == hashlib.sha256((tmp_path / "a" / "model.safetensors").read_bytes()).hexdigest()
    assert LanguageModel.load(tmp_path / "a").vocab_size == 6


@pytest.mark.parametrize("name", ["dyck", "text"])
def test_shipped_models_match_their_records(name):
    record = json.loads((EMBEDDED[name] / "training.json").read_text())
    assert hashlib.sha256((EMBEDDED[name] / "model.safetensors").read_bytes()).hexdigest() == record["sha256"]
    assert f"train-tiny --task {name}" in record["command"]
    lm = LanguageModel.load(name)
    assert np.isclose(np.exp(lm.next_logprobs([(lm.tokenizer.bos_id,)])).sum(), 1.0, atol=1e-5)


def test_text_model_no_e_target():
    lm = LanguageModel.load("text")
    target = tilted_target(lm, "the ", 2, no_letter("e"))
    assert all("e" not in target.text(int(i)) for i in np.flatnonzero(target.target.leaf_probs() > 0)[:200])


def test_embedding_similarity_reward():
    from ttsample.lm.embedding import EmbeddingSimilarity

    reward = EmbeddingSimilarity("free software license")
    assert reward("free software license") == pytest.approx(1.0, abs=1e-5)
    assert reward("a license for free software") > reward("the cat sat on the mat")


def test_cli_lm_exact_and_train_tiny(tmp_path):
    from typer.testing import CliRunner

    from ttsample.cli import app

    result = CliRunner().invoke(app, ["lm-exact", "--horizon", "4", "--top", "3", "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "e" / "summary.json").read_text())
    assert 0 < summary["V_star_root"] < 1 and np.isclose(np.load(tmp_path / "e" / "pi_star.npy").sum(), 1.0)
    bad = CliRunner().invoke(app, ["lm-exact", "--reward", "magic", "--out", str(tmp_path / "f")])
    assert bad.exit_code == 2 and "unknown reward" in bad.output and not (tmp_path / "f").exists()
    trained = CliRunner().invoke(app, ["train-tiny", "--task", "dyck", "--steps", "5", "--out", str(tmp_path / "m")])
    assert trained.exit_code == 0, trained.output
    written = {p.name for p in (tmp_path / "m").iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "training.json"} <= written
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.")]  # no temporary folder left behind
