"""Step-level trees: the samplers move a reasoning step at a time, and the response law stays pi*.

On the Dyck model at H = 6, a step ending after ")" or "]" or 3 tokens, whose
token trie (5,461 nodes) is enumerated, so pi* is exact in float64 (ExactLaw).
Statistical checks reject a correct sampler with probability at most
FALSE_ALARM (chi-square); each has a twin that must fail.
"""

import json

import numpy as np
import pytest

from extras import require

require("lm")

from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.errors import ParameterError, TreeShapeError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.exact import ExactLaw
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import REWARDS
from ttsample.lm.samplers.action_rs import sample_action_rs
from ttsample.lm.samplers.best_of_n import sample_best_of_n
from ttsample.lm.samplers.mh import sample_mh
from ttsample.lm.samplers.outcome_rs import sample_outcome_rs
from ttsample.lm.samplers.smc import sample_smc
from ttsample.lm.samplers.vgb import sample_vgb
from ttsample.lm.steps import Steps
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import ExactValues
from ttsample.oracles import with_error
from ttsample.testing import FALSE_ALARM, chi_square_p_value, normal_band

H = 6
STEPS = Steps((")", "]"), max_step_tokens=3)
N = 2000


@pytest.fixture(scope="module")
def lm():
    return LanguageModel.load("dyck")


@pytest.fixture(scope="module")
def stepped(lm):
    law = ExactLaw(GenerationTask(lm, "", H, REWARDS["dyck"], step_rule=STEPS))
    return law, ExactValues(law.task)


def cells(law, tokens) -> np.ndarray:
    return np.array([law.index[tuple(t)] for t in tokens])


def fit(law, samples, probs=None) -> float:
    """The chi-square p-value of leaves against ``probs`` (default: the law's pi*)."""
    return chi_square_p_value(cells(law, law.task.tokens(samples)), law.pi_star if probs is None else probs)


def test_the_response_law_is_the_token_level_one(lm, stepped):
    law, _ = stepped
    tokens = ExactLaw(GenerationTask(lm, "", H, REWARDS["dyck"]))
    assert set(law.index) == set(tokens.index)
    order = [law.index[k] for k in tokens.index]
    np.testing.assert_allclose(law.pi_star[order], tokens.pi_star, rtol=0, atol=1e-12)  # same float64 sums


def test_a_drawn_step_ends_where_the_rule_says_and_carries_its_tokens_log_probability(stepped):
    law, _ = stepped
    task, tree = law.task, law.task.tree
    kids, log_q = task.draw_children(np.zeros(400, dtype=np.int64), np.random.default_rng(0))
    assert np.all(tree.depth_of(kids) == 1) and np.all(tree.parent(kids) == 0) and np.all(tree.ends_step(kids))
    for text, tokens, leaf in zip(task.text(kids), task.tokens(kids), tree.is_leaf(kids)):
        assert text.endswith((")", "]")) or len(tokens) == 3 or leaf
        before = task.lm.tokenizer.decode(tokens[:-1])  # the step ends at its first delimiter, not later
        assert not any(d in before for d in STEPS.delimiters)
    # the step's log-probability is the sum over its tokens: log pi_ref(child) - log pi_ref(root), in float32 rows
    np.testing.assert_allclose(log_q, task.log_pi_ref(kids), atol=1e-5)
    np.testing.assert_allclose(task.proposal_log_prob(kids), task.log_pi_ref(kids), atol=1e-5)
    assert len({len(t) for t in task.tokens(kids)}) > 1  # steps of several lengths were drawn


def test_the_step_tree_draws_and_never_lists(stepped):
    law, _ = stepped
    with pytest.raises(TreeShapeError, match="never listed"):
        law.task.tree.children(np.zeros(1, dtype=np.int64))


def test_vgb_at_step_level_samples_pi_star(stepped):
    law, values = stepped
    result = sample_vgb(law.task, LMOracle(law.task, values), N, np.random.default_rng(1))
    assert result.params["kernel"] == "proposal"
    assert fit(law, result.samples) > FALSE_ALARM


class OmitsLastToken(LMOracle):
    """Twin: a step proposal whose log-probability leaves out the step's last token."""

    def _last(self, ids):
        tokens = self.task.token_tree
        return self.task.log_pi_ref(ids) - self.task.log_pi_ref(tokens.parent(ids))

    def propose_child(self, ids, rng):
        kids, log_q = super().propose_child(ids, rng)
        return kids, log_q - self._last(kids)

    def proposal_log_prob(self, ids):
        return super().proposal_log_prob(ids) - self._last(ids)


def test_a_step_proposal_missing_its_last_token_is_caught(stepped):
    law, values = stepped
    result = sample_vgb(law.task, OmitsLastToken(law.task, values), N, np.random.default_rng(1))
    assert fit(law, result.samples) < FALSE_ALARM


def test_twisted_smc_at_step_level_estimates_z_without_bias(stepped):
    """Step proposals from pi_ref, weights V_hat(child) / V_hat(parent) per step, values off by up to 2x: the mean
    of Z_hat over 300 seeded runs of 8 particles lies within normal_band(1e-6) standard errors of Z (false alarm
    1e-6 under the normal approximation). Twin: the proposal that leaves out the step's last token."""
    law, values = stepped
    z = float(np.exp(law.log_z))

    def z_hats(oracle):
        return np.array([np.exp(sample_smc(law.task, with_error(oracle, "random", 2.0, seed=3), 8,
                                           np.random.default_rng(seed), twist=True).log_z)
                         for seed in range(300)])

    good = z_hats(LMOracle(law.task, values))
    assert abs(good.mean() - z) < normal_band(FALSE_ALARM) * good.std(ddof=1) / np.sqrt(good.size)
    bad = z_hats(OmitsLastToken(law.task, values))
    assert abs(bad.mean() - z) > normal_band(FALSE_ALARM) * bad.std(ddof=1) / np.sqrt(bad.size)


def test_action_level_rs_at_step_level_with_exact_values_samples_pi_star(stepped):
    """Its proposal form: a step drawn from pi_ref, accepted with V*(child) / V*(parent) (exact with V*)."""
    law, values = stepped
    result = sample_action_rs(law.task, LMOracle(law.task, values), N, np.random.default_rng(5))
    assert result.params["kernel"] == "proposal"
    assert fit(law, result.samples) > FALSE_ALARM


def test_best_of_n_at_step_level_has_its_closed_form_law(stepped):
    law, _ = stepped
    result = sample_best_of_n(law.task, None, N, np.random.default_rng(6), candidates=4)
    assert fit(law, result.samples, law.best_of_n(4)) > FALSE_ALARM


def test_a_step_costs_its_new_tokens_once(lm):
    """The model's cache is keyed by the token trie: a second walk over the same steps asks no new tokens."""
    task = GenerationTask(lm, "", H, REWARDS["dyck"], step_rule=STEPS)
    oracle = LMOracle(task, ExactValues(task))
    sample_vgb(task, oracle, 200, np.random.default_rng(7), steps=200)
    before = lm.ledger.tokens
    sample_vgb(task, oracle, 200, np.random.default_rng(7), steps=200)  # the same draws: every step cached
    assert lm.ledger.tokens == before


@pytest.mark.parametrize("sampler", [sample_outcome_rs, sample_mh])
def test_outcome_rs_and_mh_at_step_level_sample_pi_star(stepped, sampler):
    law, _ = stepped
    result = sampler(law.task, None, N, np.random.default_rng(3))
    assert fit(law, result.samples) > FALSE_ALARM


def test_max_steps_ends_responses_and_vgb_samples_the_truncated_law(lm):
    law = ExactLaw(GenerationTask(lm, "", H, REWARDS["dyck"], step_rule=Steps((")", "]"), max_steps=2)))
    tree = law.task.tree
    assert tree.depth == 2 and tree.depth_of(law.leaves).max() == 2
    full = ExactLaw(GenerationTask(lm, "", H, REWARDS["dyck"]))
    assert len(law.index) < len(full.index)  # responses of more than two steps are cut
    result = sample_vgb(law.task, LMOracle(law.task, ExactValues(law.task)), N, np.random.default_rng(4))
    assert fit(law, result.samples) > FALSE_ALARM


def test_a_delimiter_no_step_can_end_with_is_refused(lm):
    with pytest.raises(ParameterError, match="cannot be generated"):
        GenerationTask(lm, "", H, REWARDS["dyck"], step_rule=Steps(("\n\n",)))
    with pytest.raises(ParameterError, match="more than max_step_tokens"):
        GenerationTask(lm, "", H, REWARDS["dyck"], step_rule=Steps(("()",), max_step_tokens=1))
    with pytest.raises(ParameterError, match="needs an end"):
        Steps()


def test_generate_takes_the_step_flags_and_records_them(tmp_path):
    args = ["generate", "--model", "dyck", "--horizon", str(H), "--reward", "dyck", "--sampler", "vgb",
            "--values", "exact", "-n", "20", "--seed", "0", "--step-delimiter", ")", "--step-delimiter", "]",
            "--max-step-tokens", "3", "--max-steps", "4", "--out", str(tmp_path / "a")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    ledger = json.loads((tmp_path / "a" / "ledger.json").read_text())
    assert ledger["step_rule"] == {"delimiters": [")", "]"], "max_step_tokens": 3, "max_steps": 4}
    plain = ["generate", "--model", "dyck", "--horizon", str(H), "--reward", "dyck", "--sampler", "vgb", "-n", "5"]
    result = CliRunner().invoke(app, plain + ["--max-steps", "4", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "--max-steps counts steps" in result.output


def test_steps_on_a_user_style_folder_with_a_blank_line_delimiter(tmp_path):
    """A random-initialised GPT-2 folder with a BPE tokenizer: '\\n\\n' read as two newlines, steps drawn."""
    from user_models import model_folder

    folder = model_folder("gpt2", tmp_path / "gpt2")
    for sampler in ("vgb", "twisted-smc"):
        out = tmp_path / sampler
        result = CliRunner().invoke(app, ["generate", "--model", str(folder), "--prompt", "the", "--horizon", "6",
                                          "--reward", "length", "--beta", "1", "--sampler", sampler, "-n", "4",
                                          "--step-delimiter", "\\n\\n", "--max-step-tokens", "2", "--out", str(out)])
        assert result.exit_code == 0, result.output
        ledger = json.loads((out / "ledger.json").read_text())
        assert ledger["step_rule"]["delimiters"] == ["\n\n"] and ledger["samples"] == 4
