"""One language-model run of a spec: ``generate`` on a fresh model, then its metrics, computed in the worker.

The run goes through ``ttsample.lm.generate.generate`` (the path of ``ttsample
generate``) on a model with an empty cache and ledger, so its costs do not
depend on which runs the worker did before. Metrics (stored beside the costs):

- ``accuracy``: the share of samples whose reward is > 0 (constraints only);
  ``mean_reward``: the mean reward. Weighted samplers (SMC: samples with
  ``log_weights``) give self-normalised weighted means; ``ess`` is their
  effective sample size.
- ``distinct_share``: distinct responses / n (``distinct_correct``: those with
  reward > 0, constraints only: coverage of distinct correct solutions; ``approved_wrong``: with PRM values,
  the share of answers that are wrong after a prefix the PRM approved); ``distinct_2``: distinct token
  bigrams / bigrams over all samples (EVALUATION.md's distinct n-grams).
- Where ``pi*`` is exact (``exact = true``: the task's trie is enumerated on a
  separate model, ``GenerationTask.exact_log_values``):
  ``tv_pistar``: TV between the (weighted) empirical law of the samples and
  ``pi*`` (finite); ``kl_pistar``: the plug-in KL(empirical || pi*), finite
  unless a sample lies outside the support of ``pi*`` (then NULL, and
  ``off_support`` holds the empirical mass outside; KL(pi* || empirical) is
  infinite whenever a response goes unseen, so it is not used);
  ``tv_floor`` / ``kl_floor``: the mean of the same statistics over 200 sets
  of n exact draws from ``pi*`` (the noise floor at this n; ``tv_floor_q95``
  its 95% quantile), and ``tv_ratio = tv_pistar / tv_floor``;
  ``kl_base``: KL(empirical || pi_ref) with the Miller–Madow correction of
  the empirical entropy (``+ (K - 1) / 2n``, K distinct responses);
  ``kl_base_pistar``: KL(pi* || pi_ref), exact; ``z``: ``Z = E_pi_ref[tau]``.
  The exact output law of the sampler where it has one in closed form:
  best-of-n (the response chosen is the first of the highest reward level
  among k draws: ``P(y) = pi_ref(y) / F_= ((F_< + F_=)^k - F_<^k)``) and
  ActionLevelRS with deterministic values (exact, within rho, heuristic:
  the product of its normalised child weights, read from the same oracle):
  ``tv_output_law``, ``kl_pistar_law`` (NULL where infinite) and
  ``kl_base_law``; ``law_dead_mass``: the probability that ActionLevelRS
  reaches a node whose children all weigh zero (where the run stops with an
  error).
- Where ``pi*`` is not enumerable: ``z`` is estimated from
  ``reference_draws`` responses (a field of the task) drawn from ``pi_ref`` (a fixed seed, not
  charged to the run), and ``kl_base`` is the identity
  ``KL(pi* || pi_ref) = E_pi*[log tau] - log Z`` evaluated on the samples
  (``mean log tau(y) - log Z_hat``): unbiased for an exact sampler, NULL when
  a sample has ``tau = 0``; it does not separate samplers whose samples all
  satisfy a constraint (then it is ``-log Z_hat`` for each). The identity
  holds for samplers of ``pi*`` only, so the reward maximisers (best-of-n,
  AISP) get none there.
- KL of the maximisers, any task: ``kl_bound`` (best-of-n): ``log k - (k -
  1) / k``, the closed form that bounds the KL of its output law to
  ``pi_ref`` (exact when the k candidates' rewards never tie);
  ``kl_drift`` (AISP): the token-level KL(perturbed || base) summed over a
  response, averaged over every candidate of every round: how far its
  proposals drifted, not the KL of the response it returns.
- ``responses``: responses decoded per answer (the budget of the alignment
  comparison): best-of-n ``k``; AISP candidates x iterations; MH its start
  draws and chain steps per chain (a step regenerates a suffix); SMC its
  particles (a weighted set is one answer, drawn by weight); OutcomeLevelRS
  its draws per sample. None for samplers that decode token by token under
  values (VGB, ActionLevelRS), whose budget is their reward calls.
- ``base_reward``: the mean reward under ``pi_ref`` (exact, or from the
  reference draws); ``pistar_reward``: under ``pi*`` (exact, or
  self-normalised importance weights ``tau`` on the reference draws).

Torch runs on one thread per run (restored after): parallel workers do not
fight over cores, and serial and parallel sweeps compute the same numbers.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..lm.exact import ExactLaw
from ..logspace import normalised_weights
from ..lm.rewards import log_tau_of
from ..registry import REGISTRY
from .spec import LMRun

FLOOR_REPEATS = 200  # exact-draw sets behind the noise floor
FLOOR_SEED = 20_251_001
REFERENCE_SEED = 7_919


@contextmanager
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=None)
def _loaded(model: str):
    from ..lm.backend import LanguageModel

    return LanguageModel.load(model)


def fresh_model(model: str):
    """The model with an empty cache and ledger (the weights are loaded once per process)."""
    from ..lm.backend import LanguageModel

    base = _loaded(model)
    return LanguageModel(base.model, base.tokenizer)


@lru_cache(maxsize=None)
def reward_function(reward: str, reference: str = ""):
    """The task's ``Reward``, resolved once per process (a MiniLM encoder is loaded once per reference):
    ``minilm`` with its reference is ``similarity:REFERENCE``, any other name a form of ``resolve_reward``."""
    from ..lm.rewards import resolve_reward

    return resolve_reward(f"similarity:{reference}" if reward == "minilm" else reward)


@dataclass
class Reference:
    """What the metrics compare with, per task (model, prompt, horizon, reward, beta): the exact law where the
    trie is enumerated, else estimates from ``pi_ref`` draws."""

    log_z: float
    base_reward: float
    pistar_reward: float
    law: ExactLaw | None = None

    @property
    def exact(self) -> bool:
        return self.law is not None


def _task_key(point: LMRun, draws: int) -> tuple:
    return (point.model, point.prompt, point.horizon, point.reward, point.reference, point.beta, point.exact, draws,
            point.step_rule, point.decoding)


def task_settings(point: LMRun) -> dict:
    """The task's step rule and decoding, as ``generate`` and ``GenerationTask`` take them."""
    from ..lm.decoding import Decoding
    from ..lm.steps import Steps

    return {"step_rule": Steps(**json.loads(point.step_rule)) if point.step_rule else None,
            "decoding": Decoding(**json.loads(point.decoding)) if point.decoding else None}


_REFERENCES: dict[tuple, Reference] = {}
_FLOORS: dict[tuple, tuple[float, float, float]] = {}


def reference(point: LMRun, draws: int) -> Reference:
    key = _task_key(point, draws)
    if key not in _REFERENCES:
        _REFERENCES[key] = _build_reference(point, draws)
    return _REFERENCES[key]


def _build_reference(point: LMRun, draws: int) -> Reference:
    from ..lm.task import GenerationTask
    from ..logspace import logsumexp

    gen = GenerationTask(fresh_model(point.model), point.prompt, point.horizon,
                         reward_function(point.reward, point.reference), beta=point.beta, **task_settings(point))
    if point.exact:
        law = ExactLaw(gen)
        return Reference(law.log_z, law.base_reward, law.pistar_reward, law)
    rng = np.random.default_rng(REFERENCE_SEED)
    leaves = gen.sample_suffix(np.zeros(draws, dtype=np.int64), rng)
    reward = gen.rewards(leaves)
    log_tau = log_tau_of(reward, point.beta)
    log_z = float(logsumexp(log_tau) - math.log(draws))
    w = np.exp(log_tau - np.max(log_tau)) if np.isfinite(log_tau).any() else np.zeros(draws)
    pistar_reward = float(w @ reward / w.sum()) if w.sum() > 0 else float("nan")
    return Reference(log_z, float(reward.mean()), pistar_reward)


def noise_floor(point: LMRun, ref: Reference, n: int, draws: int) -> tuple[float, float, float]:
    """Mean and 95% quantile of the TV, and mean plug-in KL, of the empirical law of n exact draws from pi*."""
    key = (*_task_key(point, draws), n)
    if key not in _FLOORS:
        _FLOORS[key] = ref.law.noise_floor(n, np.random.default_rng(FLOOR_SEED + n), FLOOR_REPEATS)
    return _FLOORS[key]


def execute_lm(point: LMRun) -> dict:
    """Run one language-model task and measure it (TtsampleErrors propagate: the runner stores a run over budget
    as censored and any other as an error)."""
    from ..lm.generate import generate

    options = json.loads(point.options)
    draws = point.reference_draws
    with one_thread():
        lm = fresh_model(point.model)
        run = generate(lm, point.prompt, point.horizon, reward_function(point.reward, point.reference),
                       sampler=point.sampler, values=point.value_kind or "heuristic", rho=point.rho, beta=point.beta,
                       n=point.samples, seed=point.seed, **task_settings(point), **options)
        outcome = {"status": "ok", "delivered": int(run.result.samples.size), **run.result.ledger.as_dict()}
        outcome.update(_metrics(point, run, reference(point, draws), draws))
    return outcome


def _metrics(point: LMRun, run, ref: Reference, draws: int) -> dict:
    leaves = run.result.samples
    n = int(leaves.size)
    tokens = run.task.tokens(leaves)
    texts = run.task.text(leaves)
    distinct = list(dict.fromkeys(texts))  # each distinct text scored once, in one batch
    scored = dict(zip(distinct, run.task.score(distinct)))
    reward = np.array([scored[t] for t in texts])
    log_w = run.result.log_weights
    weighted = log_w is not None
    if weighted:  # every weight zero: zeros, and no weighted metric exists (below)
        w = normalised_weights(log_w)
        w = np.zeros(n) if w is None else w
    else:
        w = np.full(n, 1.0 / n)
    seen = run.result.diagnostics
    entry = REGISTRY[point.sampler]
    out = {
        "responses": entry.responses(run.result, n) if entry.responses is not None else None,
        "weighted": int(weighted),
        "ess": run.result.ess if weighted else float(n),
        "log_z_hat": _finite(run.result.log_z),
        "acceptance_rate": _finite(seen.get("acceptance_rate")),
        "setup_seconds": float(seen.get("values_setup", {}).get("seconds", 0.0)),
        "z": math.exp(ref.log_z),
        "z_exact": int(ref.exact),
        "base_reward": ref.base_reward,
        "pistar_reward": _finite(ref.pistar_reward),
    }
    if w.sum() <= 0:  # every weight is zero: no weighted metric exists
        return out
    live = w > 0
    mean = (lambda x: float(w @ x)) if weighted else (lambda x: float(np.mean(x)))  # unweighted: exact means
    out["mean_reward"] = mean(reward)
    out["accuracy"] = mean(reward > 0) if point.beta is None else None
    distinct = {tokens[i] for i in np.flatnonzero(live)}
    out["distinct_share"] = len(distinct) / n
    if point.beta is None:
        out["distinct_correct"] = len({tokens[i] for i in np.flatnonzero(live & (reward > 0))}) / n
        out["approved_wrong"] = _approved_wrong(run, leaves, reward, mean)
    bigrams = [tuple(tokens[i][j:j + 2]) for i in np.flatnonzero(live) for j in range(len(tokens[i]) - 1)]
    out["distinct_2"] = len(set(bigrams)) / len(bigrams) if bigrams else None
    law: dict[tuple, float] = {}
    for tok, weight in zip(tokens, w if weighted else np.ones(n)):
        if weight > 0:
            law[tok] = law.get(tok, 0.0) + float(weight)
    if not weighted:
        law = {tok: count / n for tok, count in law.items()}
    if entry.kl is not None:
        out.update(entry.kl(run.result))
    log_tau = log_tau_of(reward, point.beta)
    if not ref.exact:
        ok = np.isfinite(log_tau[live]).all() and not entry.maximiser
        out["kl_base"] = mean(np.where(live, log_tau, 0.0)) - ref.log_z if ok else None
        return out
    exact = ref.law
    idx = np.array([exact.index[tok] for tok in law])
    p = np.array(list(law.values()))
    q = exact.pi_star[idx]
    out["off_support"] = float(p[q == 0].sum())
    out["tv_pistar"] = float(0.5 * (np.abs(p - q).sum() + (1.0 - q.sum())))
    out["kl_pistar"] = float(np.sum(p * np.log(p / q))) if out["off_support"] == 0 else None
    out["kl_base"] = float(np.sum(p * (np.log(p) - exact.log_pi[idx])) - (p.size - 1) / (2 * n))
    out["kl_base_pistar"] = exact.kl_to_base()
    tv_floor, tv_q95, kl_floor = noise_floor(point, ref, n, draws)
    out.update(tv_floor=tv_floor, tv_floor_q95=tv_q95, kl_floor=kl_floor, tv_ratio=out["tv_pistar"] / tv_floor)
    exact_law = entry.exact_law(exact, run) if entry.exact_law is not None else None
    if exact_law is not None:
        law_p, dead = exact_law
        out["law_dead_mass"] = dead
        if dead == 0:
            on = law_p > 0
            out["tv_output_law"] = float(0.5 * np.abs(law_p - exact.pi_star).sum())
            out["tv_law_ratio"] = out["tv_output_law"] / tv_floor
            off = float(law_p[exact.pi_star == 0].sum())
            out["kl_pistar_law"] = (float(np.sum(law_p[on] * np.log(law_p[on] / exact.pi_star[on]))) if off == 0
                                    else None)
            out["kl_base_law"] = float(np.sum(law_p[on] * (np.log(law_p[on]) - exact.log_pi[on])))
    return out


def _approved_wrong(run, leaves, reward, mean) -> float | None:
    """The share of answers that are wrong after a prefix the PRM approved (its score at the last step end before
    the answer >= 1/2, with the run's error model on it); None unless the run's values are a PRM. Read after the
    run's ledger was taken: cached nodes are not scored again, and any that are do not count against the run."""
    from ..lm.oracle import LMOracle
    from ..lm.prm import ProcessRewardValues
    from ..oracles.error_models import ErrorModel

    base = run.oracle
    while isinstance(base, ErrorModel):  # the error model on top (--rho): its base holds the values
        base = base.base
    if not (isinstance(base, LMOracle) and isinstance(base.values, ProcessRewardValues)):
        return None
    approved = np.exp(run.oracle.log_values(run.task.tree.parent(leaves))) >= 0.5  # as the sampler saw them
    return mean((reward <= 0) & approved)


def _finite(x):
    return None if x is None or not np.isfinite(x) else float(x)
