"""What the language-model samplers share: one ledger for the queries, the model and the reward, the clock, and
the budgets that end a run early with what it has."""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from ...errors import ParameterError
from ...ledger import Ledger, charged
from ...oracles.counted import CountedOracle
from ...samplers.base import Progress, SampleResult


class Stop(Exception):
    """Raised at a sampler's checkpoint (its progress call) to end the run early with what it has drawn.

    ``reason`` names the budget (``max_seconds``, ``max_queries``); ``lm_run``
    catches it, and the sampler returns the samples completed so far with
    ``stopped = reason``.
    """

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: still a KeyboardInterrupt, carrying what was drawn before it as ``partial``."""

    def __init__(self, partial):
        super().__init__("interrupted")
        self.partial = partial


@dataclass(frozen=True)
class Budget:
    """Limits that end a run early, checked at the sampler's progress points: the run keeps the samples it has
    completed and is marked ``stopped`` with the limit's name.

    ``max_seconds``: wall-clock seconds of sampling (the values' set-up
    excluded); ``max_queries``: queries to the value oracle (``queries_total``
    of the ledger), so it binds only on samplers that ask values.
    """

    max_seconds: float | None = None
    max_queries: float | None = None

    def __post_init__(self):
        for name in ("max_seconds", "max_queries"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool)
                                      or not math.isfinite(value) or value <= 0):
                raise ParameterError(f"{name} must be a finite number > 0 or None, got {value!r}")

    def limit(self, reason: str) -> float:
        return getattr(self, reason)


@dataclass
class SamplerRun:
    """One sampler run: its ledger, the oracle counted into it, and ``progress``, which reports and checks the budget."""

    ledger: Ledger
    oracle: CountedOracle | None
    budget: Budget | None
    report: Progress | None
    started: float
    stopped: str | None = None  # set when a budget or Ctrl-C ended the block early

    def progress(self, done: float, total: float) -> None:
        """Report ``done`` of ``total`` samples; raises ``Stop`` once a limit of the budget is reached (not once
        every sample is drawn: the run is over then)."""
        if self.budget is not None and done < total:
            if self.budget.max_seconds is not None and time.perf_counter() - self.started >= self.budget.max_seconds:
                raise Stop("max_seconds")
            if self.budget.max_queries is not None and self.ledger.queries_total >= self.budget.max_queries:
                raise Stop("max_queries")
        if self.report is not None:
            self.report(done, total)

    def finish(self, result: SampleResult) -> SampleResult:
        """``result`` marked with why the run stopped, if it did; after Ctrl-C raised as ``Interrupted`` instead.

        A sampler puts in ``result`` only the samples that were complete when
        the run stopped: a draw cut short is dropped, so a partial set is the
        first draws of a full run, never a set chosen by how fast they came.
        """
        result.stopped = self.stopped
        if self.stopped == "interrupted":
            raise Interrupted(result)
        return result


@contextmanager
def lm_run(task, oracle=None, budget: Budget | None = None, progress: Progress | None = None) -> Iterator[SamplerRun]:
    """A fresh ledger and the oracle counted into it; on exit the model's costs over the whole run are added.

    Model costs (forward passes, tokens, cache hits and misses, reward calls)
    are read from the task's model ledger once, at the end, so decoding and
    oracle answers are counted once each; queries are counted by the oracle
    wrapper as in the lab. A ``Stop`` (from ``progress``) or a Ctrl-C in the
    block ends it and is recorded in ``stopped``; the code after the block
    builds the partial result and passes it to ``finish``.
    """
    ledger = Ledger()
    counted = CountedOracle(oracle, ledger, model_costs=False) if oracle is not None else None
    with ledger.timed(), charged(ledger, task.lm.ledger):
        run = SamplerRun(ledger, counted, budget, progress, time.perf_counter())
        try:
            yield run
        except Stop as exc:
            run.stopped = exc.reason
        except KeyboardInterrupt:
            run.stopped = "interrupted"
