"""VGB: value-guided sampling with stochastic backtracking (Rohatgi et al. 2025), on a generation task.

The Sinclair–Jerrum walk with ``w(v) = pi_ref(v) V_hat(v)`` and ``w(x) =
pi_ref(x) tau(x)`` at leaves (ALGORITHMS.md §4), with the lab's leaf boost
(``K = 2H``) and restart rule: the dense kernel (every child's weight each
step) for vocabularies up to ``DENSE_MAX_BRANCHING`` tokens, the proposal
kernel (one child drawn from ``pi_ref``, accepted by the value ratio) beyond;
``kernel`` overrides the choice. Whatever the value errors, the stationary law
conditioned on a leaf is exactly ``pi*`` (proven for the dense kernel; ours,
checked exactly, for the proposal kernel); at finite ``T`` the output law is
measured, not assumed.
"""

from __future__ import annotations

import numpy as np

from ...errors import BudgetExhaustedError, ParameterError
from ...samplers.base import Progress, SampleResult
from ...samplers.walk import KERNELS, sample_walk

DENSE_MAX_BRANCHING = 64  # beyond this, asking every child each step costs more than drawing one


def choose_kernel(task, kernel: str = "auto") -> str:
    if kernel == "auto":
        return "dense" if task.tree.branching <= DENSE_MAX_BRANCHING else "proposal"
    if kernel not in KERNELS:
        raise ParameterError(f"unknown walk kernel {kernel!r}; choose auto, {', '.join(KERNELS)}")
    return kernel


def sample_vgb(task, oracle, n_samples: int, rng: np.random.Generator, *, kernel: str = "auto",
               steps: int | None = None, leaf_boost: float | None = None, max_queries: float | None = None,
               progress: Progress | None = None) -> SampleResult:
    """``n_samples`` leaves of ``task.tree`` by VGB; ``oracle`` answers ``pi_ref V_hat`` (an ``LMOracle``, possibly noisy)."""
    if oracle is None:
        raise ParameterError("VGB needs values: pass an LMOracle(task, values)")
    boost = 2.0 * task.horizon if leaf_boost is None else leaf_boost
    try:
        return sample_walk(oracle, n_samples, rng, steps=steps, leaf_boost=boost, kernel=choose_kernel(task, kernel),
                           max_queries=max_queries, progress=progress)
    except BudgetExhaustedError as exc:  # the lab walk names itself and the lab's flag: say what the user ran
        raise BudgetExhaustedError(
            f"VGB used {exc.ledger.queries_total:,} queries, over max_queries = {max_queries:,.0f}; raise it "
            "(ttsample generate: --set max_queries=N) or ask for fewer samples", exc.ledger) from None
