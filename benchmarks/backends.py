"""The hf backend against the vLLM backend, side by side in one run, on this machine's CPU.

    make .venv-vllm/.installed
    .venv-vllm/bin/python benchmarks/backends.py [--quick]

Two models at random initialisation (vLLM's CPU attention takes head sizes of 32 and more; the embedded
models' are 16 and 24, so they cannot run on it): one of the embedded subword model's size and vocabulary
(4,096 tokens, 3 layers, width 96, head size 32) and one with GPT-2's vocabulary (50,257 tokens, 2 layers,
width 128). Three workloads on each backend:
- left-to-right sampling of 64 responses of 32 tokens from the root (``sample_suffix``: the hf backend decodes
  a token at a time on its KV trie; the vLLM backend hands the whole draw to vLLM's sampler);
- a backtracking VGB workload (16 samples under the constraint "no letter e", heuristic values, H = 6),
  which asks full next-token rows of the nodes its walk visits;
- best-of-n with 64 candidates for each of 16 prompts, decoded together.

Reported per workload: seconds, tokens generated per second (left-to-right) and the ledger's forward passes
and tokens (the hf backend counts the tokens it fed; the vLLM backend the prompt tokens vLLM did not find in
its prefix cache plus those it generated). Engine start-up is timed apart. One run, on a shared 2-core
machine: ratios within a run are the figures to read.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from ttsample.lm.backend import LanguageModel
from ttsample.lm.generate import generate
from ttsample.lm.random_models import save_random_model
from ttsample.lm.rewards import REWARDS
from ttsample.lm.task import GenerationTask
from ttsample.runs import GenerationProblem, run_prompts

MODELS = {"subword-sized": dict(arch="gpt2", vocab_size=4096, hidden=96, layers=3, heads=3, context=256),
          "gpt2-vocab": dict(arch="gpt2", vocab_size=50_257, hidden=128, layers=2, heads=4, context=256)}
VLLM_OPTIONS = dict(kv_cache_memory_bytes=2**30)


def left_to_right(lm, rows: int, length: int) -> dict:
    task = GenerationTask(lm, "", length, REWARDS["no-e"])
    before = lm.ledger.as_dict()
    start = time.perf_counter()
    leaves = task.sample_suffix(np.zeros(rows, dtype=np.int64), np.random.default_rng(0))
    seconds = time.perf_counter() - start
    tokens = int(task.tree.depth_of(leaves).sum())
    return _row(lm, before, seconds, tokens_per_s=tokens / seconds, generated=tokens)


def vgb(lm, n: int, horizon: int) -> dict:
    before = lm.ledger.as_dict()
    start = time.perf_counter()
    run = generate(lm, "", horizon, "no-e", sampler="vgb", values="heuristic", n=n, seed=0)
    return _row(lm, before, time.perf_counter() - start, samples=int(run.result.samples.size))


def best_of_n(lm, prompts: int, candidates: int, horizon: int) -> dict:
    rng = np.random.default_rng(1)
    bos = lm.tokenizer.bos_id
    tasks = [GenerationTask(lm, (bos, *rng.integers(0, lm.vocab_size - 2, size=4).tolist()), horizon, REWARDS["no-e"])
             for _ in range(prompts)]
    before = lm.ledger.as_dict()
    start = time.perf_counter()
    run_prompts([GenerationProblem(t, "heuristic", 1.0) for t in tasks], "best-of-n", 1, 0, candidates=candidates)
    return _row(lm, before, time.perf_counter() - start)


def _row(lm, before: dict, seconds: float, **extra) -> dict:
    after = lm.ledger.as_dict()
    return {"seconds": seconds, "forward_passes": after["forward_passes"] - before["forward_passes"],
            "tokens": after["tokens"] - before["tokens"], **extra}


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a check that it runs)")
    args = parser.parse_args(argv)
    rows, length, n, prompts, candidates = (8, 8, 4, 4, 8) if args.quick else (64, 32, 16, 16, 64)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, shape in MODELS.items():
            folder = save_random_model(Path(tmp) / name, **shape)
            for backend in ("hf", "vllm"):
                start = time.perf_counter()
                lm = LanguageModel.load(folder, backend=backend, **(VLLM_OPTIONS if backend == "vllm" else {}))
                startup = time.perf_counter() - start
                work = {"left-to-right": left_to_right(lm, rows, length),
                        "vgb": vgb(lm, n, 6),
                        "best-of-n": best_of_n(lm, prompts, candidates, 16)}
                results.append({"model": name, "backend": backend, "startup_seconds": startup, **work})
                print_row(results[-1], rows, length, n, prompts, candidates)
    return results


def print_row(r: dict, rows, length, n, prompts, candidates) -> None:
    l2r, v, b = r["left-to-right"], r["vgb"], r["best-of-n"]
    print(f"{r['model']:13} {r['backend']:4}  start {r['startup_seconds']:5.1f} s | left-to-right {rows}x{length}: "
          f"{l2r['seconds']:6.2f} s, {l2r['tokens_per_s']:7.0f} tok/s, {l2r['forward_passes']:4} passes | "
          f"vgb {n}: {v['seconds']:6.2f} s, {v['forward_passes']:5} passes, {v['tokens']:7} tokens | "
          f"best-of-{candidates} x {prompts} prompts: {b['seconds']:6.2f} s, {b['forward_passes']:4} passes, "
          f"{b['tokens']:6} tokens", flush=True)


if __name__ == "__main__":
    main()
