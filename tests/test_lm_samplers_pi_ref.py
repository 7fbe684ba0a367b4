"""Samplers that decode from pi_ref: OutcomeLevelRS, best-of-n, SMC (plain and twisted), MH over responses.

On the embedded Dyck model at horizon 5, where pi*(y) = pi_ref(y) tau(y) / V*(root)
is exact by enumerating the trie (laws are indexed by leaf handle of the same task).
Chi-square tests reject a correct sampler with probability at most FALSE_ALARM
(chi-square asymptotics); mean tests use a two-sided normal band of Z_BAND
standard errors (false-alarm rate FALSE_ALARM under the CLT). Each has a twin,
a deliberately broken sampler that must fail the same check.
"""


import numpy as np
import pytest

from extras import require

require("lm")

from ttsample.errors import BudgetExhaustedError, OracleBoundError, ParameterError, RewardError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.exact import ExactLaw
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import REWARDS, Reward, dyck_valid, length_reward, regex_reward
from ttsample.lm.samplers import mh, outcome_rs, smc
from ttsample.lm.samplers.best_of_n import sample_best_of_n
from ttsample.lm.samplers.mh import sample_mh
from ttsample.lm.samplers.outcome_rs import sample_outcome_rs
from ttsample.lm.samplers.smc import sample_smc
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import ExactValues
from ttsample.oracles import with_error

from ttsample.testing import FALSE_ALARM, chi_square_p_value, normal_band

Z_BAND = normal_band(FALSE_ALARM)  # 4.89: P(|N(0, 1)| > Z_BAND) = FALSE_ALARM
N = 4000  # draws per chi-square test


class Exact:
    """A task with its trie fully grown: V*, pi* and pi_ref over its leaves, indexed by handle."""

    def __init__(self, task: GenerationTask):
        self.task = task
        self.values = ExactValues(task)
        law = ExactLaw(task)  # float64 and normalised: the model answers in float32
        self.log_z = law.log_z  # log V*(root) = log E_pi_ref[tau]
        self.pi_ref, self.pi_star = law.by_handle(law.pi_ref), law.by_handle(law.pi_star)
        assert np.isclose(np.exp(np.logaddexp.reduce(law.log_pi + law.log_tau) - law.log_z), 1.0)  # Z two ways
        self.depth = task.tree.depth_of(np.arange(task.tree.num_nodes))


@pytest.fixture(scope="module")
def lm():
    return LanguageModel.load("dyck")


@pytest.fixture(scope="module")
def tilt(lm):
    """tau = exp(2 * 1{valid Dyck word}): every response has tau > 0, pi* far from pi_ref, lengths 1 to 5."""
    return Exact(GenerationTask(lm, "", 5, dyck_valid, beta=0.5))


@pytest.fixture(scope="module")
def constraint(lm):
    return Exact(GenerationTask(lm, "", 5, dyck_valid))


# ---- OutcomeLevelRS ----


def test_outcome_rs_follows_pi_star_and_a_square_root_acceptance_is_caught(tilt, constraint, monkeypatch):
    result = sample_outcome_rs(tilt.task, None, N, np.random.default_rng(0), max_log_tau=2.0)
    assert result.samples.size == N
    assert chi_square_p_value(result.samples, tilt.pi_star) > FALSE_ALARM
    ledger = result.ledger
    assert ledger.tries == N + ledger.restarts + ledger.surplus and ledger.reward_calls > 0 and ledger.steps > 0
    p = np.exp(tilt.log_z - 2.0)  # acceptance rate Z / max tau
    assert abs(result.diagnostics["acceptance_rate"] - p) < Z_BAND * np.sqrt(p * (1 - p) / ledger.tries)
    plain = sample_outcome_rs(constraint.task, None, N, np.random.default_rng(1))  # bound 0 by default
    assert chi_square_p_value(plain.samples, constraint.pi_star) > FALSE_ALARM

    monkeypatch.setattr(outcome_rs, "log_acceptance", lambda log_tau, bound: 0.5 * (log_tau - bound))  # twin
    broken = sample_outcome_rs(tilt.task, None, N, np.random.default_rng(0), max_log_tau=2.0)
    assert chi_square_p_value(broken.samples, tilt.pi_star) < FALSE_ALARM


@pytest.mark.parametrize("name", list(REWARDS))
def test_every_built_in_reward_declares_a_range_that_outcome_rs_tilts_with(lm, name):
    """Each built-in reward's range holds on every text of the Dyck trie at H = 4 (responses and prefixes), and
    OutcomeLevelRS with a tilt takes its bound from it: chi-square of N draws against pi* (FALSE_ALARM)."""
    exact = Exact(GenerationTask(lm, "", 4, REWARDS[name], beta=0.5))
    task = exact.task
    low, high = task.reward_range
    every = np.arange(task.tree.num_nodes)
    r = np.array([REWARDS[name](t) for t in task.text(every)])
    assert low <= r.min() and r.max() <= high
    result = sample_outcome_rs(task, None, N, np.random.default_rng(3))  # no max_log_tau given
    assert result.diagnostics["max_log_tau"] == high / 0.5
    assert chi_square_p_value(result.samples, exact.pi_star) > FALSE_ALARM


def test_a_declared_range_is_enforced_and_the_length_bound_holds_on_subwords():
    """A reward outside the range it declares stops the run (a wrong range would bias OutcomeLevelRS); the length
    range, per character, bounds every response of the subword model (tokens of up to 16 characters)."""
    lm = LanguageModel.load("dyck")
    too_short = Reward(length_reward, "length", (0.0, 0.5), per_char=True)  # twin: half the true range
    with pytest.raises(RewardError, match="outside the range"):
        sample_outcome_rs(GenerationTask(lm, "", 4, too_short, beta=0.5), None, 50, np.random.default_rng(0))
    subword = LanguageModel.load("subword")
    task = GenerationTask(subword, "this license", 6, REWARDS["length"], beta=1.0)
    leaves = task.sample_suffix(np.zeros(300, dtype=np.int64), np.random.default_rng(0))
    assert max(len(t) for t in task.text(leaves)) <= task.reward_range[1] == 6 * subword.tokenizer.max_token_chars


def test_outcome_rs_needs_a_bound_that_holds_and_stops_at_its_budget(tilt):
    # a user's callable declares no range: a tilt then needs max_log_tau, and the message says how to give it
    with pytest.raises(ParameterError, match="declares no range.*--set max_log_tau"):
        sample_outcome_rs(tilt.task, None, 10, np.random.default_rng(0))
    with pytest.raises(OracleBoundError, match="exceeds max_log_tau"):
        sample_outcome_rs(tilt.task, None, 100, np.random.default_rng(0), max_log_tau=1.0)  # log tau reaches 2
    with pytest.raises(BudgetExhaustedError, match="acceptance rate") as err:
        sample_outcome_rs(tilt.task, None, 1000, np.random.default_rng(0), max_log_tau=2.0, max_tries=50)
    assert err.value.ledger.tries == 50


# ---- best-of-n ----


def test_best_of_n_returns_the_best_candidate_and_with_one_candidate_follows_pi_ref(lm, tilt):
    task = GenerationTask(lm, "", 4, length_reward, beta=1.0)  # graded reward: the number of characters
    result = sample_best_of_n(task, None, 300, np.random.default_rng(0), candidates=5)
    assert result.samples.size == 300 and result.ledger.tries == 1500 and result.ledger.restarts == 1200
    for out, cands, best in zip(result.samples, result.diagnostics["candidates"], result.diagnostics["rewards"]):
        handles, rewards = zip(*cands)
        assert len(cands) == 5 and best == max(rewards)
        assert out == handles[int(np.argmax(rewards))]  # the first of the best
        assert np.allclose(rewards, [task.reward(t) for t in task.text(np.array(handles))])
    assert np.mean(result.diagnostics["rewards"]) > np.mean([r for c in result.diagnostics["candidates"] for _, r in c])

    single = sample_best_of_n(tilt.task, None, N, np.random.default_rng(1), candidates=1)
    assert chi_square_p_value(single.samples, tilt.pi_ref) > FALSE_ALARM
    assert chi_square_p_value(single.samples, tilt.pi_star) < FALSE_ALARM  # pi_ref is not pi* here


# ---- SMC ----


def test_perfectly_twisted_smc_has_equal_weights_exact_log_z_and_exact_draws(tilt, constraint):
    """With psi = V*, every incremental weight is 1: ESS stays N, log Z_hat = log Z on every run, draws are exact."""
    for exact in (tilt, constraint):
        oracle = LMOracle(exact.task, exact.values)
        for seed in range(3):
            result = sample_smc(exact.task, oracle, 64, np.random.default_rng(seed), twist=True)
            np.testing.assert_allclose(result.diagnostics["ess_steps"], 64, rtol=1e-9)
            assert abs(result.log_z - exact.log_z) < 1e-9 and result.diagnostics["resampled_at"] == []
            np.testing.assert_allclose(result.log_weights, exact.log_z, atol=1e-9)
        big = sample_smc(exact.task, oracle, N, np.random.default_rng(7), twist=True)
        assert chi_square_p_value(big.samples, exact.pi_star) > FALSE_ALARM
        assert big.ledger.queries_total > 0 and big.ledger.steps > 0
    # values off by up to a factor 2: the property is not automatic
    noisy = with_error(LMOracle(tilt.task, tilt.values), "random", 2.0, seed=3)
    result = sample_smc(tilt.task, noisy, 64, np.random.default_rng(0), twist=True)
    assert np.min(result.diagnostics["ess_steps"]) < 63 and abs(result.log_z - tilt.log_z) > 1e-3


def smc_runs(exact: Exact, particles: int, runs: int, f: np.ndarray, **options):
    """Self-normalised estimates of E_pi*[f] and Z_hat over seeded runs of plain SMC."""
    est, z = np.empty(runs), np.empty(runs)
    for seed in range(runs):
        r = sample_smc(exact.task, None, particles, np.random.default_rng(seed), **options)
        z[seed] = np.exp(r.log_z)
        assert np.isclose(np.exp(r.log_weights).mean(), z[seed])  # unnormalised weights: their mean is Z_hat
        w = np.exp(r.log_weights)
        est[seed] = w @ f[r.samples] / w.sum() if w.sum() > 0 else np.nan  # every weight zero: no estimate
    return est, z


def test_plain_smc_bias_shrinks_with_particles_and_z_hat_is_unbiased(tilt, constraint, monkeypatch):
    """pi*(3 tokens) by self-normalised SMC: biased at 2 particles, within the Monte-Carlo band at 256.

    Measured (seeds 0..): at 2 particles the mean is 0.19 against 0.39 (bias -0.20, SE 0.02 over 300 runs);
    at 256 the bias is about 1/128 of that (O(1/N)), far below the band of 4.89 SE (SE ~ 0.01 over 40 runs).
    """
    f = (tilt.depth == 3).astype(float)
    truth = tilt.pi_star @ f
    small, z_small = smc_runs(tilt, 2, 300, f)
    large, z_large = smc_runs(tilt, 256, 40, f)
    se_small, se_large = small.std() / np.sqrt(small.size), large.std() / np.sqrt(large.size)
    assert abs(small.mean() - truth) > Z_BAND * se_small  # the finite-N bias is real and seen
    assert abs(large.mean() - truth) < Z_BAND * se_large
    assert abs(large.mean() - truth) < abs(small.mean() - truth)
    z = np.exp(tilt.log_z)
    for zs in (z_small, z_large):  # Z_hat unbiased at every particle count
        assert abs(zs.mean() - z) < Z_BAND * zs.std() / np.sqrt(zs.size)
    # a constraint (weights 0 or 1), systematic resampling at every step where weights differ
    _, z_sys = smc_runs(constraint, 8, 300, f, resampling="systematic", ess_threshold=1.0)
    assert abs(z_sys.mean() - np.exp(constraint.log_z)) < Z_BAND * z_sys.std() / np.sqrt(z_sys.size)
    never = sample_smc(tilt.task, None, 64, np.random.default_rng(0), ess_threshold=0.0)
    assert never.diagnostics["resampled_at"] == [] and len(never.diagnostics["ess_steps"]) == 5

    monkeypatch.setattr(smc, "leaf_log_tau", lambda task, leaves, cache=None: np.zeros(len(leaves)))  # twin: no tau
    broken, z_broken = smc_runs(tilt, 256, 40, f)
    assert abs(broken.mean() - truth) > Z_BAND * broken.std() / np.sqrt(broken.size)
    assert abs(z_broken.mean() - z) > Z_BAND * max(z_broken.std(), z_large.std()) / np.sqrt(z_broken.size)


def test_twisted_smc_with_a_crude_twist_keeps_z_hat_unbiased(constraint):
    """psi = 1 inside the tree (log V_hat = 0): particles can reach nodes whose children all have tau = 0."""
    oracle = LMOracle(constraint.task, lambda nodes: np.zeros(len(nodes)))
    z = np.empty(300)
    for seed in range(z.size):
        r = sample_smc(constraint.task, oracle, 8, np.random.default_rng(seed), twist=True)
        assert not np.isnan(r.log_weights).any() and constraint.task.tree.is_leaf(r.samples).all()
        z[seed] = np.exp(r.log_z)
    assert abs(z.mean() - np.exp(constraint.log_z)) < Z_BAND * z.std() / np.sqrt(z.size)


@pytest.mark.parametrize("method", smc.RESAMPLING)
def test_resampling_keeps_each_particle_in_proportion_to_its_weight(method):
    """Mean offspring counts over 4000 resamplings against m w_i: each of 5 bands errs with rate FALSE_ALARM."""
    w = np.array([0.05, 0.3, 0.0, 0.15, 0.5])
    rng = np.random.default_rng(0)
    with np.errstate(divide="ignore"):
        counts = np.array([np.bincount(smc.resample(rng, np.log(w), 5, method), minlength=5) for _ in range(4000)])
    mean, se = counts.mean(axis=0), counts.std(axis=0) / np.sqrt(len(counts))
    assert counts[:, 2].max() == 0
    assert np.all(np.abs(mean - 5 * w) <= Z_BAND * se + 1e-12)


def test_smc_with_more_particles_than_draws(tilt):
    result = sample_smc(tilt.task, None, 10, np.random.default_rng(0), particles=200)
    assert result.samples.size == 10 and result.params["particles"] == 200
    assert np.all(result.log_weights == result.log_z)
    assert tilt.task.tree.is_leaf(result.samples).all()


# ---- Metropolis–Hastings ----


def test_mh_reaches_pi_star_and_the_rule_without_the_length_factor_is_caught(tilt, monkeypatch):
    """4000 independent chains from pi_ref draws, 40 steps each, on the tilt (lengths 1, 3, 5 differ).

    Exact kernels (enumerated): after 40 steps the chain's law is at TV 4e-4 from pi* (chi-square
    noncentrality 4000 * 1.4e-6, negligible), the twin's at TV 0.11 (noncentrality 4000 * 0.054 ~ 216).
    """
    result = sample_mh(tilt.task, None, N, np.random.default_rng(0), burn_in=40)
    assert result.samples.size == N and result.diagnostics["chain"].size == 41
    assert chi_square_p_value(result.samples, tilt.pi_star) > FALSE_ALARM
    assert 0.05 < result.diagnostics["acceptance_rate"] < 0.95
    assert result.ledger.steps >= 40 * N and result.ledger.tries == N and result.ledger.restarts == 0
    start = sample_mh(tilt.task, None, N, np.random.default_rng(0), burn_in=0)  # the pi_ref starts: not pi*
    assert chi_square_p_value(start.samples, tilt.pi_star) < FALSE_ALARM

    monkeypatch.setattr(mh, "log_acceptance", lambda new, old, len_new, len_old: np.minimum(0.0, new - old))  # twin
    broken = sample_mh(tilt.task, None, N, np.random.default_rng(0), burn_in=40)
    assert chi_square_p_value(broken.samples, tilt.pi_star) < FALSE_ALARM


def test_mh_moves_the_first_token_too(lm):
    """tau = exp(4 * 1{starts with "["}) at horizon 3: pi* puts 0.98 on a first "[", pi_ref 0.47.

    Only cut point 0 changes the first token, so a chain that never cuts there stays at pi_ref's first
    token. Exact kernel: after 60 steps the law is at TV 1.3e-5 from pi* (noncentrality 2000 * 8.8e-9).
    """
    exact = Exact(GenerationTask(lm, "", 3, regex_reward(r"\[.*"), beta=0.25))
    result = sample_mh(exact.task, None, 2000, np.random.default_rng(0), burn_in=60)
    assert chi_square_p_value(result.samples, exact.pi_star) > FALSE_ALARM


def test_mh_on_a_constraint_starts_valid_thins_and_stops_at_its_budget(constraint):
    task = constraint.task
    result = sample_mh(task, None, 250, np.random.default_rng(0), chains=100, burn_in=5, thin=3)
    assert result.samples.size == 250 and result.diagnostics["chain"].size == 5 + 3 * 2 + 1
    chain = result.diagnostics["chain"]
    assert np.all(constraint.pi_star[result.samples] > 0) and np.all(constraint.pi_star[chain] > 0)
    assert result.ledger.tries == result.diagnostics["init_tries"] >= 100 and result.ledger.restarts > 0
    with pytest.raises(BudgetExhaustedError, match="max_init_tries"):
        sample_mh(task, None, 100, np.random.default_rng(0), max_init_tries=20)


# ---- costs and parameters ----


def test_every_sampler_counts_model_and_reward_costs(lm):
    task = GenerationTask(lm, "[[[[[[", 3, dyck_valid)  # deeper than the other tasks: nothing cached yet
    runs, reports = [], []
    samplers = [(sample_outcome_rs, {}), (sample_best_of_n, {}), (sample_smc, {}), (sample_mh, {"burn_in": 3})]
    for sampler, options in samplers:
        calls = []
        progress = lambda done, total: calls.append((done, total))  # noqa: E731
        runs.append(sampler(task, None, 5, np.random.default_rng(0), progress=progress, **options))
        reports.append(calls)
    for result, calls in zip(runs, reports):
        ledger = result.ledger
        assert ledger.reward_calls > 0 and ledger.steps > 0 and ledger.seconds > 0
        assert result.samples.size == 5 and task.tree.is_leaf(result.samples).all()
        assert calls and calls[-1] == (5, 5) and all(0 <= d <= t == 5 for d, t in calls)
    assert runs[0].ledger.forward_passes > 0 and runs[0].ledger.tokens > 0  # the first decodes afresh


@pytest.mark.parametrize(
    "sampler, options",
    [
        (sample_outcome_rs, {"n": 0}),
        (sample_outcome_rs, {"max_tries": 0}),
        (sample_outcome_rs, {"max_log_tau": float("nan")}),
        (sample_best_of_n, {"candidates": 0}),
        (sample_best_of_n, {"n": 1.5}),
        (sample_smc, {"particles": 3}),
        (sample_smc, {"resampling": "residual"}),
        (sample_smc, {"ess_threshold": 1.5}),
        (sample_smc, {"twist": True}),  # no oracle to read the twist from
        (sample_mh, {"chains": 0}),
        (sample_mh, {"burn_in": -1}),
        (sample_mh, {"thin": 0}),
        (sample_mh, {"max_init_tries": 0}),
    ],
)
def test_bad_parameters_are_refused(constraint, sampler, options):
    options = {"n": 5, **options}
    n = options.pop("n")
    with pytest.raises(ParameterError):
        sampler(constraint.task, None, n, np.random.default_rng(0), **options)
