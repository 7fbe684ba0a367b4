"""Chain-steps per second of the vectorised Sinclair–Jerrum walk against a per-chain Python loop.

Both run the same walk on the same target and oracle (binary tree of depth 20,
random oracle with rho = 1.5, queries counted and cached), side by side in one
run; the ratio is what to compare across machines.

    .venv/bin/python benchmarks/walk_throughput.py [--chains 100000] [--steps 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ttsample import make_oracle, random_target
from ttsample.oracles import CountedOracle, Ledger
from ttsample.samplers.chains import advance
from ttsample.samplers.walk import SinclairJerrumWalk


def per_chain_loop(walk, oracle, chains: int, steps: int, rng: np.random.Generator) -> None:
    """The straightforward implementation: one chain at a time, one step at a time."""
    tree = walk.tree
    for _ in range(chains):
        v = 0
        for _ in range(steps):
            if rng.random() < walk.laziness:
                continue
            if v >= tree.leaf_start:
                v = (v - 1) // tree.branching
                continue
            children = [tree.branching * v + 1 + j for j in range(tree.branching)]
            neighbours = ([(v - 1) // tree.branching] if v else []) + children
            asked = ([v] if v else []) + children
            w = np.exp(oracle.log_weight(np.array(asked)))
            v = neighbours[int(np.searchsorted(np.cumsum(w), rng.random() * w.sum(), side="right"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--chains", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--loop-chains", type=int, default=100)
    args = parser.parse_args()

    target = random_target(args.depth, 2, concentration=1.0, seed=0)
    oracle = make_oracle(target, "random", 1.5, seed=0)
    walk = SinclairJerrumWalk(target.tree)
    rng = np.random.default_rng(0)

    counted = CountedOracle(oracle, Ledger())
    states = np.zeros(args.chains, dtype=np.int64)
    start = time.perf_counter()
    advance(walk, counted, states, args.steps, rng)
    vec_seconds = time.perf_counter() - start
    vec_rate = args.chains * args.steps / vec_seconds

    counted = CountedOracle(oracle, Ledger())
    start = time.perf_counter()
    per_chain_loop(walk, counted, args.loop_chains, args.steps, rng)
    loop_seconds = time.perf_counter() - start
    loop_rate = args.loop_chains * args.steps / loop_seconds

    print(f"binary tree of depth {args.depth}, random oracle rho = 1.5, {args.steps} steps per chain")
    print("| implementation | chains | chain-steps/s |")
    print("|---|---|---|")
    print(f"| vectorised (numpy) | {args.chains:,} | {vec_rate:,.0f} |")
    print(f"| per-chain Python loop | {args.loop_chains:,} | {loop_rate:,.0f} |")
    print(f"speed-up: {vec_rate / loop_rate:,.0f}x")


if __name__ == "__main__":
    main()
