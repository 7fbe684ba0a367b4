"""The prefix cache on a backtracking workload: one VGB walk chain on the Dyck model's generation tree.

A leaf-boosted Sinclair–Jerrum chain (VGB's walk, exact V* weights) runs
``--steps`` steps on the tree of horizon ``--horizon``; at every step where
it moves it needs ``pi_ref(. | current prefix)``. The same sequence of
requests is served twice, side by side in one run: by the model with its
prefix cache, and by a fresh forward pass per request. Prints the cache hit
rate and the savings in forward passes, tokens and seconds.

    .venv/bin/python benchmarks/lm_cache.py [--horizon 8] [--steps 3000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ttsample.lm.backend import LanguageModel
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import dyck_valid
from ttsample.lm.targets import tilted_target
from ttsample.lm.values import ExactValues
from ttsample.oracles import make_oracle
from ttsample.samplers.walk import SinclairJerrumWalk


def visited_prefixes(horizon: int, steps: int) -> list[tuple[int, ...]]:
    lm = LanguageModel.load("dyck")
    target = tilted_target(lm, "", horizon, dyck_valid)
    walk = SinclairJerrumWalk(target.tree, 2.0 * horizon)
    oracle = make_oracle(target.target, "exact")
    rng = np.random.default_rng(0)
    state, path = np.zeros(1, dtype=np.int64), []
    for _ in range(steps):
        if rng.random() >= walk.laziness:
            candidates, weights = walk.kernel(oracle, state)
            state = candidates[np.searchsorted(np.cumsum(weights[:, 0]), rng.random() * weights[:, 0].sum(), side="right"), [0]]
            path.append(int(state[0]))
    names = LMOracle(lm, "", horizon, dyck_valid, ExactValues(target))
    return [names.prompt + p for p in names.prefixes(np.array(path)) if len(p) < horizon]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()
    requests = visited_prefixes(args.horizon, args.steps)

    cached = LanguageModel.load("dyck")
    start = time.perf_counter()
    for p in requests:
        cached.next_logprobs([p])
    t_cached = time.perf_counter() - start

    plain = LanguageModel.load("dyck")
    start = time.perf_counter()
    for p in requests:
        plain.uncached_next_logprobs([p])
    t_plain = time.perf_counter() - start

    c, u = cached.ledger, plain.ledger
    print(f"VGB walk chain on the Dyck model, horizon {args.horizon}: {len(requests):,} requests for "
          f"pi_ref(. | prefix), {len(set(requests)):,} distinct prefixes")
    print("| model | forward passes | tokens | cache hit rate | seconds |")
    print("|---|---|---|---|---|")
    print(f"| prefix cache | {c.forward_passes:,} | {c.tokens:,} | {c.cache_hits / len(requests):.1%} | {t_cached:.2f} |")
    print(f"| fresh pass per request | {u.forward_passes:,} | {u.tokens:,} | – | {t_plain:.2f} |")
    print(f"savings: {u.forward_passes / c.forward_passes:.1f}x forward passes, {u.tokens / c.tokens:.1f}x tokens, "
          f"{t_plain / t_cached:.1f}x time")


if __name__ == "__main__":
    main()
