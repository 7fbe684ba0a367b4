"""ActionLevelRS: token-level guided decoding, the VGB walk without its parent move.

From the root, each step moves to a child ``c`` with probability
``w(c) / sum_c' w(c')`` where ``w = pi_ref V_hat`` (``pi_ref(c | v) V_hat(c)``
renormalised), until a leaf. Exact when ``V_hat = V*`` (then the children's
weights sum to the parent's); with errors it compounds them: a single
``(1 + eps)`` perturbed action gives a total-variation error of order
``min(eps sqrt(H), 1)`` and a delayed value degrades it to ``pi_ref`` (the
VGB paper's error-amplification examples; measured in the tests).

Small vocabularies list every child (the oracle's ``children``). Large ones
draw a child from ``pi_ref`` and accept it with ``V_hat(c) / M``, where
``M = exp(max_log_value)`` bounds the values (1 by default: values of a
constraint are probabilities); a value above the bound is an error.
"""

from __future__ import annotations

import numpy as np

from ...errors import BudgetExhaustedError, OracleBoundError, ParameterError
from ...samplers.base import Progress, SampleResult, categorical, check_sample_count
from .base import Budget, lm_run
from .vgb import DENSE_MAX_BRANCHING


def sample_action_rs(task, oracle, n_samples: int, rng: np.random.Generator, *, max_log_value: float = 0.0,
                     max_tries_per_step: int = 10_000, budget: Budget | None = None,
                     progress: Progress | None = None) -> SampleResult:
    n_samples = check_sample_count(n_samples)
    if oracle is None:
        raise ParameterError("ActionLevelRS needs values: pass an LMOracle(task, values)")
    tree = task.tree
    with lm_run(task, oracle, budget, progress) as run:
        ledger, counted = run.ledger, run.oracle
        nodes = np.zeros(n_samples, dtype=np.int64)
        going = np.flatnonzero(~tree.is_leaf(nodes))
        depth = 0
        while going.size:
            if tree.branching <= DENSE_MAX_BRANCHING:
                kids, log_w = counted.children(nodes[going])
                top = log_w.max(axis=1, keepdims=True)
                if np.isneginf(top).any():
                    raise OracleBoundError("every child of a node a chain reached has weight zero: the values are inconsistent")
                pick = categorical(rng, np.exp(log_w - top).T)
                nodes[going] = kids[np.arange(going.size), pick]
            else:
                nodes[going] = _draw_accepted(task, counted, nodes[going], rng, max_log_value, max_tries_per_step, ledger)
            ledger.steps += going.size
            going = going[~tree.is_leaf(nodes[going])]
            depth += 1
            run.progress(n_samples * depth / task.horizon if going.size else n_samples, n_samples)  # done: no stop
    params = {"kernel": "dense" if tree.branching <= DENSE_MAX_BRANCHING else "proposal"}
    # every chain descends at once, and those at a leaf first are the short responses: a partial set would be biased
    return run.finish(SampleResult(np.empty(0, dtype=np.int64) if run.stopped else nodes, ledger, params))


def _draw_accepted(task, oracle, parents, rng, max_log_value, max_tries, ledger) -> np.ndarray:
    """One child per parent: proposals from pi_ref, accepted with V_hat(c) / M."""
    out = np.full(parents.size, -1, dtype=np.int64)
    waiting = np.arange(parents.size)
    for _ in range(max_tries):
        kids, log_q = oracle.propose_child(parents[waiting], rng)
        log_v = oracle.log_weight(kids) - task.log_pi_ref(kids)
        if np.any(log_v > max_log_value + 1e-9):
            raise OracleBoundError(f"a value exceeded the bound exp({max_log_value}) that ActionLevelRS accepts against "
                                   "(values of a tilt or of a noisy oracle can exceed 1); raise max_log_value "
                                   "(ttsample generate: --set max_log_value=X)")
        accept = np.log(rng.random(waiting.size)) < log_v - max_log_value
        ledger.record_tries(waiting.size, int(accept.sum()), int(accept.sum()))
        out[waiting[accept]] = kids[accept]
        waiting = waiting[~accept]
        if not waiting.size:
            return out
    raise BudgetExhaustedError(f"ActionLevelRS: {waiting.size} chains drew {max_tries} children in a row without "
                               "acceptance; the values are near zero below every proposal", ledger)
