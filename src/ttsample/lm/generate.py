"""Generation from names: model, prompt, horizon, reward, sampler, values -> samples with their ledger.

Shared by ``ttsample generate`` and the Python API; nothing here prints or writes files.

    from ttsample.lm.generate import generate
    run = generate("subword", "this license", 16, "no-e", sampler="vgb", values="heuristic", n=10, seed=0)
    print(run.texts()[:3], run.result.ledger)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..errors import ParameterError
from ..registry import sampler_entry
from ..runs import GenerationProblem, check_seed, run, run_prompts
from ..samplers.base import SampleResult
from .decoding import Decoding
from .rewards import Reward, resolve_reward
from .prm import PRMReading, ProcessRewardValues, is_prm
from .steps import Steps
from .samplers.base import Budget, Interrupted
from .task import GenerationTask
from .values import (DepthCalibratedValues, ExactValues, HeuristicValues, LearnedValues, RolloutValues, UserValues,
                     is_user_values)

if TYPE_CHECKING:
    from .model_backend import ModelBackend


VALUES = ("exact", "rollout", "heuristic", "calibrated", "head")


def make_values(task, kind: str, rng: np.random.Generator, prm: PRMReading | None = None):
    """The value estimator ``kind`` for ``task`` (exact enumerates the trie; calibrated runs a twisted-SMC pilot
    first; head learns while the sampler runs; ``prm:DIR`` reads a process reward model as ``prm`` says)."""
    if is_prm(kind.removeprefix("head:")):  # head:prm:DIR: the test-time head distils the PRM
        values = ProcessRewardValues(task, kind.removeprefix("head:")[len("prm:"):], prm, task.lm.device)
        return LearnedValues(task, rng, labels=values) if kind.startswith("head:") else values
    if kind == "exact":
        return ExactValues(task)
    if kind == "rollout":
        return RolloutValues(task, rng)
    if kind == "heuristic":
        return HeuristicValues(task)
    if kind == "calibrated":
        return DepthCalibratedValues(task, rng)
    if kind == "head":
        return LearnedValues(task, rng)
    if kind.startswith("head:") and is_user_values(kind[len("head:"):]):  # the head learns from the user's values
        return LearnedValues(task, rng, labels=UserValues(task, kind[len("head:"):]))
    if is_user_values(kind):
        return UserValues(task, kind)
    raise ParameterError(f"unknown values {kind!r}; choose one of {', '.join(VALUES)}, or name your own: "
                         "python:MODULE:FUNCTION, path/to/file.py:FUNCTION, hf:DIR[:LABEL] or prm:DIR")


@dataclass
class Generation:
    task: GenerationTask
    sampler: str
    values: str | None
    rho: float
    result: SampleResult
    n: int = 0  # samples asked
    budget: Budget = Budget()
    oracle: object | None = None  # the value oracle the sampler asked (None: it reads no values)

    def texts(self) -> list[str]:
        return self.task.text(self.result.samples)

    def rewards(self) -> np.ndarray:
        """The reward of each sample's text (for reporting; after the run, so not in its ledger)."""
        return self.task.score(self.texts())

    @property
    def partial(self) -> bool:
        return self.result.stopped is not None

    def stop_message(self) -> str | None:
        """Why the run ended before ``n`` samples, with what it drew and what all of them would take; None if it
        did not stop early."""
        stopped = self.result.stopped
        if stopped is None:
            return None
        got, led, seen = self.result.samples.size, self.result.ledger, self.result.diagnostics
        seconds = led.seconds - seen.get("values_setup", {}).get("seconds", 0.0)  # the budget counts sampling only
        if "iterations_done" in seen:  # AISP: every chain has an answer; the rounds are what was cut short
            done, asked = seen["iterations_done"], self.result.params["iterations"]
            drawn, share = f"{done} of the {asked} rounds", done / asked
        else:
            drawn, share = f"{got} of the {self.n} samples asked", got / self.n
        if stopped == "interrupted":
            head = "interrupted (Ctrl-C)"
        else:
            head = f"stopped at the {'time' if stopped == 'max_seconds' else 'query'} budget, {stopped} = " \
                   f"{self.budget.limit(stopped):,.6g}"
        spent = (led.queries_total, "queries") if stopped == "max_queries" else (seconds, "seconds")
        need = (f"at this rate all of it would take about {_rounded(spent[0] / share)} {spent[1]}" if share > 0
                else "no sample was complete: " + ("raise the budget" if stopped != "interrupted" else "run longer"))
        return f"{self.sampler} {head} after {seconds:.1f} s of sampling and {led.queries_total:,} queries, with " \
               f"{drawn}; {need}"


def _rounded(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.3g}"


def generate(model: str | ModelBackend, prompt: str, horizon: int, reward: str | Callable | Reward, *, sampler: str, values: str = "heuristic",
             rho: float = 1.0, beta: float | None = None, decoding: Decoding | None = None, n: int = 10, seed: int = 0,
             device: str = "cpu", dtype: str | None = None, backend: str = "hf", chat: bool = False,
             system: str | None = None, stop: tuple[str, ...] = (), step_rule: Steps | None = None,
             prm: PRMReading | None = None, max_seconds: float | None = None, max_queries: float | None = None,
             progress=None, **options) -> Generation:
    """Draw ``n`` responses; ``rho > 1`` puts the lab's random error model (a fixed factor in [1/rho, rho] per node) on the values.

    ``reward``: a name (``ttsample.lm.rewards.REWARD_FORMS``: a built-in, ``regex:``, ``similarity:``,
    ``python:MODULE:FUNCTION``, ``file.py:FUNCTION``, ``hf:DIR[:LABEL]``), a callable (per text, or marked
    ``@batched``) or a ``Reward``.
    ``chat`` lays the prompt out by the tokenizer's chat template as the user's turn, after ``system``'s if given
    (the reward still receives the prompt as given). ``stop``: strings that end a response as ``<eos>`` does
    (``GenerationTask``). ``step_rule`` (``ttsample.lm.steps.Steps``): the samplers move a reasoning step at a time
    (delimiters, tokens per step, steps per response); the response law is unchanged. ``prm``
    (``ttsample.lm.prm.PRMReading``): how ``values="prm:DIR"`` is read. ``device``, ``dtype`` (float32,
    bfloat16, float16; default: as saved) and ``backend``
    (``hf`` or ``vllm``: ``ttsample.lm.model_backend``) apply when ``model`` is a name.
    ``decoding`` (temperature, top-k, top-p) makes ``pi_ref``, and so the target, the tempered and truncated law.
    ``max_seconds`` (of sampling) and ``max_queries`` (value queries; only for samplers that ask values) end the
    run early with the samples it has completed: ``result.stopped`` names the limit and ``stop_message()`` says
    what was drawn and what all ``n`` would need. Ctrl-C raises ``Interrupted`` whose ``partial`` is the
    ``Generation`` so far, marked the same way.
    """
    entry, reward, budget = _checked(sampler, reward, values, seed, max_seconds, max_queries, options)
    lm = _model(model, device, dtype, backend)
    task = GenerationTask(lm, prompt, horizon, reward, beta=beta, decoding=decoding, chat=chat, system=system,
                          stop=tuple(stop), step_rule=step_rule)

    def generation(done) -> Generation:
        kind = values if entry.uses_values else None
        return Generation(task, sampler, kind, rho, done.result, n, budget, done.oracle)

    try:
        return generation(run(GenerationProblem(task, values, rho, prm), sampler, n, seed, progress=progress, budget=budget,
                              **options))
    except Interrupted as exc:
        raise Interrupted(generation(exc.partial)) from None


def generate_prompts(model: str | ModelBackend, prompts: list[str], horizon: int, reward, *, sampler: str,
                     values: str = "heuristic", rho: float = 1.0, beta: float | None = None,
                     decoding: Decoding | None = None, n: int = 10, seed: int = 0, device: str = "cpu",
                     dtype: str | None = None, backend: str = "hf", chat: bool = False, system: str | None = None,
                     stop: tuple[str, ...] = (), step_rule: Steps | None = None, prm: PRMReading | None = None,
                     max_seconds: float | None = None, max_queries: float | None = None, progress=None,
                     **options) -> list[Generation]:
    """``generate`` for each prompt, on one model. A sampler that decodes several prompts in one batch (the
    registry's ``sample_prompts``: best-of-n, plain SMC, AISP) runs them together, from one stream ``default_rng(seed)``,
    with one ledger for all (each Generation holds the same); the others run prompt ``i`` alone with seed
    ``seed + i``. Ctrl-C raises ``Interrupted`` whose ``partial`` is the list of Generations finished so far
    (with the one cut short). ``progress(done, total)`` counts samples over every prompt."""
    entry, reward, budget = _checked(sampler, reward, values, seed, max_seconds, max_queries, options)
    lm = _model(model, device, dtype, backend)
    tasks = [GenerationTask(lm, p, horizon, reward, beta=beta, decoding=decoding, chat=chat, system=system,
                            stop=tuple(stop), step_rule=step_rule) for p in prompts]
    kind = values if entry.uses_values else None
    if entry.sample_prompts is not None:
        problems = [GenerationProblem(t, values, rho, prm) for t in tasks]
        total = n * len(tasks)
        report = None if progress is None else (lambda done, _: progress(done * len(tasks), total))
        try:
            done = run_prompts(problems, sampler, n, seed, progress=report, budget=budget, **options)
        except Interrupted as exc:
            raise Interrupted([Generation(r.problem.task, sampler, kind, rho, r.result, n, budget, r.oracle)
                               for r in exc.partial]) from None
        return [Generation(r.problem.task, sampler, kind, rho, r.result, n, budget, r.oracle) for r in done]
    out = []
    for i, task in enumerate(tasks):
        report = None if progress is None else (lambda done, _, i=i: progress(i * n + done, n * len(tasks)))
        try:
            done = run(GenerationProblem(task, values, rho, prm), sampler, n, seed + i, progress=report, budget=budget,
                       **options)
        except Interrupted as exc:
            out.append(Generation(task, sampler, kind, rho, exc.partial.result, n, budget, exc.partial.oracle))
            raise Interrupted(out) from None
        out.append(Generation(task, sampler, kind, rho, done.result, n, budget, done.oracle))
    return out


def _checked(sampler, reward, values, seed, max_seconds, max_queries, options):
    """The sampler's row, the reward resolved and the budget, once every setting is checked (nothing is loaded)."""
    entry = sampler_entry(sampler, "generation")
    reward = resolve_reward(reward)
    if values not in VALUES and not is_user_values(values.removeprefix("head:")) \
            and not is_prm(values.removeprefix("head:")):
        raise ParameterError(f"unknown values {values!r}; choose one of {', '.join(VALUES)}, or name your own: "
                             "python:MODULE:FUNCTION, path/to/file.py:FUNCTION, hf:DIR[:LABEL] (head:NAME: the "
                             "test-time head learning from them) or prm:DIR (a process reward model, on steps)")
    check_seed(seed)
    budget = Budget(max_seconds, max_queries)
    if max_queries is not None and not entry.uses_values:
        raise ParameterError(f"{sampler} asks no value queries, so max_queries cannot bound it; use max_seconds")
    if "budget" in options:
        raise ParameterError("give the budget as max_seconds and max_queries, not as an option")
    entry.check_options(options)
    return entry, reward, budget


def _model(model, device: str, dtype: str | None, backend: str):
    from .model_backend import ModelBackend, load_model  # torch: only once a model is needed (naming the samplers does not load it)

    if isinstance(model, ModelBackend):
        return model
    return load_model(model, backend=backend, device=device, dtype=dtype)
