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

from ...errors import ParameterError
from ...samplers.base import Progress, SampleResult
from ...samplers.chains import adapt_steps, sample_with_restarts
from ...samplers.walk import KERNELS, node_walk
from .base import Budget, lm_run

DENSE_MAX_BRANCHING = 64  # beyond this, asking every child each step costs more than drawing one


def choose_kernel(task, kernel: str = "auto") -> str:
    if kernel == "auto":
        return "dense" if task.tree.branching <= DENSE_MAX_BRANCHING else "proposal"
    if kernel not in KERNELS:
        raise ParameterError(f"unknown walk kernel {kernel!r}; choose auto, {', '.join(KERNELS)}")
    return kernel


def sample_vgb(task, oracle, n_samples: int, rng: np.random.Generator, *, kernel: str = "auto",
               steps: int | str | None = None, leaf_boost: float | None = None, adapt_chains: int = 2048,
               budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n_samples`` leaves of ``task.tree`` by VGB; ``oracle`` answers ``pi_ref V_hat`` (an ``LMOracle``, possibly noisy).

    ``steps``: the walk length T (default: the lab's calibrated schedule for
    the dense kernel), or ``"auto"``: doubled from a quarter of the default
    until ``adapt_chains`` pilot chains look mixed (``adapt_steps``), at most
    8 times the default (``diagnostics["steps_trace"]``); ``leaf_boost``: K (default
    ``2H``). A run stopped by the budget or Ctrl-C keeps the leaves of the
    rounds of chains it completed.
    """
    if oracle is None:
        raise ParameterError("VGB needs values: pass an LMOracle(task, values)")
    if isinstance(steps, str) and steps != "auto":
        raise ParameterError(f"steps must be an integer >= 1 or 'auto', got {steps!r}")
    kernel = choose_kernel(task, kernel)
    adapt = steps == "auto"
    walk, steps = node_walk(oracle, kernel, 2.0 * task.tree.depth if leaf_boost is None else leaf_boost,
                            None if adapt else steps)
    kept: list[np.ndarray] = []
    seen: dict = {}
    with lm_run(task, oracle, budget, progress) as run:
        if adapt:
            steps, seen["steps_trace"] = adapt_steps(walk, run.oracle, -(-steps // 4), 8 * steps, adapt_chains,
                                                     rng, run.ledger, run.progress)
        # batched from the first round: one chain at a time (the lab's way to price a first sample) costs T
        # sequential model calls per chain, minutes per sample at long horizons
        sample_with_restarts(walk, run.oracle, n_samples, steps, rng, run.ledger,
                             progress=run.progress, kept=kept, alone_tries=0)
    leaves = np.concatenate(kept) if kept else np.empty(0, dtype=np.int64)
    params = {"steps": int(steps), "leaf_boost": walk.leaf_boost, "kernel": kernel}
    return run.finish(SampleResult(oracle.tree.leaf_index(leaves), run.ledger, params, seen))
