"""The generation task: pi_ref along the trie, decoding with and without a hook, text, exact V*, bad input.

Statistical tests reject a correct decoder with probability at most FALSE_ALARM; the twin must fail.
"""

import numpy as np
import pytest

from extras import require

require("lm")

import torch

from ttsample.errors import ParameterError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.rewards import dyck_valid
from ttsample.lm.task import GenerationTask, generation_actions
from ttsample.lm.tokenizer import CharTokenizer

from ttsample.testing import FALSE_ALARM, chi_square_p_value


@pytest.fixture(scope="module")
def lm():
    return LanguageModel.load("dyck")


def leaf_law(task: GenerationTask) -> np.ndarray:
    """pi_ref over the leaves of the fully grown trie, indexed by handle."""
    task.tree.grow_all(10_000)
    leaves = task.tree.leaf_nodes()
    law = np.zeros(task.tree.num_nodes)
    law[leaves] = np.exp(task.log_pi_ref(leaves))
    # float32 model answers: each step's row sums to 1 within 1e-5 (test_backend), so H steps within H * 1e-5
    assert np.isclose(law.sum(), 1.0, rtol=0, atol=task.horizon * 1e-5)
    return law / law.sum()


def test_sample_suffix_follows_pi_ref_and_a_tilted_hook_is_caught(lm):
    """Chi-square of 4000 completions of the root against pi_ref: false-alarm rate FALSE_ALARM."""
    task = GenerationTask(lm, "(", 3, dyck_valid)
    law = leaf_law(task)
    leaves = task.sample_suffix(np.zeros(4000, dtype=np.int64), np.random.default_rng(0))
    assert task.tree.is_leaf(leaves).all()
    assert chi_square_p_value(leaves, law) > FALSE_ALARM

    def likes_eos(rows, nodes, log_probs):  # twin: <eos> twice as likely at every step
        boost = torch.zeros(log_probs.shape[1], dtype=log_probs.dtype)
        boost[task.eos_action] = np.log(2.0)
        return log_probs + boost

    tilted = task.sample_suffix(np.zeros(4000, dtype=np.int64), np.random.default_rng(0), logits_hook=likes_eos)
    assert chi_square_p_value(tilted, law) < FALSE_ALARM


def test_hooks_reweight_each_step(lm):
    task = GenerationTask(lm, "", 4, dyck_valid)
    start = np.zeros(200, dtype=np.int64)
    plain = task.sample_suffix(start, np.random.default_rng(3))
    same = task.sample_suffix(start, np.random.default_rng(3), logits_hook=lambda rows, nodes, q: q)
    assert np.array_equal(plain, same)  # the identity hook changes nothing, draw for draw

    def no_eos(rows, nodes, log_probs):
        out = log_probs.clone()
        out[:, task.eos_action] = -np.inf
        return out

    long = task.sample_suffix(start, np.random.default_rng(3), logits_hook=no_eos)
    assert np.all(task.tree.depth_of(long) == 4) and not any(t[-1] == lm.tokenizer.eos_id for t in task.tokens(long))
    assert np.any(task.tree.depth_of(plain) < 4)  # without the hook some responses end early

    def per_row(rows, nodes, log_probs):  # rows name the responses of the batch: even ones may not end early
        out = log_probs.clone()
        out[torch.as_tensor(rows % 2 == 0), task.eos_action] = -np.inf
        return out

    mixed = task.sample_suffix(start, np.random.default_rng(3), logits_hook=per_row)
    assert np.all(task.tree.depth_of(mixed[::2]) == 4) and np.any(task.tree.depth_of(mixed[1::2]) < 4)


def test_text_tokens_and_exact_values(lm):
    task = GenerationTask(lm, "", 3, dyck_valid)
    close = task.tree.child(task.tree.child(np.array([0]), [0]), [1])
    end = task.tree.child(close, [task.eos_action])
    assert task.text(np.concatenate([close, end])) == ["()", "()"]
    assert task.tokens(end) == [(0, 1, lm.tokenizer.eos_id)]
    assert task.tree.is_leaf(end).all() and not task.tree.is_leaf(close).any()
    log_v = task.exact_log_values()
    leaves = task.tree.leaf_nodes()
    tau = np.exp(task.log_tau(leaves))
    assert np.isclose(np.exp(log_v[0]), np.sum(np.exp(task.log_pi_ref(leaves)) * tau))  # V*(root) = E[tau]
    assert np.isclose(np.exp(log_v[end[0]]), 1.0)  # "()" is valid
    assert np.isclose(np.exp(log_v[close[0]]), np.exp(task.next_log_probs(close)[0, task.eos_action]))  # ... if it ends
    with pytest.raises(ParameterError, match="leaf"):
        task.next_log_probs(end)


def test_bad_tasks_are_refused(lm):
    with pytest.raises(ParameterError, match="horizon"):
        GenerationTask(lm, "", 0, dyck_valid)
    for beta in (0.0, float("inf"), float("nan")):  # beta -> inf is tau = 1, not a tilt: say so, not sample pi_ref
        with pytest.raises(ParameterError, match="beta must be a finite number"):
            GenerationTask(lm, "", 3, dyck_valid, beta=beta)
    with pytest.raises(ParameterError, match="context"):
        GenerationTask(lm, "(" * 30, 3, dyck_valid)
    with pytest.raises(ParameterError, match="vocabulary"):
        GenerationTask(lm, "abc", 3, dyck_valid)


def test_a_tokenizer_whose_bos_is_eos_keeps_it_as_an_action():
    class Shared(CharTokenizer):
        @property
        def bos_id(self):
            return self.eos_id

    assert generation_actions(Shared(("a", "b", "<eos>", "<bos>"))).tolist() == [0, 1, 2, 3]
    assert generation_actions(CharTokenizer(("a", "b", "<eos>", "<bos>"))).tolist() == [0, 1, 2]
