"""Language models as sampling targets: the cached backend, exact pi*, the LM oracle, values, bad input.

Statistical tests state their false-alarm rate; each has a twin that must fail.
"""

import hashlib
import json
import shutil

import numpy as np
import pytest

from extras import require

require("lm")

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
from ttsample.lm.backend import LanguageModel
from ttsample.lm.loading import EMBEDDED
from ttsample.lm.oracle import LMOracle
from ttsample.lm.task import GenerationTask
from ttsample.lm.rewards import dyck_completable, dyck_valid, length_reward, lexicon_sentiment, no_letter, regex_reward
from ttsample.lm.targets import tilted_target
from ttsample.lm.tiny import train_tiny
from ttsample.lm.values import ExactValues, HeuristicValues, RolloutValues, ValueHead

from twins import ParentWeightWalk
from ttsample.testing import FALSE_ALARM, chi_square_p_value


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


@pytest.fixture(scope="module")
def task5():
    """The Dyck task at horizon 5 on its own model, its trie fully grown by the exact values."""
    task = GenerationTask(LanguageModel.load("dyck"), "", 5, dyck_valid)
    return task, ExactValues(task)


def test_task_pi_ref_and_tau_match_plain_forward_passes(task5, dyck5):
    """pi_ref along the trie (cached, one token per node) against uncached passes over whole prefixes."""
    task, values = task5
    leaves = task.tree.leaf_nodes()
    rng = np.random.default_rng(0)
    for leaf in rng.choice(leaves, 20, replace=False):
        response = task.tokens([leaf])[0]
        q = task.lm.uncached_next_logprobs([task.prompt + response[:k] for k in range(len(response))])[:, task.actions]
        q -= np.log(np.exp(q).sum(axis=1, keepdims=True))
        log_pi = sum(q[k, list(task.actions).index(response[k])] for k in range(len(response)))
        assert np.isclose(task.log_pi_ref([leaf])[0], log_pi, atol=1e-5)
        assert np.exp(task.log_tau([leaf])[0]) == dyck_valid(task.lm.tokenizer.decode(response))
    assert np.isclose(np.exp(values.log_v[0]), np.exp(dyck5.target.log_z))  # V*(root) = E_pi_ref[tau] = Z


def test_lm_oracle_conserves_mass_and_drives_the_walk(task5):
    """With exact values, w(v) = sum of its children's w at every internal node; the walk's costs are counted."""
    task, values = task5
    oracle = LMOracle(task, values)
    every = np.arange(task.tree.num_nodes)
    inner = every[~task.tree.is_leaf(every)]
    kids, log_w = oracle.children(inner)
    parent_w = np.exp(oracle.log_weight(inner))
    np.testing.assert_allclose(np.exp(log_w).sum(axis=1), parent_w, rtol=1e-9, atol=1e-15)
    fresh_task = GenerationTask(LanguageModel.load("dyck"), "", 5, dyck_valid)
    fresh = LMOracle(fresh_task, HeuristicValues(fresh_task, prefix=dyck_completable))  # no enumeration: the walk pays
    result = sample_walk_boosted(fresh, 200, np.random.default_rng(0))
    assert result.ledger.forward_passes > 0 and result.ledger.tokens > 0 and result.ledger.reward_calls > 0
    assert all(dyck_valid(t) == 1.0 for t in fresh_task.text(result.samples))
    with pytest.raises(OracleBoundError, match="normalised"):
        sample_jvv(fresh, 5, np.random.default_rng(0))


@pytest.fixture(scope="module")
def lm_walk(task5):
    """The leaf-boosted walk on the LM oracle with exact values, its default T, and its exact output law at T."""
    task, values = task5
    oracle = LMOracle(task, values)
    walk = SinclairJerrumWalk(task.tree, 2.0 * task.tree.depth)
    steps = default_walk_steps(task.tree.depth, schedule_rho(oracle), walk.leaf_boost)
    return oracle, walk, steps, walk_output_law(walk, oracle, steps)[0]


def test_boosted_walk_on_the_lm_oracle_samples_its_exact_law(lm_walk):
    """Chi-square of the samples against the walk's exact T-step law: false-alarm rate FALSE_ALARM."""
    oracle, walk, steps, law = lm_walk
    task = GenerationTask(LanguageModel.load("dyck"), "", 5, dyck_valid)
    fresh = LMOracle(task, ExactValues(task))  # grown in the same order: the same handles
    result = sample_walk_boosted(fresh, 3000, np.random.default_rng(0))
    assert result.params["steps"] == steps and result.params["leaf_boost"] == walk.leaf_boost
    assert chi_square_p_value(result.samples, law) > FALSE_ALARM
    # at stationarity the leaf law is exactly the oracle's leaf answers
    leaf = leaf_marginal(walk, walk_stationary_law(walk, oracle))
    leaves = oracle.tree.leaf_nodes()
    answers = np.zeros(leaf.size)
    answers[leaves] = np.exp(oracle.log_weight(leaves))
    assert total_variation(leaf / leaf.sum(), answers / answers.sum()) < 1e-9


def test_twin_broken_walk_on_the_lm_oracle_fails_the_check(lm_walk):
    oracle, walk, steps, law = lm_walk
    broken = ParentWeightWalk(oracle.tree, walk.leaf_boost)  # moves up with the parent's weight
    leaves, _ = sample_with_restarts(broken, CountedOracle(oracle, Ledger()), 3000, steps, np.random.default_rng(0),
                                     Ledger())
    assert chi_square_p_value(leaves, law) < FALSE_ALARM


def test_rollout_values_estimate_v_star(task5):
    """Hoeffding: |mean of k=2000 rollouts - V*| > 0.06 has probability <= 2 exp(-2 k 0.06^2) = 1.1e-6."""
    exact_task, values = task5

    def prefixes(tree):  # "", "(", "[]"
        return np.concatenate([[0], tree.child(np.array([0]), [0]), tree.child(tree.child(np.array([0]), [2]), [3])])

    task = GenerationTask(LanguageModel.load("dyck"), "", 5, dyck_valid)
    nodes = prefixes(task.tree)
    assert task.text(nodes) == ["", "(", "[]"]
    v_star = np.exp(values(prefixes(exact_task.tree)))
    est = RolloutValues(task, np.random.default_rng(0), k=2000).estimate(nodes)
    assert np.all(np.abs(est - v_star) < 0.06)
    assert task.lm.ledger.reward_calls == 3 * 2000
    wrong = GenerationTask(LanguageModel.load("dyck"), "", 5, lambda s: 1.0 - dyck_valid(s))
    twin = RolloutValues(wrong, np.random.default_rng(0), k=2000).estimate(prefixes(wrong.tree))  # twin: caught
    assert np.any(np.abs(twin - v_star) >= 0.06)


def test_heuristic_and_value_head(task5):
    task, values = task5
    h = HeuristicValues(task, prefix=dyck_completable, alpha=0.5)
    nodes = task.tree.child(np.array([0, 0]), [0, 1])  # "(" and ")"
    assert np.allclose(np.exp(h(nodes)), [0.5**4, 0.0])
    # a reward tilt (the constraint's V* is zero at 93% of the nodes at this horizon: nothing to learn)
    tilt = GenerationTask(task.lm, "", 5, length_reward, beta=2.0)
    exact = ExactValues(tilt)  # grows the whole trie
    every = np.arange(1, tilt.tree.num_nodes)
    inner = every[~tilt.tree.is_leaf(every)]
    v = np.exp(exact(inner))
    v /= v.max()
    head = ValueHead(tilt, np.random.default_rng(0))
    error = head.fit(inner, v, np.random.default_rng(0), epochs=400)
    baseline = float(np.mean(np.abs(v - v.mean())))
    assert error < 0.8 * baseline, (error, baseline)  # the head learns something a constant cannot
    assert np.all(np.isfinite(head(inner[:5])))


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



def test_a_reward_model_or_an_incomplete_checkpoint_is_refused_not_loaded_with_random_weights(tmp_path):
    """A LlamaForSequenceClassification folder once loaded as a causal LM with a random LM head, silently."""
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForSequenceClassification

    tokenizer = LanguageModel.load("dyck").tokenizer
    config = dict(vocab_size=tokenizer.vocab_size, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                  num_attention_heads=2, num_key_value_heads=1, pad_token_id=0, tie_word_embeddings=False)
    torch.manual_seed(0)
    LlamaForSequenceClassification(LlamaConfig(num_labels=1, **config)).save_pretrained(tmp_path / "rm")
    tokenizer.save(tmp_path / "rm")
    with pytest.raises(ModelLoadError, match="LlamaForSequenceClassification, not a causal language model"):
        LanguageModel.load(tmp_path / "rm")
    LlamaForCausalLM(LlamaConfig(**config)).save_pretrained(tmp_path / "lm")
    tokenizer.save(tmp_path / "lm")
    assert LanguageModel.load(tmp_path / "lm", dtype="bfloat16").model.dtype == torch.bfloat16  # complete: loads
    weights = load_file(tmp_path / "lm" / "model.safetensors")
    del weights["lm_head.weight"]
    save_file(weights, tmp_path / "lm" / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ModelLoadError, match="lm_head.weight.*at random"):
        LanguageModel.load(tmp_path / "lm")
    with pytest.raises(ParameterError, match="dtype"):
        LanguageModel.load("dyck", dtype="float17")

def test_train_tiny_script_is_reproducible(tmp_path):
    a = train_tiny("dyck", tmp_path / "a", steps=15, seed=3)
    b = train_tiny("dyck", tmp_path / "b", steps=15, seed=3)
    assert a["sha256"] == b["sha256"] == hashlib.sha256((tmp_path / "a" / "model.safetensors").read_bytes()).hexdigest()
    assert LanguageModel.load(tmp_path / "a").vocab_size == 6


@pytest.mark.parametrize("name", ["dyck", "text", "subword", "arithmetic"])
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


def test_embedding_similarity_reward_scores_a_batch_as_it_scores_each_text():
    from ttsample.lm.embedding import BATCH, similarity_reward

    reward = similarity_reward("free software license")
    assert reward.batched and reward("free software license") == pytest.approx(1.0, abs=1e-5)
    assert reward("a license for free software") > reward("the cat sat on the mat")
    texts = [f"text {i} about {'free software' if i % 3 else 'cats'}" for i in range(BATCH + 5)]  # two batches
    together = reward.score([""] * len(texts), texts)
    alone = [reward(t) for t in texts]
    # padding to the batch's longest text changes float32 sums by a few ulps, not the scores
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-6)


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


def test_learned_values_switch_from_rollouts_to_a_head_and_keep_vgb_exact():
    """Answers are fixed per node (VGB's leaf law stays pi* exactly, by transition matrix) and the head takes over."""
    from ttsample.lm.values import LearnedValues

    task = GenerationTask(LanguageModel.load("dyck"), "", 4, dyck_valid)
    exact = ExactValues(task)  # grows the trie: the learned values answer every node once, in handle order
    learned = LearnedValues(task, np.random.default_rng(0), k=4, warmup=40, explore=0.5, refit_every=10)
    every = np.arange(task.tree.num_nodes)
    inner = every[~task.tree.is_leaf(every)]
    answers = np.concatenate([learned(inner[i : i + 20]) for i in range(0, inner.size, 20)])
    assert learned.head is not None and len(learned.fits) >= 2  # fitted after the warm-up, refitted as labels came
    assert 40 <= len(learned.labels) < inner.size  # the head answered the rest, bar the explored share
    assert np.all(np.isfinite(learned.fits[-1]["held_out_error"]))
    table = np.full(every.size, -np.inf)
    table[inner] = answers
    oracle = LMOracle(task, lambda nodes: table[nodes])
    walk = SinclairJerrumWalk(task.tree, 8.0)
    leaf = leaf_marginal(walk, walk_stationary_law(walk, oracle))
    leaves = task.tree.leaf_nodes()
    pi_star = np.zeros(every.size)
    pi_star[leaves] = np.exp(LMOracle(task, exact).log_weight(leaves))
    assert total_variation(leaf / leaf.sum(), pi_star / pi_star.sum()) < 1e-9
