"""A sampler added the way a user adds one: this file, and one ``register`` row in the test that uses it.

Guided descent: from the root, move to a child with probability proportional
to the oracle's answers, down to a leaf. With the exact oracle its output law
is ``mu*``; with an erring one it is biased (which is why ttsample ships JVV).
"""

from __future__ import annotations

import numpy as np

from ttsample.ledger import Ledger
from ttsample.oracles import CountedOracle
from ttsample.samplers.base import SampleResult, categorical, check_budget, check_sample_count


def sample_guided_descent(oracle, n_samples: int, rng: np.random.Generator, *, max_queries: float | None = None,
                          progress=None) -> SampleResult:
    n_samples = check_sample_count(n_samples)
    ledger = Ledger()
    counted = CountedOracle(oracle, ledger)
    with ledger.timed():
        ids = np.zeros(n_samples, dtype=np.int64)
        for level in range(oracle.tree.depth):
            kids, log_w = counted.children(ids)
            w = np.exp(log_w - log_w.max(axis=1, keepdims=True)).T  # (b, n): one column per descent
            ids = kids[np.arange(n_samples), categorical(rng, w)]
            ledger.steps += n_samples
            check_budget(ledger, max_queries, "guided descent")
            if progress is not None:
                progress(n_samples * (level + 1) / oracle.tree.depth, n_samples)
    return SampleResult(oracle.tree.leaf_index(ids), ledger, {"levels": oracle.tree.depth})
