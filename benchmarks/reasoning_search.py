"""The reasoning maximisers with a perfect, a trained and a shuffled verifier, against plain sampling (issue 20).

    .venv/bin/python benchmarks/reasoning_search.py [--task dyck] [--n 1000] [--horizon 8] [--seed 0]
    .venv/bin/python benchmarks/reasoning_search.py --task arithmetic [--prompt 2+6+9=] [--n 200]

dyck: the embedded Dyck model, the Dyck constraint, steps ending after ")" or "]". arithmetic: the embedded
arithmetic policy on one problem (held-out by default), one line per step, top-p 0.97 so that the law's
support can be enumerated, and the shipped PRM (prm:arithmetic-prm) as a third verifier. "Correct" = tau = 1;
plain sampling is correct with probability Z (exact, by enumeration). The perfect verifier is V*
(ExactValues); the shuffled one a uniform score per node (a fixed function of its path), which knows nothing
of correctness. Accuracy over n searches, one seed. Results: docs/lm.md, "The maximisers reasoning systems
compare against".
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


def build(args):
    """The task and its verifiers, by name."""
    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.rewards import REWARDS
    from ttsample.lm.steps import Steps
    from ttsample.lm.task import GenerationTask
    from ttsample.lm.values import ExactValues

    if args.task == "dyck":
        task = GenerationTask(LanguageModel.load("dyck"), "", args.horizon, REWARDS["dyck"],
                              step_rule=Steps((")", "]")))
        title = f"Dyck, H = {args.horizon}"
        return task, title, [("V* (perfect)", ExactValues(task)), ("shuffled", Shuffled(task))]
    from ttsample.lm import arithmetic
    from ttsample.lm.decoding import Decoding
    from ttsample.lm.prm import ProcessRewardValues

    problem = arithmetic.problem_of(args.prompt)
    task = GenerationTask(LanguageModel.load("arithmetic"), problem.prompt, problem.horizon(),
                          REWARDS["arithmetic"],
                          step_rule=Steps(("\n",), max_step_tokens=arithmetic.MAX_STEP_TOKENS,
                                          max_steps=problem.steps + 1),
                          decoding=Decoding(top_p=0.97))
    title = f"arithmetic {args.prompt!r} ({'held out' if problem.held_out else 'seen in training'}), top-p 0.97"
    return task, title, [("V* (perfect)", ExactValues(task)),
                         ("trained PRM", ProcessRewardValues(task, "arithmetic-prm")), ("shuffled", Shuffled(task))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("dyck", "arithmetic"), default="dyck")
    parser.add_argument("--n", type=int, default=None, help="searches per cell (default 1000 dyck, 200 arithmetic)")
    parser.add_argument("--horizon", type=int, default=8, help="dyck only")
    parser.add_argument("--prompt", default="2+6+9=", help="arithmetic only: the problem")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.n is None:
        args.n = 1000 if args.task == "dyck" else 200
    from ttsample.lm.exact import ExactLaw
    from ttsample.lm.oracle import LMOracle
    from ttsample.lm.samplers.search import sample_beam_search, sample_dvts, sample_weighted_best_of_n

    task, title, verifiers = build(args)
    z = float(np.exp(ExactLaw(task).log_z))
    print(f"{title}, n = {args.n}: plain sampling is correct with probability Z = {z:.3f}\n")
    print("| verifier | beam search | DVTS | weighted best-of-8 |\n|---|---|---|---|")
    for name, values in verifiers:
        row = []
        for search in (sample_beam_search, sample_dvts, sample_weighted_best_of_n):
            result = search(task, LMOracle(task, values), args.n, np.random.default_rng(args.seed))
            row.append(f"{float(np.mean(np.exp(task.log_tau(result.samples)))):.3f}")
        print(f"| {name} | " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
