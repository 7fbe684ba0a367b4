"""The demo tour: each sampler on one random target under an exact and two noisy oracles, then on a bounded tilt under the flat oracle."""

from __future__ import annotations

from .display import print_table, summary_table
from .sampling import sample_once
from .registry import REGISTRY, names
from .target import bounded_tilt_target, random_target


def tour(console, depth: int = 8, n_samples: int = 2000, seed: int = 0) -> None:
    target = random_target(depth, 2, concentration=0.5, seed=seed)
    console.print(
        f"[bold]ttsample demo[/]: a random target on a binary tree of depth {depth} "
        f"({target.tree.num_leaves} leaves), {n_samples} samples per sampler.\n"
        "Costs are per delivered sample. TV law = exact total variation of the sampler's "
        "output law to mu*; TV emp. = of the drawn samples (sampling noise included)."
    )
    tilt = bounded_tilt_target(depth, 2, rho=1.5, seed=seed)
    for tgt, oracle, rho, what in [
        (target, "exact", 1.0, ""),
        (target, "random", 1.0 + 1.0 / depth, ""),
        (target, "adversarial", 1.5, ""),
        (tilt, "flat", 1.0, ", a tilt within 1.5 of flat (easy)"),
    ]:
        names_here = [s for s in names(needs="oracle") if oracle == "flat" or not REGISTRY[s].flat_promise]
        runs = [sample_once(tgt, s, n_samples, oracle=oracle, rho=rho, seed=seed, max_queries=1e9) for s in names_here]
        print_table(console, summary_table(runs, f"oracle {runs[0].oracle.describe()}{what}"))
