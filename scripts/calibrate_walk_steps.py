"""Calibrate and check the walks' default length T against exact output laws.

For each walk, tree shape and error level, find the smallest T at which the
T-steps-and-restart output law is within DELTA of mu* in total variation,
worst case over several targets and error models, and compare it with the
default T. Prints a markdown table; the one in docs/walk_schedule.md is its output.

    .venv/bin/python scripts/calibrate_walk_steps.py
"""

from __future__ import annotations

import numpy as np

from ttsample import bounded_tilt_target, make_oracle, random_target
from ttsample.eval.exact_laws import walk_tv_curve
from ttsample.samplers.chains import schedule_rho
from ttsample.samplers.lifted import LiftedWalk, default_lifted_steps
from ttsample.samplers.walk import SinclairJerrumWalk, default_walk_steps

DELTA = 0.01
SHAPES = [(2, n) for n in (2, 4, 6, 8, 10)] + [(3, n) for n in (2, 4, 6)] + [(5, n) for n in (2, 4)]


def first_good_step(walk, oracle, mu, t_max):
    for t, p_leaf, tv in walk_tv_curve(walk, oracle, mu, t_max):
        if p_leaf > 1e-3 and tv <= DELTA:
            return t
    return None


def default_for(name: str, n: int, oracle) -> int:
    rho = schedule_rho(oracle)
    if name == "lifted":
        return default_lifted_steps(n, rho)
    return default_walk_steps(n, rho, 1.0 if name == "walk" else 2.0 * n)


def make_walk(name: str, tree):
    n = tree.depth
    if name == "lifted":
        return LiftedWalk(tree, 2.0 * n)
    return SinclairJerrumWalk(tree, 1.0 if name == "walk" else 2.0 * n)


def main() -> None:
    print(f"| walk | b | n | rho | worst T for TV <= {DELTA} | its default T | smallest default / needed |")
    print("|---|---|---|---|---|---|---|")
    for b, n in SHAPES:
        for rho in sorted({1.0 + 1.0 / n, 1.5, 2.0}):
            targets = [random_target(n, b, concentration=c, seed=s) for c in (0.3, 1.0, 5.0) for s in (1, 2)]
            cases = [(t, kind) for t in targets for kind in ("random", "adversarial", "single")]
            cases += [(bounded_tilt_target(n, b, rho, seed=s), "flat") for s in (1, 2)]  # the hard family
            for name in ("walk", "walk-boosted", "lifted"):
                worst, worst_default, margin = 0, 0, np.inf
                for target, kind in cases:
                    oracle = make_oracle(target, kind, rho, seed=3)
                    default = default_for(name, n, oracle)  # from the oracle's own (possibly measured) rho
                    needed = first_good_step(make_walk(name, target.tree), oracle, target.leaf_probs(), 4 * default) or 10**9
                    margin = min(margin, default / needed)
                    if needed > worst:
                        worst, worst_default = needed, default
                shown = worst if worst < 10**9 else "> 4x default"
                print(f"| {name} | {b} | {n} | {rho:.3g} | {shown} | {worst_default} | {margin:.2f} |", flush=True)


if __name__ == "__main__":
    main()
