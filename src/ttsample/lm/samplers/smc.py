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
from ...logspace import effective_sample_size, logsumexp
from ...samplers.base import Progress, SampleResult, check_sample_count
from ...trees import trie
from ..task import draw_children_of
from .base import Budget, Interrupted, lm_run
from .outcome_rs import leaf_log_tau

RESAMPLING = ("multinomial", "systematic")


def resample(rng: np.random.Generator, log_w: np.ndarray, m: int, method: str) -> np.ndarray:
    """``m`` indices drawn with probabilities ``∝ exp(log_w)``: independently, or by one stratified comb."""
    w = np.exp(log_w - np.max(log_w))
    cdf = np.cumsum(w)
    cdf /= cdf[-1]
    u = rng.random(m) if method == "multinomial" else (rng.random() + np.arange(m)) / m
    return np.minimum(np.searchsorted(cdf, u, side="right"), log_w.size - 1)


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
    ``result.log_z``: ``log Z_hat``; ``result.ess``: the ESS of the output's
    ``log_weights``. ``params``: ``particles``, ``twist``, ``resampling``,
    ``ess_threshold``; ``diagnostics``: ``ess_steps`` (ESS after each step's
    reweighting, before any resampling, in particles), ``log_z_steps`` (after
    step ``t``, the estimate of the mass ``sum pi_ref(v) psi(v)`` over the
    nodes at depth ``t`` and the leaves above, ``psi = tau`` at a leaf; its
    last entry is ``log_z``), ``resampled_at`` (the
    steps after which the particles were resampled, counted from 1). Ledger:
    ``steps`` = particle extensions (tokens decoded), queries as asked of the
    oracle (twisted only).
    """
    size = _check_options(n, particles, twist, oracle, task, resampling, ess_threshold)
    try:
        return _run([task], oracle if twist else None, n, size, rng, resampling, ess_threshold, budget, progress)[0]
    except Interrupted as exc:
        raise Interrupted(exc.partial[0]) from None


def sample_smc_prompts(tasks: list, n: int, rng: np.random.Generator, *, particles: int | None = None,
                       twist: bool = False, resampling: str = "multinomial", ess_threshold: float = 0.5,
                       budget: Budget | None = None, progress: Progress | None = None) -> list[SampleResult]:
    """Plain SMC for several prompts (generation tasks on one model) side by side: each step draws every prompt's
    particles in one model call. Each prompt has its own particles, weights and resampling; the results share
    one ledger, the batch's. One prompt gives exactly ``sample_smc``'s run. (Twisted SMC reads values, one
    prompt at a time.)"""
    if not tasks:
        raise ParameterError("SMC needs at least one generation task (prompt)")
    if twist:
        raise ParameterError("twisted SMC reads each prompt's values: run it one prompt at a time")
    size = _check_options(n, particles, False, None, tasks[0], resampling, ess_threshold)
    return _run(tasks, None, n, size, rng, resampling, ess_threshold, budget, progress)


class _Particles:
    """One prompt's particles between steps: nodes, log-weights, and the traces its result reports."""

    def __init__(self, task, size: int, log_w0: float):
        self.task, self.size = task, size
        self.nodes = np.zeros(size, dtype=np.int64)
        self.log_w = np.full(size, log_w0)
        self.cache: dict = {}
        self.ess: list[float] = []
        self.log_z_steps: list[float] = []
        self.resampled_at: list[int] = []
        self.step = 0
        self.active = np.flatnonzero(~task.tree.is_leaf(self.nodes))

    def move(self, child: np.ndarray, incr: np.ndarray, leaf_psi, rng, resampling: str, ess_threshold: float,
             ledger) -> None:
        """The active particles move to ``child`` with incremental log-weights ``incr``; one that reached a leaf
        gains ``log tau`` (less ``leaf_psi(at)``, the twisted step's ``log psi(y)``, where given); then the traces
        and, if the ESS fell below the threshold while particles are unfinished, resampling."""
        tree = self.task.tree
        self.step += 1
        done = np.flatnonzero(tree.is_leaf(child))
        if done.size:
            log_tau = leaf_log_tau(self.task, child[done], self.cache)
            if leaf_psi is not None:  # the final factor tau / psi
                with np.errstate(invalid="ignore"):
                    incr[done] += log_tau - leaf_psi(done)
            else:
                incr[done] += log_tau
        self.nodes[self.active] = child
        old = self.log_w[self.active]
        with np.errstate(invalid="ignore"):
            new = old + incr
        self.log_w[self.active] = np.where(np.isneginf(old) | np.isnan(new), -np.inf, new)  # a dead particle stays dead
        ledger.steps += int(self.active.size)
        self.active = np.flatnonzero(~tree.is_leaf(self.nodes))
        ess = effective_sample_size(self.log_w)
        self.ess.append(ess)
        self.log_z_steps.append(float(logsumexp(self.log_w) - math.log(self.size)))
        if self.active.size and 0.0 < ess < ess_threshold * self.size:
            picked = resample(rng, self.log_w, self.size, resampling)
            self.nodes = self.nodes[picked]
            self.log_w = np.full(self.size, logsumexp(self.log_w) - math.log(self.size))
            self.resampled_at.append(self.step)
            self.active = np.flatnonzero(~tree.is_leaf(self.nodes))

    def progress(self) -> float:
        return min(self.step / self.task.horizon, 1.0) if self.active.size else 1.0

    def final(self, n: int, rng, resampling: str) -> tuple[np.ndarray, np.ndarray, float]:
        """The samples, their log-weights and ``log Z_hat``: the particles themselves, or ``n`` drawn by weight."""
        log_z = float(logsumexp(self.log_w) - math.log(self.size))
        if self.size == n:
            return self.nodes, self.log_w, log_z
        if np.isfinite(log_z):
            return self.nodes[resample(rng, self.log_w, n, resampling)], np.full(n, log_z), log_z
        return self.nodes[:n], np.full(n, -np.inf), log_z  # every weight is zero: nothing to draw by weight


def _twisted_step(task, counted, v: np.ndarray, rng):
    """Twisted proposals from ``v``: children, incremental log-weights, and the final factor's ``log psi`` at a
    leaf (None where the proposal is ``pi_ref``, whose incremental weight already holds ``tau``)."""
    tree = task.tree
    incr = np.zeros(v.size)
    if tree.branching > trie.MAX_CHILDREN_BRANCHING:  # the twist in the targets, proposals from pi_ref
        child, log_q = counted.propose_child(v, rng)
        with np.errstate(invalid="ignore"):
            incr += counted.log_weight(child) - counted.log_weight(v) - log_q
        return child, incr, None
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
    return child, incr, lambda at: log_w_child[at] - task.log_pi_ref(child[at])  # psi(y) = w(y) / pi_ref(y)


def _run(tasks: list, oracle, n: int, size: int, rng, resampling: str, ess_threshold: float, budget,
         progress) -> list[SampleResult]:
    """SMC on each task (twisted by ``oracle`` when given: one task), in lockstep; one result per task."""
    twist = oracle is not None
    finals = []
    with lm_run(tasks[0], oracle, budget, progress) as run:
        ledger, counted = run.ledger, run.oracle
        log_w0 = counted.log_weight(np.zeros(1, dtype=np.int64))[0] if twist else 0.0
        states = [_Particles(task, size, log_w0) for task in tasks]
        while any(p.active.size for p in states):
            moving = [p for p in states if p.active.size]
            if twist:
                (p,) = moving
                child, incr, leaf_psi = _twisted_step(p.task, counted, p.nodes[p.active], rng)
                p.move(child, incr, leaf_psi, rng, resampling, ess_threshold, ledger)
            else:
                drawn = draw_children_of([p.task for p in moving], [p.nodes[p.active] for p in moving], rng)
                for p, (child, _) in zip(moving, drawn):
                    p.move(child, np.zeros(child.size), None, rng, resampling, ess_threshold, ledger)
            run.progress(n * float(np.mean([p.progress() for p in states])), n)
        finals = [p.final(n, rng, resampling) for p in states]
    results = []
    for p in states if finals else []:
        samples, weights, log_z = finals[len(results)]
        params = {"particles": size, "twist": twist, "resampling": resampling, "ess_threshold": float(ess_threshold),
                  **({"prompts": len(tasks)} if len(tasks) > 1 else {})}
        seen = {"ess_steps": np.array(p.ess), "log_z_steps": np.array(p.log_z_steps), "resampled_at": p.resampled_at}
        results.append(SampleResult(samples, ledger, params, seen, log_weights=weights, weighted=size == n,
                                    log_z=log_z))
    if run.stopped:  # the particles had not all reached a leaf: no sample
        results = [SampleResult(np.empty(0, dtype=np.int64), ledger, {"particles": size, "twist": twist},
                                stopped=run.stopped) for _ in tasks]
        if run.stopped == "interrupted":
            raise Interrupted(results)
    return results
