"""Calibrate and check the walks' default length T against exact output laws.

For each walk, tree shape and error level, find the smallest T at which the
T-steps-and-restart output law is within DELTA of mu* in total variation,
worst case over several targets and error models, and compare it with the
default T. Prints a markdown table (docs/walk_schedule.md holds its output).

    .venv/bin/python scripts/calibrate_walk_steps.py > docs/walk_schedule_table.md
"""

from __future__ import annotations

from ttsample import make_oracle, random_target
from ttsample.eval.exact_laws import walk_tv_curve
from ttsample.samplers.lifted import LiftedWalk, default_lifted_steps
from ttsample.samplers.walk import SinclairJerrumWalk, default_walk_steps

DELTA = 0.01
SHAPES = [(2, n) for n in (2, 4, 6, 8, 10)] + [(3, n) for n in (2, 4, 6)] + [(5, n) for n in (2, 4)]


def first_good_step(walk, oracle, t_max):
    for t, p_leaf, tv in walk_tv_curve(walk, oracle, t_max):
        if p_leaf > 1e-3 and tv <= DELTA:
            return t
    return None


def main() -> None:
    print(f"| walk | b | n | rho | worst T for TV <= {DELTA} | default T | default / worst |")
    print("|---|---|---|---|---|---|---|")
    for b, n in SHAPES:
        for rho in sorted({1.0 + 1.0 / n, 1.5, 2.0}):
            targets = [random_target(n, b, concentration=c, seed=s) for c in (0.3, 1.0, 5.0) for s in (1, 2)]
            for name in ("walk", "walk-boosted", "lifted"):
                if name == "lifted":
                    make, default = (lambda tree: LiftedWalk(tree, 2.0 * n)), default_lifted_steps(n, rho)
                else:
                    k = 1.0 if name == "walk" else 2.0 * n
                    make, default = (lambda tree, k=k: SinclairJerrumWalk(tree, k)), default_walk_steps(n, rho, k)
                worst = 0
                for target in targets:
                    for kind in ("random", "adversarial", "single"):
                        oracle = make_oracle(target, kind, rho, seed=3)
                        t = first_good_step(make(target.tree), oracle, 4 * default)
                        worst = max(worst, t if t is not None else 10**9)
                shown = worst if worst < 10**9 else f"> {4 * default}"
                ratio = f"{default / worst:.2f}" if worst < 10**9 else "< 0.25"
                print(f"| {name} | {b} | {n} | {rho:.3g} | {shown} | {default} | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
