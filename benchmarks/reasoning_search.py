"""The reasoning maximisers with a perfect and with a shuffled verifier, against plain sampling (issue 20).

    .venv/bin/python benchmarks/reasoning_search.py [--n 1000] [--horizon 8] [--seed 0]

The embedded Dyck model, the Dyck constraint, steps ending after ")" or "]". "Correct" = tau = 1; plain
sampling is correct with probability Z. The perfect verifier is V* (ExactValues); the shuffled one a
uniform score per node (a fixed function of its path), which knows nothing of correctness. Accuracy over
n searches, one seed. Results: docs/lm.md, "The maximisers reasoning systems compare against".
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


class Shuffled:
    """A verifier that knows nothing: a uniform score per node."""

    deterministic = True

    def __init__(self, task):
        self.task = task

    def __call__(self, nodes):
        key = self.task.tree.node_key(np.asarray(nodes, dtype=np.int64)).view(np.uint64)
        return np.log((key >> np.uint64(11)).astype(np.float64) / 2.0**53 + 1e-12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.exact import ExactLaw
    from ttsample.lm.oracle import LMOracle
    from ttsample.lm.rewards import REWARDS
    from ttsample.lm.samplers.search import sample_beam_search, sample_dvts, sample_weighted_best_of_n
    from ttsample.lm.steps import Steps
    from ttsample.lm.task import GenerationTask
    from ttsample.lm.values import ExactValues

    task = GenerationTask(LanguageModel.load("dyck"), "", args.horizon, REWARDS["dyck"],
                          step_rule=Steps((")", "]")))
    z = float(np.exp(ExactLaw(task).log_z))
    print(f"Dyck, H = {args.horizon}, n = {args.n}: plain sampling is correct with probability Z = {z:.3f}\n")
    print("| verifier | beam search | DVTS | weighted best-of-8 |\n|---|---|---|---|")
    for name, values in [("V* (perfect)", ExactValues(task)), ("shuffled", Shuffled(task))]:
        row = []
        for search in (sample_beam_search, sample_dvts, sample_weighted_best_of_n):
            result = search(task, LMOracle(task, values), args.n, np.random.default_rng(args.seed))
            row.append(f"{float(np.mean(np.exp(task.log_tau(result.samples)))):.3f}")
        print(f"| {name} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
