"""Best-of-n: each output is the highest-reward response among ``candidates`` draws from ``pi_ref``.

Not a sampler of ``pi*``: a reward maximiser, the usual baseline. Its output
law is ``pi_ref`` pushed towards high reward; its KL to ``pi_ref`` is at most
``log k - (k - 1) / k`` for ``k`` candidates (ALGORITHMS.md §8). With
``candidates=1`` it is plain decoding from ``pi_ref``.

The reward compared is ``beta * log tau`` = ``r`` for a tilt and ``tau`` =
``1{r > 0}`` for a constraint (so among constraint candidates every valid one
ties); ties go to the first candidate drawn. All ``n * candidates`` responses
are decoded together (one ``task.sample_suffix`` call per batch); the reward is
called once per distinct response. No oracle is asked.
"""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError
from ...samplers.base import Progress, SampleResult, check_sample_count
from ..task import sample_suffixes
from .base import Budget, Interrupted, lm_run
from .outcome_rs import leaf_log_tau

MAX_BATCH = 1 << 14  # responses decoded per sample_suffix call


def sample_best_of_n(task, oracle, n: int, rng: np.random.Generator, *, candidates: int = 8,
                     budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n`` outputs, each the best of ``candidates`` fresh ``pi_ref`` responses (first of the best on ties).

    ``oracle`` is not used (``None`` is fine). ``params["num_candidates"]``: k;
    ``diagnostics["candidates"]``: for each output, the list of ``(leaf
    handle, reward)`` of its candidates in draw order (reward as in the module
    docstring); ``diagnostics["rewards"]``: the outputs' rewards. Ledger: tries = ``n * candidates``, restarts = the
    candidates not chosen, ``steps`` = tokens decoded.
    """
    try:
        return sample_best_of_n_prompts([task], n, rng, candidates=candidates, budget=budget, progress=progress)[0]
    except Interrupted as exc:
        raise Interrupted(exc.partial[0]) from None


def sample_best_of_n_prompts(tasks: list, n: int, rng: np.random.Generator, *, candidates: int = 8,
                             budget: Budget | None = None, progress: Progress | None = None) -> list[SampleResult]:
    """Best-of-n for several prompts (generation tasks on one model) side by side: each batch decodes every
    prompt's candidates together (``sample_suffixes``: one model call per token position for all of them).

    Returns one result per task, in order; they share one ledger, the batch's (its costs are for all prompts
    together). One prompt gives exactly ``sample_best_of_n``'s run.
    """
    n = check_sample_count(n)
    if not tasks:
        raise ParameterError("best-of-n needs at least one generation task (prompt)")
    if not isinstance(candidates, (int, np.integer)) or candidates < 1:
        raise ParameterError(f"candidates must be an integer >= 1, got {candidates!r}")
    k, prompts = int(candidates), len(tasks)
    caches: list[dict] = [{} for _ in tasks]
    leaves = np.empty((prompts, n, k), dtype=np.int64)
    log_tau = np.empty((prompts, n, k))
    per_batch = max(1, MAX_BATCH // (k * prompts))  # outputs per prompt per batch
    done = 0  # outputs whose candidates are all decoded and scored, for every prompt
    with lm_run(tasks[0], None, budget, progress) as run:
        ledger = run.ledger
        for start in range(0, n, per_batch):
            stop = min(n, start + per_batch)
            roots = [np.zeros((stop - start) * k, dtype=np.int64) for _ in tasks]
            drawn = sample_suffixes(tasks, roots, rng)
            for p, task in enumerate(tasks):
                leaves[p, start:stop] = drawn[p].reshape(-1, k)
                log_tau[p, start:stop] = leaf_log_tau(task, drawn[p], caches[p]).reshape(-1, k)
                ledger.steps += int(task.tree.depth_of(drawn[p]).sum())
            done = stop
            run.progress(stop, n)
    ledger.record_tries(prompts * done * k, prompts * done, prompts * done)
    results = []
    for p, task in enumerate(tasks):
        mine, lt = leaves[p, :done], log_tau[p, :done]
        reward = np.exp(lt) if task.beta is None else task.beta * lt
        best = np.argmax(reward, axis=1)  # the first maximum: ties go to the first candidate drawn
        rows = np.arange(done)
        params = {"num_candidates": k, **({"prompts": prompts} if prompts > 1 else {})}
        seen = {"candidates": [list(zip(mine[i].tolist(), reward[i].tolist())) for i in range(done)],
                "rewards": reward[rows, best]}
        results.append(SampleResult(mine[rows, best], ledger, params, seen, stopped=run.stopped))
    if run.stopped == "interrupted":
        raise Interrupted(results)
    return results
