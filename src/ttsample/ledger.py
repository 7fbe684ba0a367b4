"""The cost record of a run, and the one way model costs are charged to it.

``Ledger`` holds every cost a sampler incurs: queries (total and distinct),
its own steps and tries, the model's forward passes, tokens and cache use,
reward calls, and wall-clock seconds. A model (``LanguageModel``) and a
counting tool keep a ledger of their own; ``charged`` adds what one of them
spent inside a block to a run's ledger, which is how every model cost reaches
a sampler's result.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Iterator

MODEL_COSTS = ("forward_passes", "tokens", "cache_hits", "cache_misses", "reward_calls", "reward_texts")


@dataclass
class Ledger:
    queries_total: int = 0
    queries_distinct: int = 0
    steps: int = 0  # chain-steps for walks, descent levels for JVV
    tries: int = 0  # proposals (JVV) or walk runs (restart rule)
    restarts: int = 0  # tries that produced no sample
    surplus: int = 0  # tries that produced a sample beyond the number asked for (dropped; tries = samples + restarts + surplus)
    forward_passes: int = 0  # model invocations (one batched call counts once)
    tokens: int = 0  # tokens fed to the model
    cache_hits: int = 0  # prefixes answered from a model cache
    cache_misses: int = 0  # prefixes the model had to compute
    reward_calls: int = 0  # calls of the reward: one per batch for a batched reward, one per text otherwise
    reward_texts: int = 0  # responses (or prefixes) it scored
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def record_tries(self, tries: int, successes: int, kept: int) -> None:
        """``tries`` attempts of which ``successes`` produced a sample and ``kept`` were delivered."""
        self.tries += tries
        self.restarts += tries - successes
        self.surplus += successes - kept

    @contextmanager
    def timed(self):
        start = time.perf_counter()
        try:
            yield self
        finally:
            self.seconds += time.perf_counter() - start


@contextmanager
def charged(ledger: Ledger, source: Ledger | None) -> Iterator[Ledger]:
    """Adds what ``source`` (a model's or tool's own ledger) spent on the model costs inside the block to ``ledger``;
    ``source=None`` charges nothing. The charge is made even when the block raises."""
    before = source.as_dict() if source is not None else None
    try:
        yield ledger
    finally:
        if before is not None:
            after = source.as_dict()
            for name in MODEL_COSTS:
                setattr(ledger, name, getattr(ledger, name) + after[name] - before[name])
