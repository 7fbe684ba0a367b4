"""What the language-model samplers share: one ledger for the queries, the model and the reward, and the clock."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ...oracles.ledger import MODEL_COSTS, CountedOracle, Ledger


@contextmanager
def lm_ledger(task, oracle=None) -> Iterator[tuple[Ledger, CountedOracle | None]]:
    """A fresh ledger and the oracle counted into it; on exit the model's costs over the whole run are added.

    Model costs (forward passes, tokens, cache hits and misses, reward calls)
    are read from the task's model ledger once, at the end, so decoding and
    oracle answers are counted once each; queries are counted by the oracle
    wrapper as in the lab.
    """
    ledger = Ledger()
    before = task.lm.ledger.as_dict()
    counted = CountedOracle(oracle, ledger, model_costs=False) if oracle is not None else None
    with ledger.timed():
        try:
            yield ledger, counted
        finally:
            after = task.lm.ledger.as_dict()
            for name in MODEL_COSTS:
                setattr(ledger, name, getattr(ledger, name) + after[name] - before[name])
