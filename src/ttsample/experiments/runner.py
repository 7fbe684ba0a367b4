"""Run the tasks of a spec that the store does not hold yet, in parallel, writing each as it finishes.

Language-model tasks run in the same pool (``lm_runs.execute_lm``).
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
from .spec import LMTask, Spec, Task
from .store import ResultStore

DELTA = 0.01  # the accuracy at which the walks' best restart-rule cost is computed
BEST_T_RANGE = 4  # ... searched over T up to this multiple of the default T (adversaries may need longer walks)


def build_problem(task: Task):
    """The task's target, and its class F when the family is a class (else None)."""
    if task.family == "random":
        return random_target(task.depth, task.branching, task.family_param, seed=task.seed), None
    if task.family == "bounded_tilt":
        return bounded_tilt_target(task.depth, task.branching, task.family_param, seed=task.seed), None
    cls = make_class(task.family.split(":", 1)[1], task.depth, task.branching, task.class_size,
                     task.family_param, seed=task.seed)
    return cls.truth, cls


def execute_task(task: Task | LMTask) -> dict:
    """Execute one task; a run over budget is censored (with what it spent), one that fails is stored as an error.

    Dispatches on the task's kind: the lab's (a target and an oracle) or a language model's (``lm_runs``).
    """
    try:
        if getattr(task, "kind", "lab") == "lm":
            from .lm_runs import execute_lm

            return execute_lm(task)
        return _execute(task)
    except BudgetExhaustedError as exc:  # censored: stopped at max_queries, with what it had spent
        spent = exc.ledger.as_dict() if exc.ledger is not None else {}
        return {"status": "budget", "delivered": 0, **spent}
    except TtsampleError as exc:  # one bad grid point must not take the rest of the sweep with it
        return {"status": "error", "delivered": 0, "error": f"{type(exc).__name__}: {exc}"}


def _execute(task: Task) -> dict:
    target, cls = build_problem(task)
    exact = target.tree.num_leaves <= MAX_ENUMERABLE_LEAVES
    run = sample_once(target, task.sampler, task.samples, oracle=task.oracle, rho=task.rho, seed=task.seed,
                      max_queries=task.max_queries, exact=exact, target_class=cls)
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
    walk_of = sampler_entry(task.sampler).walk
    if exact and walk_of is not None:
        best = walk_best_cost(walk_of(target.tree, run.result.params), run.oracle, target.leaf_probs(), DELTA,
                              BEST_T_RANGE * run.result.params["steps"])
        if best is not None:
            outcome["best_walk_steps"], outcome["best_steps_per_sample"] = best
    return outcome


def pending(spec: Spec, store: ResultStore) -> list[Task]:
    done = store.done_keys()
    return [t for t in spec.tasks() if t.key not in done]


def run_spec(
    spec: Spec,
    store: ResultStore,
    *,
    workers: int | None = None,
    executor: str = "process",
    address: str | None = None,
    on_result: Callable[[Task, dict], None] | None = None,
) -> int:
    """Run every pending task; returns how many were run."""
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
    for task, outcome in results:
        store.add(task, outcome)
        if on_result is not None:
            on_result(task, outcome)
    return len(todo)


def _run_processes(todo: list[Task], workers: int) -> Iterable[tuple[Task, dict]]:
    if workers == 1:
        for task in todo:
            yield task, execute_task(task)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(execute_task, task): task for task in todo}
        for future in as_completed(futures):
            yield futures[future], future.result()


def _run_ray(todo: list[Task], workers: int, address: str | None) -> Iterable[tuple[Task, dict]]:
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
        remote = ray.remote(execute_task)
        futures = {remote.remote(task): task for task in todo}
        while futures:
            done, _ = ray.wait(list(futures), num_returns=1)
            for ref in done:
                yield futures.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()
