"""Best-of-n and SMC over many prompts in one batch against one run per prompt, on the subword model.

``generate_prompts`` decodes every prompt together (one model call per token
position for all of them); the separate runs decode one prompt at a time.
Both on fresh caches, side by side in one run; reported: seconds and forward
passes in all, and their ratios.

    .venv/bin/python benchmarks/prompt_batching.py [--prompts 16] [--candidates 8] [-n 4] [--horizon 12]
"""

from __future__ import annotations

import argparse
import time

PROMPTS = ["this license", "the software", "you may", "permission is", "the above", "in no event", "redistribution",
           "the author", "copyright", "all rights", "provided that", "without warranty", "the licensor", "any person",
           "subject to", "the following"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--horizon", type=int, default=12)
    args = parser.parse_args()

    import torch

    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.generate import generate, generate_prompts

    torch.set_num_threads(1)
    lm = LanguageModel.load("subword")
    prompts = (PROMPTS * (1 + args.prompts // len(PROMPTS)))[: args.prompts]
    fresh = lambda: LanguageModel(lm.model, lm.tokenizer)  # noqa: E731
    print(f"{len(prompts)} prompts, n = {args.n}, H = {args.horizon}, subword model, one thread; best-of-n with "
          f"{args.candidates} candidates, SMC with {args.candidates * args.n} particles")
    print("| sampler | run | seconds | forward passes | one run per prompt / one batch |")
    print("|---|---|---|---|---|")
    for sampler, options in (("best-of-n", {"candidates": args.candidates}),
                             ("smc", {"particles": args.candidates * args.n})):
        settings = dict(sampler=sampler, beta=0.1, n=args.n, **options)
        start = time.perf_counter()
        batch = generate_prompts(fresh(), prompts, args.horizon, "sentiment", seed=0, **settings)
        batch_seconds, batch_passes = time.perf_counter() - start, batch[0].result.ledger.forward_passes
        start = time.perf_counter()
        alone = [generate(fresh(), p, args.horizon, "sentiment", seed=i, **settings) for i, p in enumerate(prompts)]
        alone_seconds = time.perf_counter() - start
        alone_passes = sum(g.result.ledger.forward_passes for g in alone)
        print(f"| {sampler} | all prompts in one batch | {batch_seconds:.2f} | {batch_passes:,} | |")
        print(f"| {sampler} | one run per prompt | {alone_seconds:.2f} | {alone_passes:,} | "
              f"{alone_seconds / batch_seconds:.2f}x seconds, {alone_passes / batch_passes:.2f}x forward passes |")


if __name__ == "__main__":
    main()
