"""AISP over several prompts: one batch for all prompts (``sample_aisp_prompts``) against one run per prompt.

Both sides run the same chains (same options, fresh model caches) on the subword model, alternating
``--repeats`` times; printed: seconds and forward passes per side and their ratios. Run:

    .venv/bin/python benchmarks/aisp_prompts.py [--prompts 8] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ttsample.lm.backend import LanguageModel
from ttsample.lm.rewards import lexicon_sentiment
from ttsample.lm.samplers.aisp import sample_aisp, sample_aisp_prompts
from ttsample.lm.task import GenerationTask

PROMPTS = ("this license", "the software", "you may", "permission is", "the copyright", "redistribution",
           "this program", "the author")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8, help=f"how many prompts (at most {len(PROMPTS)})")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = LanguageModel.load("subword")
    options = dict(window=8, candidates=8, iterations=4, n=4)
    prompts = PROMPTS[: args.prompts]

    def tasks(lm):
        return [GenerationTask(lm, p, 16, lexicon_sentiment) for p in prompts]

    times = {"one run per prompt": [], "one batch": []}
    passes = {}
    for r in range(args.repeats):
        start = time.perf_counter()
        total = 0
        for task in tasks(LanguageModel(base.model, base.tokenizer)):
            n = options["n"]
            total += sample_aisp(task, None, n, np.random.default_rng(r), **{k: v for k, v in options.items()
                                                                              if k != "n"}).ledger.forward_passes
        times["one run per prompt"].append(time.perf_counter() - start)
        passes["one run per prompt"] = total
        start = time.perf_counter()
        results = sample_aisp_prompts(tasks(LanguageModel(base.model, base.tokenizer)), options["n"],
                                      np.random.default_rng(r), **{k: v for k, v in options.items() if k != "n"})
        times["one batch"].append(time.perf_counter() - start)
        passes["one batch"] = results[0].ledger.forward_passes
    print(f"{len(prompts)} prompts, AISP {options['candidates']} candidates x {options['iterations']} iterations, "
          f"{options['n']} chains per prompt, horizon 16, {args.threads} thread(s)")
    print("| side | seconds (median of runs) | forward passes |")
    print("|---|---|---|")
    for side in times:
        print(f"| {side} | {np.median(times[side]):.2f} ({', '.join(f'{t:.2f}' for t in times[side])}) | "
              f"{passes[side]} |")
    one, batch = np.median(times["one run per prompt"]), np.median(times["one batch"])
    print(f"batched / per prompt: seconds {batch / one:.2f}, forward passes "
          f"{passes['one batch'] / passes['one run per prompt']:.2f}")


if __name__ == "__main__":
    main()
