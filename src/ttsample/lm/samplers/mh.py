"""Metropolis–Hastings over whole responses, QUEST-style (ALGORITHMS.md §8).

The state is a response ``y`` (a leaf). A step picks a cut point ``t``
uniformly in ``[0, |y|)`` (``|y|`` = tokens after the prompt, ``<eos>``
included), keeps ``y``'s first ``t`` tokens and regenerates the rest from
``pi_ref``, giving ``y'``, then accepts with probability
``min(1, tau(y') |y| / (tau(y) |y'|))``.

Why this ratio: take ``t`` as part of the move. From ``y`` the move ``t``
proposes ``y'`` with probability ``(1/|y|) pi_ref(y'_{>=t} | y_{<t})``; from
``y'`` the same ``t`` (possible: ``|y'| > t``) proposes ``y`` back with
``(1/|y'|) pi_ref(y_{>=t} | y_{<t})``. Since ``pi_ref(y) = pi_ref(y_{<t})
pi_ref(y_{>=t} | y_{<t})``, the Hastings ratio
``pi*(y') q_t(y | y') / (pi*(y) q_t(y' | y))`` is
``tau(y') pi_ref(y_{<t}) pi_ref(y'_{>=t}|.) pi_ref(y_{>=t}|.) / |y'|`` over
``tau(y) pi_ref(y_{<t}) pi_ref(y_{>=t}|.) pi_ref(y'_{>=t}|.) / |y|``: every
``pi_ref`` factor cancels and ``tau(y') |y| / (tau(y) |y'|)`` is left. Each
move ``t`` is then reversible with respect to ``pi*``, and so is their mixture.

What is exact and what is not: ``pi*`` is the chain's stationary law and the
chain is irreducible on the support of ``tau`` (cut point 0 redraws a whole
response), so a state's law tends to ``pi*``; after finitely many steps it is
not exactly ``pi*`` (the burn-in bounds the bias, not to zero). A constraint
task starts each chain from the first valid response among ``pi_ref`` draws
(an exact draw from ``pi*``, so its chains start stationary); a tilt starts
from one ``pi_ref`` draw. All chains move together: one ``task.sample_suffix``
call per step. No oracle is asked; the reward is called once per distinct
response.
"""

from __future__ import annotations

import math

import numpy as np

from ...errors import BudgetExhaustedError, ParameterError
from ...samplers.base import Progress, SampleResult, check_sample_count
from .base import Budget, lm_run
from .outcome_rs import leaf_log_tau

INIT_TRIES_PER_CHAIN = 1000  # default budget of pi_ref draws per chain for a valid start


def log_acceptance(log_tau_new: np.ndarray, log_tau_old: np.ndarray, len_new: np.ndarray,
                   len_old: np.ndarray) -> np.ndarray:
    """``log min(1, tau(y') |y| / (tau(y) |y'|))``; ``-inf`` where ``tau(y') = 0``."""
    with np.errstate(invalid="ignore"):
        log_ratio = log_tau_new - log_tau_old + np.log(len_old) - np.log(len_new)
    return np.minimum(0.0, np.where(np.isneginf(log_tau_new), -np.inf, log_ratio))


def ancestors_at(tree, nodes: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """The ancestor of each node at the given depth (the node itself where it is that deep)."""
    out = np.asarray(nodes, dtype=np.int64).copy()
    up = np.flatnonzero(tree.depth_of(out) > depth)
    while up.size:
        out[up] = tree.parent(out[up])
        up = up[tree.depth_of(out[up]) > depth[up]]
    return out


def _check_int(name: str, value, low: int) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise ParameterError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _initial_states(task, chains: int, rng, ledger, cache: dict, max_tries: int) -> tuple[np.ndarray, np.ndarray, int]:
    """One response per chain with ``tau > 0``: ``pi_ref`` draws until each chain has one (tries counted)."""
    states = np.full(chains, -1, dtype=np.int64)
    log_tau = np.full(chains, -np.inf)
    tries = valid = 0
    need = np.arange(chains)
    while need.size:
        rate = (valid + 1) / (tries + 1)
        m = min(max_tries - tries, need.size if not tries else int(math.ceil(1.2 * need.size / rate)), 1 << 14)
        if m <= 0:
            raise BudgetExhaustedError(
                f"MH needs a start with tau > 0 for each of its {chains} chains: {tries} responses from pi_ref gave "
                f"{valid} (a rate of {valid / tries:.3g}), short of the {chains} needed within max_init_tries = "
                f"{max_tries}; raise max_init_tries or run fewer chains",
                ledger,
            )
        drawn = task.sample_suffix(np.zeros(m, dtype=np.int64), rng)
        lt = leaf_log_tau(task, drawn, cache)
        ok = np.flatnonzero(np.isfinite(lt))
        take = ok[: need.size]
        states[need[: take.size]], log_tau[need[: take.size]] = drawn[take], lt[take]
        ledger.steps += int(task.tree.depth_of(drawn).sum())
        ledger.record_tries(m, ok.size, take.size)
        tries, valid = tries + m, valid + ok.size
        need = need[take.size:]
    return states, log_tau, tries


def sample_mh(task, oracle, n: int, rng: np.random.Generator, *, chains: int | None = None,
              burn_in: int | None = None, thin: int = 1, max_init_tries: int | None = None,
              budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n`` states of ``chains`` (default ``n``) independent MH chains over responses.

    Each chain runs ``burn_in`` steps (default ``10 * horizon``), then its
    state is recorded every ``thin`` steps until ``n`` states are recorded in
    all: samples are ordered round by round (the chains' states after
    ``burn_in`` steps, then after ``burn_in + thin``, ...), the last round cut
    to ``n``. With ``chains = n`` (the default) the samples are the final
    states of ``n`` independent chains, each after ``burn_in`` steps.
    ``max_init_tries``: budget of ``pi_ref`` draws for valid starts (default
    ``1000 * chains``), else ``BudgetExhaustedError``. ``oracle`` is not used.
    ``params``: ``chains``, ``burn_in``, ``thin``; ``diagnostics``:
    ``acceptance_rate`` (accepted / proposed, burn-in included), ``chain``
    (the states of the first chain at every step, start included),
    ``init_tries``. Ledger: ``steps`` = chain
    steps plus tokens decoded for the starts; ``tries``/``restarts`` = the
    start draws and those with ``tau = 0``.
    """
    n = check_sample_count(n)
    chains = n if chains is None else _check_int("chains", chains, 1)
    burn_in = 10 * task.horizon if burn_in is None else _check_int("burn_in", burn_in, 0)
    thin = _check_int("thin", thin, 1)
    max_init_tries = (INIT_TRIES_PER_CHAIN * chains if max_init_tries is None
                      else _check_int("max_init_tries", max_init_tries, 1))
    rounds = -(-n // chains)
    total = burn_in + thin * (rounds - 1)
    tree = task.tree
    cache: dict = {}
    recorded: list[np.ndarray] = []
    with lm_run(task, oracle, budget, progress) as run:
        ledger = run.ledger
        states, log_tau, init_tries = _initial_states(task, chains, rng, ledger, cache, max_init_tries)
        trajectory = [int(states[0])]
        accepted = 0
        for step in range(total + 1):
            if step >= burn_in and (step - burn_in) % thin == 0:
                recorded.append(states.copy())
            if step == total:
                break
            length = tree.depth_of(states)
            cut = np.floor(rng.random(chains) * length).astype(np.int64)  # uniform in [0, |y|)
            proposal = task.sample_suffix(ancestors_at(tree, states, cut), rng)
            log_tau_new = leaf_log_tau(task, proposal, cache)
            accept = rng.random(chains) < np.exp(log_acceptance(log_tau_new, log_tau, tree.depth_of(proposal), length))
            states = np.where(accept, proposal, states)
            log_tau = np.where(accept, log_tau_new, log_tau)
            accepted += int(accept.sum())
            ledger.steps += chains
            trajectory.append(int(states[0]))
            run.progress(n * (step + 1) / total, n)
    params = {"chains": chains, "burn_in": burn_in, "thin": thin}
    if run.stopped:  # a state recorded before the run's end is not a draw of the chain that was asked for
        return run.finish(SampleResult(np.empty(0, dtype=np.int64), ledger, params))
    seen = {"acceptance_rate": accepted / (chains * total) if total else float("nan"),
            "chain": np.array(trajectory, dtype=np.int64), "init_tries": init_tries}
    return run.finish(SampleResult(np.concatenate(recorded)[:n], ledger, params, seen))
