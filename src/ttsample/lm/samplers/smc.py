"""Sequential Monte Carlo over responses, plain or twisted (ALGORITHMS.md §6).

``N`` particles start at the root and extend one token per step until each
reaches a leaf (``<eos>`` or the horizon); a particle at a leaf stays there
and keeps its weight. With a twist ``psi`` the intermediate targets are
``gamma(v) = pi_ref(v) psi(v)`` (``psi = tau`` at leaves):

- plain (``twist=False``, ``psi = 1`` inside the tree): propose ``a ~ pi_ref(.|v)``;
  the incremental weight is 1 inside the tree and ``tau(y)`` on reaching a leaf;
- twisted (``twist=True``, Zhao et al. 2024): ``psi = V_hat`` read from the
  oracle, ``psi(v) = exp(oracle.log_weight(v) - log pi_ref(v))``; propose
  ``a ∝ pi_ref(a|v) psi(v,a)``, incremental weight
  ``sum_a pi_ref(a|v) psi(v,a) / psi(v)``, times ``tau(y) / psi(y)`` on reaching
  a leaf (1 when the oracle is exact at leaves, as the protocol asks). This
  step lists every child of each particle (``oracle.children``): vocabularies
  of at most ``MAX_CHILDREN_BRANCHING`` tokens. Beyond, the twist stays in the
  targets and the proposal is ``pi_ref`` (``oracle.propose_child``): the
  incremental weight is ``psi(v, a) / psi(v)``, which at a leaf already holds
  ``tau``. The initial weight is ``psi(root)`` either way.

After each step, if the effective sample size ``ESS = (sum w)^2 / sum w^2``
falls below ``ess_threshold * N`` while particles are still unfinished, the
particles are resampled (multinomial or systematic) and each gets the mean
weight. The weights stay unnormalised on the scale where their mean is the
estimate ``Z_hat`` of ``Z = E_pi_ref[tau] = V*(root)``; ``Z_hat`` is unbiased
(the weighted particle measure is a martingale through both the moves and the
resampling, whatever the resampling times), ``log Z_hat`` is not.

What is exact and what is not: the output is a *weighted* particle set. The
self-normalised estimate ``sum_i w_i f(y_i) / sum_i w_i`` of ``E_pi*[f]`` is
consistent as ``N`` grows but biased at finite ``N`` (bias ``O(1/N)``), so one
particle drawn by its weight is not an exact draw from ``pi*``. The exception
is the perfect twist ``psi = V*``: every incremental weight is 1, every
particle has weight ``Z`` and ESS stays ``N``, the particles are independent
exact draws from ``pi*`` and ``log Z_hat = log Z`` on every run.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import ParameterError
from ...logspace import logsumexp
from ...samplers.base import Progress, SampleResult, check_sample_count
from ...trees import trie
from .base import Budget, lm_run
from .outcome_rs import leaf_log_tau

RESAMPLING = ("multinomial", "systematic")


def resample(rng: np.random.Generator, log_w: np.ndarray, m: int, method: str) -> np.ndarray:
    """``m`` indices drawn with probabilities ``∝ exp(log_w)``: independently, or by one stratified comb."""
    w = np.exp(log_w - np.max(log_w))
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    u = rng.random(m) if method == "multinomial" else (rng.random() + np.arange(m)) / m
    return np.minimum(np.searchsorted(cdf, u, side="right"), log_w.size - 1)


def effective_sample_size(log_w: np.ndarray) -> float:
    if not np.isfinite(log_w).any():
        return 0.0
    w = np.exp(log_w - np.max(log_w))
    return float(w.sum() ** 2 / np.sum(w**2))


def _check_options(n, particles, twist, oracle, task, resampling, ess_threshold) -> int:
    n = check_sample_count(n)
    if particles is None:
        particles = n
    if not isinstance(particles, (int, np.integer)) or particles < n:
        raise ParameterError(
            f"particles must be an integer >= n = {n} (the draws returned come from one run's particles), "
            f"got {particles!r}"
        )
    if resampling not in RESAMPLING:
        raise ParameterError(f"resampling must be one of {', '.join(RESAMPLING)}, got {resampling!r}")
    if not isinstance(ess_threshold, (int, float, np.integer, np.floating)) or not 0.0 <= ess_threshold <= 1.0:
        raise ParameterError(f"ess_threshold must be a number in [0, 1] (0: never resample), got {ess_threshold!r}")
    if not isinstance(twist, (bool, np.bool_)):
        raise ParameterError(f"twist must be True or False, got {twist!r}")
    if twist:
        if oracle is None:
            raise ParameterError("twisted SMC reads its twist psi = V_hat from the oracle: pass an LMOracle")
    return int(particles)


def sample_smc(task, oracle, n: int, rng: np.random.Generator, *, particles: int | None = None, twist: bool = False,
               resampling: str = "multinomial", ess_threshold: float = 0.5, budget: Budget | None = None,
               progress: Progress | None = None) -> SampleResult:
    """One SMC run with ``particles`` (default ``n``) particles; ``n`` of them returned, with weights.

    With ``particles == n`` the samples are the run's final particles and
    ``log_weights`` their unnormalised log-weights (their mean, in linear
    scale, is ``Z_hat``): a weighted set (``result.weighted``), not draws;
    with ``particles > n`` the samples are ``n`` draws from the final weighted
    set (by ``resampling``) and each carries ``log Z_hat``. ``oracle``: needed only with ``twist=True``.
    ``info``: ``log_z`` (``log Z_hat``), ``ess`` (ESS after each step's
    reweighting, before any resampling, in particles), ``log_z_steps`` (after
    step ``t``, the estimate of the mass ``sum pi_ref(v) psi(v)`` over the
    nodes at depth ``t`` and the leaves above, ``psi = tau`` at a leaf; its
    last entry is ``log_z``), ``resampled_at`` (the
    steps after which the particles were resampled, counted from 1),
    ``particles``, ``twist``, ``resampling``, ``ess_threshold``. Ledger:
    ``steps`` = particle extensions (tokens decoded), queries as asked of the
    oracle (twisted only).
    """
    size = _check_options(n, particles, twist, oracle, task, resampling, ess_threshold)
    tree = task.tree
    cache: dict = {}
    ess_trace: list[float] = []
    log_z_trace: list[float] = []
    resampled_at: list[int] = []
    with lm_run(task, oracle if twist else None, budget, progress) as run:
        ledger, counted = run.ledger, run.oracle
        nodes = np.zeros(size, dtype=np.int64)
        log_w = np.full(size, counted.log_weight(np.zeros(1, dtype=np.int64))[0] if twist else 0.0)
        step = 0
        active = np.flatnonzero(~tree.is_leaf(nodes))
        while active.size:
            step += 1
            v = nodes[active]
            incr = np.zeros(active.size)
            if twist and tree.branching > trie.MAX_CHILDREN_BRANCHING:  # the twist in the targets, proposals from pi_ref
                child, log_q = counted.propose_child(v, rng)
                with np.errstate(invalid="ignore"):
                    incr += counted.log_weight(child) - counted.log_weight(v) - log_q
            elif twist:
                kids, log_wk = counted.children(v)  # log pi_ref(v, a) + log psi(v, a), shape (m, b)
                total = logsumexp(log_wk, axis=1)
                dead = np.isneginf(total)  # no child with psi > 0: move anywhere, the weight is zero already
                with np.errstate(invalid="ignore"):
                    probs = np.where(dead[:, None], 1.0, np.exp(log_wk - np.where(dead, 0.0, total)[:, None]))
                cdf = np.cumsum(probs, axis=1)
                u = 1.0 - rng.random(v.size)  # in (0, 1]: never picks a child of probability zero
                pick = np.sum(cdf < u[:, None] * cdf[:, -1:], axis=1)
                pick = np.minimum(pick, tree.branching - 1)
                rows = np.arange(v.size)
                child = kids[rows, pick]
                log_w_child = log_wk[rows, pick]
                with np.errstate(invalid="ignore"):
                    incr += total - counted.log_weight(v)  # sum_a pi_ref(a|v) psi(v,a) / psi(v)
            else:
                child, _ = task.draw_children(v, rng)
            done = np.flatnonzero(tree.is_leaf(child))
            if done.size:
                log_tau = leaf_log_tau(task, child[done], cache)
                if twist and tree.branching <= trie.MAX_CHILDREN_BRANCHING:  # the final factor tau / psi, psi(y) = w(y) / pi_ref(y)
                    with np.errstate(invalid="ignore"):
                        incr[done] += log_tau - (log_w_child[done] - task.log_pi_ref(child[done]))
                else:
                    incr[done] += log_tau
            nodes[active] = child
            old = log_w[active]
            with np.errstate(invalid="ignore"):
                new = old + incr
            log_w[active] = np.where(np.isneginf(old) | np.isnan(new), -np.inf, new)  # a dead particle stays dead
            ledger.steps += int(active.size)
            active = np.flatnonzero(~tree.is_leaf(nodes))
            ess = effective_sample_size(log_w)
            ess_trace.append(ess)
            log_z_trace.append(float(logsumexp(log_w) - math.log(size)))
            if active.size and 0.0 < ess < ess_threshold * size:
                picked = resample(rng, log_w, size, resampling)
                nodes = nodes[picked]
                log_w = np.full(size, logsumexp(log_w) - math.log(size))
                resampled_at.append(step)
                active = np.flatnonzero(~tree.is_leaf(nodes))
            run.progress(n * (min(step / task.horizon, 1.0) if active.size else 1.0), n)
        log_z = float(logsumexp(log_w) - math.log(size))
        if size == n:
            samples, weights = nodes, log_w
        elif np.isfinite(log_z):
            samples, weights = nodes[resample(rng, log_w, n, resampling)], np.full(n, log_z)
        else:  # every weight is zero: nothing to draw by weight
            samples, weights = nodes[:n], np.full(n, -np.inf)
    if run.stopped:  # the particles had not all reached a leaf: no sample
        return run.finish(SampleResult(np.empty(0, dtype=np.int64), ledger, {"particles": size, "twist": bool(twist)}))
    info = {
        "log_z": log_z,
        "ess": np.array(ess_trace),
        "log_z_steps": np.array(log_z_trace),
        "resampled_at": resampled_at,
        "particles": size,
        "twist": bool(twist),
        "resampling": resampling,
        "ess_threshold": float(ess_threshold),
    }
    return run.finish(SampleResult(samples, ledger, info, log_weights=weights, weighted=size == n))
