"""Execute the runs of a spec that the store does not hold yet, in parallel, storing each as it finishes.

Language-model runs go to the same pool (``lm_runs.execute_lm``).
Executors: ``process`` (default; one worker process per core on this machine)
and ``ray`` (optional extra ``ttsample[ray]``; pass an address to use a
cluster, none for a local Ray instance).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Iterable

from ..errors import BudgetExhaustedError, ParameterError, TtsampleError
from ..eval.exact_laws import MAX_ENUMERABLE_LEAVES, walk_best_cost
from ..registry import sampler_entry
from ..sampling import sample_once
from ..problems.classes import make_class
from ..target import bounded_tilt_target, random_target
from .spec import LMRun, Spec, LabRun
from .store import ResultStore

DELTA = 0.01  # the accuracy at which the walks' best restart-rule cost is computed
BEST_T_RANGE = 4  # ... searched over T up to this multiple of the default T (adversaries may need longer walks)


def build_problem(point: LabRun):
    """The run's target, and its class F when the family is a class (else None)."""
    if point.family == "random":
        return random_target(point.depth, point.branching, point.family_param, seed=point.seed), None
    if point.family == "bounded_tilt":
        return bounded_tilt_target(point.depth, point.branching, point.family_param, seed=point.seed), None
    target_class = make_class(point.family.split(":", 1)[1], point.depth, point.branching, point.class_size,
                              point.family_param, seed=point.seed)
    return target_class.truth, target_class


def execute_run(point: LabRun | LMRun) -> dict:
    """Execute one run; a run over budget is censored (with what it spent), one that fails is stored as an error.

    Dispatches on its kind: the lab's (a target and an oracle) or a language model's (``lm_runs``).
    """
    try:
        if isinstance(point, LMRun):
            from .lm_runs import execute_lm

            return execute_lm(point)
        return _execute(point)
    except BudgetExhaustedError as exc:  # censored: stopped at max_queries, with what it had spent
        spent = exc.ledger.as_dict() if exc.ledger is not None else {}
        return {"status": "budget", "delivered": 0, **spent}
    except TtsampleError as exc:  # one bad grid point must not take the rest of the sweep with it
        return {"status": "error", "delivered": 0, "error": f"{type(exc).__name__}: {exc}"}


def _execute(point: LabRun) -> dict:
    target, target_class = build_problem(point)
    exact = target.tree.num_leaves <= MAX_ENUMERABLE_LEAVES
    run = sample_once(target, point.sampler, point.samples, oracle=point.oracle, rho=point.rho, seed=point.seed,
                      max_queries=point.max_queries, exact=exact, target_class=target_class)
    outcome = {
        "status": "ok",
        "delivered": int(run.result.samples.size),
        **run.result.ledger.as_dict(),
        "walk_steps": run.result.params.get("steps"),
        "tv_output_law": run.tv_output_law,
        "tv_empirical": run.tv_empirical,
        "first_sample_queries": run.result.diagnostics.get("first_sample_queries"),
        "first_sample_distinct": run.result.diagnostics.get("first_sample_distinct"),
    }
    walk_of = sampler_entry(point.sampler).walk
    if exact and walk_of is not None:
        best = walk_best_cost(walk_of(target.tree, run.result.params), run.oracle, target.leaf_probs(), DELTA,
                              BEST_T_RANGE * run.result.params["steps"])
        if best is not None:
            outcome["best_walk_steps"], outcome["best_steps_per_sample"] = best
    return outcome


def pending(spec: Spec, store: ResultStore) -> list[LabRun | LMRun]:
    done = store.done_keys()
    return [t for t in spec.runs() if t.key not in done]


def run_spec(
    spec: Spec,
    store: ResultStore,
    *,
    workers: int | None = None,
    executor: str = "process",
    address: str | None = None,
    on_result: Callable[[LabRun, dict], None] | None = None,
) -> int:
    """Execute every pending run; returns how many were run."""
    todo = pending(spec, store)
    if not todo:
        return 0
    workers = workers or os.cpu_count() or 1
    if executor == "process":
        results = _run_processes(todo, workers)
    elif executor == "ray":
        results = _run_ray(todo, workers, address)
    else:
        raise ParameterError(f"unknown executor {executor!r}; choose process or ray")
    for point, outcome in results:
        store.add(point, outcome)
        if on_result is not None:
            on_result(point, outcome)
    return len(todo)


def _run_processes(todo: list[LabRun], workers: int) -> Iterable[tuple[LabRun, dict]]:
    if workers == 1:
        for point in todo:
            yield point, execute_run(point)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_run, point): point for point in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_ray(todo: list[LabRun], workers: int, address: str | None) -> Iterable[tuple[LabRun, dict]]:
    try:
        import ray
    except ImportError:
        raise ParameterError("the ray executor needs Ray: pip install 'ttsample[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(execute_run)
        futures = {remote.remote(point): point for point in todo}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            for ref in done:
                yield futures.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()
