"""One way to run any sampler of the registry: ``run(problem, sampler, n, seed, **options)``.

A problem says what the sampler runs on and how its seed is used:

- ``OracleProblem``: a density oracle on a tree (a lab target behind an error
  model, a CNF formula's counting oracle), and the class F for the class
  samplers. The sampler's stream is ``default_rng([seed, 1])``, apart from
  the streams the seed gave the target and the oracle's noise.
- ``GenerationProblem``: a generation task, with the kind of values (and
  their error rho) for the samplers that read values. One stream,
  ``default_rng(seed)``, first builds the values, then runs the sampler; the
  seed also fixes the values' error model. What the values cost to set up
  (enumeration, a pilot run, rollouts) is charged to the run's ledger and
  kept apart in ``diagnostics["values_setup"]``.

``run`` checks the seed and the options against the sampler's own keyword
parameters, for every sampler the same way. ``run_prompts`` runs several
prompts of one model in one batch, for the rows that can
(``sample_prompts``). ``sampling.sample_once``, ``lm.generate.generate`` and
``sat.run.sample_cnf`` build a problem from names and call it. Nothing here
prints or writes files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import ParameterError
from .ledger import Ledger, charged
from .registry import SamplerEntry, sampler_entry
from .samplers.base import SampleResult


def check_seed(seed) -> int:
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ParameterError(f"the seed must be an integer >= 0, got {seed!r}")
    return int(seed)


@dataclass
class Bound:
    """A problem made ready for one sampler: the arguments before ``n``, the oracle it asks, and what to add to its
    result afterwards."""

    args: tuple
    oracle: object | None
    finish: Callable[[SampleResult], SampleResult] = lambda result: result


@dataclass
class OracleProblem:
    oracle: object
    target_class: object | None = None  # the class F, for the class samplers
    kind: str = "tree"  # or "formula": where the registry's rows say they run

    def stream(self, seed: int) -> np.random.Generator:
        return np.random.default_rng([seed, 1])  # the sampler's own: not the one that drew the target

    def bind(self, entry: SamplerEntry, rng: np.random.Generator, seed: int) -> Bound:
        if entry.needs == "class":
            if self.target_class is None:
                raise ParameterError(f"{entry.name} needs the class F the target belongs to (a TargetClass)")
            return Bound((self.target_class, self.oracle), self.oracle)
        return Bound((self.oracle,), self.oracle)


@dataclass
class GenerationProblem:
    task: object  # a GenerationTask
    values: str = "heuristic"  # the kind of values, for the samplers that read them (lm.generate.VALUES)
    rho: float = 1.0  # > 1: the lab's random error model on the values
    prm: object = None  # how prm:DIR values are read (lm.prm.PRMReading); None: the defaults
    kind: str = field(default="generation", init=False)

    def stream(self, seed: int) -> np.random.Generator:
        return np.random.default_rng(seed)

    def bind(self, entry: SamplerEntry, rng: np.random.Generator, seed: int) -> Bound:
        if not entry.uses_values:
            return Bound((self.task, None), None, lambda result: _with_setup(result, Ledger(), None))
        from .lm.generate import make_values
        from .lm.oracle import LMOracle
        from .lm.samplers.base import Interrupted
        from .oracles import with_error

        setup = Ledger()
        with setup.timed(), charged(setup, self.task.lm.ledger):
            try:
                estimator = make_values(self.task, self.values, rng, self.prm)
            except Interrupted:  # Ctrl-C in a pilot run of the values: nothing is drawn yet
                raise KeyboardInterrupt from None
        oracle = with_error(LMOracle(self.task, estimator), "random" if self.rho > 1 else "exact", self.rho, seed)
        return Bound((self.task, oracle), oracle, lambda result: _with_setup(result, setup, estimator))


def _with_setup(result: SampleResult, setup: Ledger, estimator) -> SampleResult:
    """The result with the values' set-up costs added to its ledger and recorded apart in its diagnostics."""
    from .ledger import MODEL_COSTS
    from .lm.values import LearnedValues

    for name in (*MODEL_COSTS, "seconds"):
        setattr(result.ledger, name, getattr(result.ledger, name) + getattr(setup, name))
    result.diagnostics["values_setup"] = {k: v for k, v in setup.as_dict().items() if v}
    if isinstance(estimator, LearnedValues):
        result.diagnostics["head_fits"] = estimator.fits  # labels used and held-out error of each fit
    return result


@dataclass
class Run:
    problem: OracleProblem | GenerationProblem
    sampler: str
    seed: int
    n: int  # samples asked
    result: SampleResult
    oracle: object | None  # the oracle the sampler asked (None: it asks none)


def run(problem, sampler: str, n: int, seed: int = 0, *, progress=None, **options) -> Run:
    """``n`` samples of ``problem`` by the registry's ``sampler``, with its keyword ``options``.

    A run interrupted by Ctrl-C inside a language-model sampler raises
    ``Interrupted`` whose ``partial`` is the ``Run`` of what was drawn.
    """
    from .lm.samplers.base import Interrupted

    entry = sampler_entry(sampler, problem.kind)
    seed = check_seed(seed)
    entry.check_options(options)
    rng = problem.stream(seed)
    bound = problem.bind(entry, rng, seed)
    try:
        result = entry.sample(*bound.args, n, rng, progress=progress, **options)
    except Interrupted as exc:
        raise Interrupted(Run(problem, sampler, seed, n, bound.finish(exc.partial), bound.oracle)) from None
    return Run(problem, sampler, seed, n, bound.finish(result), bound.oracle)


def run_prompts(problems: list[GenerationProblem], sampler: str, n: int, seed: int = 0, *, progress=None,
                **options) -> list[Run]:
    """``n`` samples for each problem (prompts on one model), decoded together by the row's ``sample_prompts``:
    one stream, ``default_rng(seed)``, for all of them, and one ledger (the batch's costs, for all prompts)."""
    from .lm.samplers.base import Interrupted

    entry = sampler_entry(sampler, "generation")
    if entry.sample_prompts is None or entry.uses_values:
        raise ParameterError(f"{sampler} cannot decode several prompts in one batch; run one prompt at a time")
    if not problems:
        raise ParameterError("no prompt to run")
    seed = check_seed(seed)
    entry.check_options(options)
    rng = problems[0].stream(seed)
    bound = [p.bind(entry, rng, seed) for p in problems]  # no values (such rows read none): nothing is drawn here

    def runs(results) -> list[Run]:
        return [Run(p, sampler, seed, n, b.finish(r), b.oracle) for p, b, r in zip(problems, bound, results)]

    try:
        results = entry.sample_prompts([p.task for p in problems], n, rng, progress=progress, **options)
    except Interrupted as exc:
        raise Interrupted(runs(exc.partial)) from None
    return runs(results)
