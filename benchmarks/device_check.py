"""A prepared check of the hf backend on one GPU: cached answers, every sampler, throughput, wall time per sample.

Uses only PyTorch, transformers and the project's ``src/`` (no install, no vLLM, no weights fetched: every model
is at random initialisation, ``ttsample.lm.random_models``), so it runs on a lent GPU machine as it is:

    PYTHONPATH=src python benchmarks/device_check.py --device cuda --out device_check.json

and on the CPU, tiny and fast, in the test suite (so that it cannot rot):

    PYTHONPATH=src python benchmarks/device_check.py --device cpu --small

Four parts, one JSON (``--out``) and one printed table:
1. ``cache``: the cached backend's rows against fresh uncached passes, on GPT-2, Llama and Qwen2 shapes, in
   float32 and bfloat16, over a walk down and up the trie then one mixed batch; the largest difference in
   log-probability, against a tolerance per dtype (float32: 1e-4; bfloat16: 0.25, since bfloat16 keeps 8 bits
   of mantissa and a cached pass sums in another order than a fresh one; measured on this CPU: 4.6e-2 to
   7.5e-2);
2. ``samplers``: every generation sampler through ``generate`` (the constraint "no letter e", heuristic values)
   on a Qwen2-shaped model of about 0.5B
   parameters (Qwen2-0.5B's shape: 24 layers, width 896, 14 heads, 2 key-value heads, 151,936 tokens),
   seconds per sample and forward passes;
3. ``throughput``: left-to-right sampling of 32 tokens per row, the backend (``sample_suffix``) against
   transformers' ``generate`` on the same model, at batch 1, 16 and 64: tokens per second and their ratio;
4. VGB's and best-of-n's seconds per sample are in part 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ttsample.lm.backend import LanguageModel
from ttsample.lm.generate import generate
from ttsample.lm.random_models import random_model, word_tokenizer
from ttsample.lm.rewards import length_reward
from ttsample.lm.task import GenerationTask
from ttsample.registry import names
from ttsample.strict_json import dumps

# float32: what two summation orders leave of 24 bits of mantissa; bfloat16 keeps 8 bits, so logits of a few units
# (these random weights give logits up to about 10) round by a few hundredths at every layer; a wrong past or
# position moves a row by about a nat (tests/test_backend.py), far above either
TOLERANCE = {"float32": 1e-4, "bfloat16": 0.25}
QWEN2_05B = dict(hidden=896, layers=24, heads=14, kv_heads=2, intermediate=4864)  # Qwen2-0.5B's shape
SMALL = dict(hidden=64, layers=2, heads=2, kv_heads=1, intermediate=128)


def walk_then_batch(lm, seed: int, steps: int = 60) -> list[np.ndarray]:
    """Handles asked one call each by a walk down and back up the trie, then one call mixing new prefixes that
    share uncomputed ancestors, seen ones and repeats."""
    rng = np.random.default_rng(seed)
    bos, width = lm.tokenizer.bos_id, min(lm.vocab_size - 2, 50)
    path, calls = [lm.handle([bos])], []
    for _ in range(steps):
        calls.append(np.array(path[-1:]))
        if len(path) > 1 and (len(path) >= 12 or rng.random() < 0.45):
            path.pop()
        else:
            path.append(int(lm.extend(np.array(path[-1:]), rng.integers(0, width, size=1))[0]))
    batch = [lm.handle([bos, *rng.integers(0, width, size=rng.integers(0, 18))]) for _ in range(40)]
    calls.append(np.concatenate([batch, rng.choice(np.concatenate(calls), 15), batch[:5]]))
    return calls


def check_cache(device: str, small: bool) -> list[dict]:
    rows = []
    vocab = 1000 if small else 32_000
    shape = dict(hidden=64, layers=2, heads=2, kv_heads=1) if small else dict(hidden=256, layers=4, heads=4, kv_heads=2)
    for arch in ("gpt2", "llama", "qwen2"):
        for dtype in ("float32", "bfloat16"):
            model = random_model(arch, word_tokenizer(vocab), init=0.2, context=64, **shape).to(getattr(torch, dtype))
            lm = LanguageModel(model, word_tokenizer(vocab), device=device)
            worst = 0.0
            for handles in walk_then_batch(lm, seed=0):
                cached = lm.next_logprobs(handles)
                fresh = lm.uncached_next_logprobs(handles)
                worst = max(worst, float(np.abs(cached - fresh).max()))
            rows.append({"arch": arch, "dtype": dtype, "max_abs_diff": worst, "tolerance": TOLERANCE[dtype],
                         "ok": worst <= TOLERANCE[dtype]})
    return rows


def big_model(device: str, small: bool) -> LanguageModel:
    vocab = 1000 if small else 151_936
    tokenizer = word_tokenizer(vocab)
    model = random_model("qwen2", tokenizer, context=256, **(SMALL if small else QWEN2_05B))
    dtype = torch.float32 if small or device == "cpu" else torch.bfloat16
    return LanguageModel(model.to(dtype), tokenizer, device=device, cache_bytes=(2**28 if small else 16 * 2**30))


def run_samplers(lm: LanguageModel, small: bool) -> list[dict]:
    rows, horizon, n = [], (4 if small else 8), (4 if small else 8)
    for sampler in names("generation"):
        start = time.perf_counter()
        run = generate(lm, "", horizon, "no-e", sampler=sampler, values="heuristic", n=n, seed=0)
        seconds = time.perf_counter() - start
        led = run.result.ledger
        rows.append({"sampler": sampler, "samples": int(run.result.samples.size), "seconds": seconds,
                     "seconds_per_sample": seconds / max(1, run.result.samples.size),
                     "forward_passes": led.forward_passes, "tokens": led.tokens})
    return rows


def throughput(lm: LanguageModel, small: bool) -> list[dict]:
    rows, length = [], (8 if small else 32)
    bos, eos = lm.tokenizer.bos_id, lm.tokenizer.eos_id
    for batch in (1, 16, 64):
        task = GenerationTask(lm, "", length, length_reward)
        start = time.perf_counter()
        leaves = task.sample_suffix(np.zeros(batch, dtype=np.int64), np.random.default_rng(batch))
        ours = time.perf_counter() - start
        ours_tokens = int(task.tree.depth_of(leaves).sum())
        ids = torch.full((batch, 1), bos, dtype=torch.long, device=lm.device)
        start = time.perf_counter()
        with torch.no_grad():
            out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                                    max_new_tokens=length, pad_token_id=eos, eos_token_id=eos)
        if lm.device.type == "cuda":
            torch.cuda.synchronize()
        theirs = time.perf_counter() - start
        new = out[:, 1:]
        ended = (new == eos).int().cumsum(dim=1)
        theirs_tokens = int(((ended == 0) | ((ended == 1) & (new == eos))).sum())
        rows.append({"batch": batch, "ours_tokens_per_s": ours_tokens / ours, "generate_tokens_per_s": theirs_tokens / theirs,
                     "ours_over_generate_seconds_per_token": (ours / ours_tokens) / (theirs / theirs_tokens)})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--small", action="store_true", help="tiny models: for the CPU and the test suite")
    parser.add_argument("--out", type=Path, default=Path("device_check.json"))
    args = parser.parse_args(argv)
    with torch.no_grad():  # a block, not torch.set_grad_enabled: the test suite calls main() in its own process
        return _check(args)


def _check(args) -> dict:
    start = time.perf_counter()
    report = {"device": args.device, "small": args.small, "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None}
    import transformers

    report["transformers"] = transformers.__version__
    report["cache"] = check_cache(args.device, args.small)
    lm = big_model(args.device, args.small)
    report["model_parameters"] = int(sum(p.numel() for p in lm.model.parameters()))
    report["samplers"] = run_samplers(lm, args.small)
    report["throughput"] = throughput(lm, args.small)
    report["seconds"] = time.perf_counter() - start
    args.out.write_text(dumps(report, indent=2) + "\n")
    print_report(report)
    return report


def print_report(report: dict) -> None:
    print(f"device {report['device']} ({report['gpu'] or 'cpu'}), torch {report['torch']}, transformers "
          f"{report['transformers']}; {report['seconds']:.0f} s in all")
    print("cache = uncached:")
    for row in report["cache"]:
        print(f"  {row['arch']:6} {row['dtype']:9} max |diff| {row['max_abs_diff']:.2e} (tolerance {row['tolerance']:g}) "
              f"{'ok' if row['ok'] else 'FAILED'}")
    print(f"samplers on a {report['model_parameters'] / 1e6:.3g}M-parameter Qwen2-shaped model:")
    for row in report["samplers"]:
        print(f"  {row['sampler']:12} {row['samples']:3} samples  {row['seconds_per_sample']:8.3f} s/sample  "
              f"{row['forward_passes']:6} passes  {row['tokens']:8} tokens")
    print("left-to-right sampling, tokens per second:")
    for row in report["throughput"]:
        print(f"  batch {row['batch']:3}: backend {row['ours_tokens_per_s']:9.1f}  generate {row['generate_tokens_per_s']:9.1f}"
              f"  (backend / generate seconds per token {row['ours_over_generate_seconds_per_token']:.2f})")


if __name__ == "__main__":
    report = main()
    raise SystemExit(0 if all(row["ok"] for row in report["cache"]) else 1)
