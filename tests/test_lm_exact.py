"""ExactLaw: the one computation of a generation task's pi_ref, tau, pi* and V*, in float64."""

import numpy as np
import pytest

from extras import require

require("lm")

from ttsample.lm.backend import LanguageModel
from ttsample.lm.exact import ExactLaw, best_of_n_law
from ttsample.lm.rewards import dyck_valid, length_reward
from ttsample.lm.task import GenerationTask


def test_the_laws_are_normalised_and_agree_with_v_star():
    lm = LanguageModel.load("dyck")
    for beta in (None, 2.0):
        law = ExactLaw(GenerationTask(lm, "", 5, length_reward if beta else dyck_valid, beta=beta))
        assert law.pi_ref.dtype == np.float64 and abs(law.pi_star.sum() - 1.0) < 1e-12
        assert abs(law.pi_ref.sum() - 1.0) < 1e-12
        # Z from V*'s recursion and from the leaves' own masses: both from float32 model rows (1e-5 each, H rows)
        z_leaves = np.logaddexp.reduce(law.log_pi + law.log_tau)
        assert abs(z_leaves - law.log_z) < 5 * 1e-5
        handles = law.leaves[::7]
        np.testing.assert_array_equal(law.leaves[law.position(handles)], handles)
        assert all(law.index[k] == i for i, k in enumerate(law.task.tokens(law.leaves)))
        np.testing.assert_allclose(law.by_handle(law.pi_star)[law.leaves], law.pi_star)
        np.testing.assert_allclose(law.best_of_n(1), law.pi_ref)  # one candidate: plain decoding
        assert law.kl_to_base() >= 0 and law.pistar_reward >= law.base_reward  # tilting towards the reward


def test_best_of_n_law_rewards_ties_to_the_first_level():
    p = np.array([0.5, 0.25, 0.25])
    law = best_of_n_law(p, np.array([1.0, 0.0, 1.0]), 2)
    # the best of 2 has score 1 unless both draws score 0 (1/16); within a level, mass splits as p does
    np.testing.assert_allclose(law, [0.5 * (15 / 16) / 0.75, 1 / 16, 0.25 * (15 / 16) / 0.75])


def test_the_language_model_oracle_keeps_the_protocol_and_a_lying_proposal_is_caught():
    """check_oracle on LMOracle with exact values (claimed rho = 1, checked on the grown trie, float64 recursion on
    the model's float32 answers); twin: proposals drawn uniformly while pi_ref's probability is reported."""
    from ttsample.lm.oracle import LMOracle
    from ttsample.lm.values import ExactValues
    from ttsample.testing import check_oracle

    task = GenerationTask(LanguageModel.load("dyck"), "", 4, dyck_valid)
    oracle = LMOracle(task, ExactValues(task), log_rho=0.0)
    check_oracle(oracle)

    class UniformlyProposing(LMOracle):
        def propose_child(self, ids, rng):
            kids = self.tree.child(ids, rng.integers(self.tree.branching, size=np.shape(ids)))
            return kids, self.proposal_log_prob(kids)

    with pytest.raises(AssertionError, match="does not draw from proposal_log_prob"):
        check_oracle(UniformlyProposing(task, ExactValues(task), log_rho=0.0))
