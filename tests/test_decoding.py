"""Temperature, top-k and top-p: pi_ref becomes the tempered and truncated law, and every sampler follows it.

Statistical tests reject a correct sampler with probability at most FALSE_ALARM; the twin must fail.
"""

import numpy as np
import pytest

from extras import require

require("lm")

import torch

from ttsample.errors import ParameterError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.decoding import Decoding
from ttsample.lm.exact import ExactLaw
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import dyck_valid
from ttsample.lm.samplers.outcome_rs import sample_outcome_rs
from ttsample.lm.samplers.vgb import sample_vgb
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import ExactValues
from ttsample.testing import FALSE_ALARM, chi_square_p_value

DECODING = Decoding(temperature=0.7, top_k=3, top_p=0.9)


def by_hand(log_p: np.ndarray, d: Decoding) -> np.ndarray:
    """The same law in float64 with numpy, one row at a time: temper, keep the top k, then the nucleus."""
    out = []
    for row in log_p.astype(np.float64):
        q = row / d.temperature
        q = q - np.logaddexp.reduce(q)
        if d.top_k is not None:
            q = np.where(q >= np.sort(q)[::-1][d.top_k - 1], q, -np.inf)
            q = q - np.logaddexp.reduce(q)
        if d.top_p is not None:
            order = np.argsort(-q, kind="stable")
            p = np.exp(q[order])
            keep = np.cumsum(p) - p < d.top_p
            q = np.where(np.isin(np.arange(q.size), order[keep]), q, -np.inf)
            q = q - np.logaddexp.reduce(q)
        out.append(q)
    return np.array(out)


@pytest.mark.parametrize("d", [DECODING, Decoding(temperature=2.0), Decoding(top_k=1), Decoding(top_p=0.5),
                               Decoding(top_p=1e-9)])
def test_the_decoded_law_matches_a_hand_computation(d):
    rng = np.random.default_rng(0)
    log_p = torch.log_softmax(torch.tensor(rng.normal(0, 2, size=(20, 12)), dtype=torch.float32), dim=1)
    got = torch.log_softmax(d.apply(log_p), dim=1).numpy()
    want = by_hand(log_p.numpy(), d)
    assert np.array_equal(np.isneginf(got), np.isneginf(want))
    assert np.isfinite(got).sum(axis=1).min() >= 1  # at least the most likely token stays
    np.testing.assert_allclose(got[np.isfinite(got)], want[np.isfinite(want)], atol=1e-5)  # float32 answers


@pytest.fixture(scope="module")
def decoded():
    """The Dyck constraint at H = 4 under DECODING, its trie grown: pi* over the decoded pi_ref."""
    task = GenerationTask(LanguageModel.load("dyck"), "", 4, dyck_valid, decoding=DECODING)
    law = ExactLaw(task)
    return task, ExactValues(task), law.by_handle(law.pi_star)


def test_pi_ref_is_the_decoded_model_law(decoded):
    task, _, pi_star = decoded
    root = np.zeros(1, dtype=np.int64)
    model = task.lm.next_logprobs_tensor(task.model_handles(root))[:, task._columns]
    np.testing.assert_allclose(task.next_log_probs(root), by_hand(model.numpy(), DECODING), atol=1e-5)
    leaves = task.tree.leaf_nodes()
    assert np.isneginf(task.log_pi_ref(leaves)).any()  # truncation removes responses ...
    assert np.isclose(np.exp(task.log_pi_ref(leaves)).sum(), 1.0, atol=task.horizon * 1e-5)  # ... and keeps a law


def test_samplers_follow_the_decoded_target_and_the_model_s_own_law_is_caught(decoded):
    """Chi-square of 4000 draws of OutcomeLevelRS (decoding on the drawing path) and of VGB with exact values
    (on the scoring path) against pi*; twin: the same sampler on the undecoded task is caught."""
    task, values, pi_star = decoded
    drawn = sample_outcome_rs(task, None, 4000, np.random.default_rng(0))
    assert chi_square_p_value(drawn.samples, pi_star) > FALSE_ALARM
    walked = sample_vgb(task, LMOracle(task, values), 4000, np.random.default_rng(1))
    assert chi_square_p_value(walked.samples, pi_star) > FALSE_ALARM
    plain = GenerationTask(task.lm, "", 4, dyck_valid)  # a fresh trie: map its leaves to this one's by tokens
    index = {tokens: leaf for leaf, tokens in zip(task.tree.leaf_nodes(), task.tokens(task.tree.leaf_nodes()))}
    undecoded = sample_outcome_rs(plain, None, 4000, np.random.default_rng(0)).samples
    mapped = np.array([index[t] for t in plain.tokens(undecoded)])
    assert chi_square_p_value(mapped, pi_star) < FALSE_ALARM


@pytest.mark.parametrize("options, message", [
    ({"temperature": 0.0}, "temperature"), ({"temperature": float("inf")}, "temperature"),
    ({"top_k": 0}, "top_k"), ({"top_k": 2.5}, "top_k"), ({"top_p": 0.0}, "top_p"), ({"top_p": 1.5}, "top_p"),
])
def test_bad_decoding_is_refused(options, message):
    with pytest.raises(ParameterError, match=message):
        Decoding(**options)
