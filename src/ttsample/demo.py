"""The demo tour: each sampler on one random target under an exact and two noisy oracles."""

from __future__ import annotations

from .run import sample_once
from .samplers import SAMPLERS
from .target import random_target


def tour(console, depth: int = 8, n_samples: int = 2000, seed: int = 0) -> None:
    from .cli import summary_table

    target = random_target(depth, 2, concentration=0.5, seed=seed)
    console.print(
        f"[bold]ttsample demo[/]: a random target on a binary tree of depth {depth} "
        f"({target.tree.num_leaves} leaves), {n_samples} samples per sampler.\n"
        "Costs are per delivered sample. TV law = exact total variation of the sampler's "
        "output law to mu*; TV emp. = of the drawn samples (sampling noise included)."
    )
    for oracle, rho in [("exact", 1.0), ("random", 1.0 + 1.0 / depth), ("adversarial", 1.5)]:
        runs = [sample_once(target, s, n_samples, oracle=oracle, rho=rho, seed=seed, max_queries=1e9) for s in SAMPLERS]
        console.print(summary_table(runs, f"oracle {runs[0].oracle.describe()}"))
