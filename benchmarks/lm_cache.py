"""The KV-cached backend on a token trie: a backtracking VGB workload and left-to-right sampling.

Two models, side by side in one run: the embedded subword model (4,096
tokens, a GPT-2 trained by `ttsample train-tiny --task subword`) at horizon
32, and a GPT-2 with GPT-2's vocabulary (50,257 tokens) at random
initialisation (width 64, 2 layers) at horizon 16. For each:

1. VGB: the Sinclair–Jerrum walk with the proposal kernel (leaf boost 2H,
   T = --steps-factor (H+1)^2 steps, restart rule) on the constraint "no
   letter e", values alpha^(H-h) r(prefix) (the VGB paper's untrained
   heuristic, --alpha 0.6), drawing --samples samples. Prints the ledger, the tokens fed
   to the model per distinct prefix beyond the prompt, the forward passes
   against recomputing every requested prefix by its own pass, and the cache's
   peak bytes against its bound.
2. Left-to-right sampling of 64 continuations of H tokens: the backend
   (GenerationTask.sample_suffix, one batched step per token) against Hugging
   Face `generate` with its own KV cache (both sample, both stop at <eos>);
   seconds per generated token.

    .venv/bin/python benchmarks/lm_cache.py [--samples 100] [--steps-factor 4] [--cache-mib 2048] [--alpha 0.6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from ttsample.lm.backend import LanguageModel
from ttsample.lm.oracle import LMOracle
from ttsample.lm.random_models import word_tokenizer
from ttsample.lm.rewards import no_letter
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import HeuristicValues
from ttsample.samplers.walk import sample_walk_proposal

GPT2_VOCAB = 50_257


def gpt2_sized(cache_bytes: int) -> LanguageModel:
    """GPT-2's vocabulary on a small random GPT-2; tokens are four-letter words (a constraint on letters bites)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = word_tokenizer(GPT2_VOCAB)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=GPT2_VOCAB, n_positions=64, n_embd=64, n_layer=2, n_head=4,
                                           bos_token_id=GPT2_VOCAB - 1, eos_token_id=GPT2_VOCAB - 2))
    return LanguageModel(model, tokenizer, cache_bytes=cache_bytes)


def record_requests(lm: LanguageModel) -> dict:
    """Counts what a backend without a cache would compute: one pass per request over the whole prefix."""
    seen = {"requests": 0, "tokens": 0, "distinct": set()}
    answer = lm.next_logprobs_tensor  # what the generation task asks

    def recorded(prefixes):
        handles = np.asarray(prefixes, dtype=np.int64)
        seen["requests"] += handles.size
        seen["tokens"] += int(lm.depth(handles).sum())
        seen["distinct"].update(handles.tolist())
        return answer(prefixes)

    lm.next_logprobs_tensor = recorded
    return seen


def vgb(lm: LanguageModel, prompt: str, horizon: int, samples: int, steps_factor: float, alpha: float) -> dict:
    task = GenerationTask(lm, prompt, horizon, no_letter("e"))
    seen = record_requests(lm)
    oracle = LMOracle(task, HeuristicValues(task, alpha=alpha))
    steps = int(steps_factor * (horizon + 1) ** 2)
    result = sample_walk_proposal(oracle, samples, np.random.default_rng(0), steps=steps)
    texts = task.text(result.samples)
    distinct_beyond_prompt = len(seen["distinct"]) - 1
    return {
        "ledger": result.ledger, "steps": steps, "texts": texts, "seen": seen,
        "tokens_per_prefix": (result.ledger.tokens - len(task.prompt)) / max(distinct_beyond_prompt, 1),
        "valid": float(np.mean(["e" not in t for t in texts])), "trie_nodes": task.tree.num_nodes,
        "peak": lm.peak_cached_bytes, "bound": lm.cache_bytes,
    }


def left_to_right(lm: LanguageModel, prompt: str, horizon: int, rows: int = 64) -> dict:
    import torch

    task = GenerationTask(lm, prompt, horizon, no_letter("e"))
    start = time.perf_counter()
    leaves = task.sample_suffix(np.zeros(rows, dtype=np.int64), np.random.default_rng(1))
    ours = time.perf_counter() - start
    ours_tokens = int(task.tree.depth_of(leaves).sum())
    ids = torch.tensor([task.prompt])
    start = time.perf_counter()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        out = lm.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                                max_new_tokens=horizon, num_return_sequences=rows, pad_token_id=lm.tokenizer.eos_id,
                                eos_token_id=lm.tokenizer.eos_id)
    theirs = time.perf_counter() - start
    new = out[:, ids.shape[1]:]
    ended = (new == lm.tokenizer.eos_id).int().cumsum(dim=1)
    theirs_tokens = int(((ended == 0) | ((ended == 1) & (new == lm.tokenizer.eos_id))).sum())
    return {"ours": ours, "ours_tokens": ours_tokens, "theirs": theirs, "theirs_tokens": theirs_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--steps-factor", type=float, default=4.0, help="T = factor * (H + 1)**2 walk steps")
    parser.add_argument("--cache-mib", type=float, default=2048, help="the backend's byte budget, in MiB")
    # V*(v) is about p**(H - h) with p the share of tokens without an e (0.71 under the subword model):
    # alpha below p tilts the walk downward; alpha = 0.9 (the paper's) tilts it up here and the walk rarely reaches a leaf
    parser.add_argument("--alpha", type=float, default=0.6, help="the heuristic's alpha in alpha**(H-h) r(prefix)")
    args = parser.parse_args()
    cache_bytes = int(args.cache_mib * 2**20)
    cases = [("subword", lambda: LanguageModel.load("subword", cache_bytes=cache_bytes), "this license", 32),
             ("gpt2-vocab random", lambda: gpt2_sized(cache_bytes), "", 16)]
    print("| model | vocab | H | samples | T | walk seconds | forward passes | tokens | tokens / distinct prefix | "
          "requests (one pass each without the cache) | passes saved | peak cache MiB / bound | no-e |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    timings = []
    for name, load, prompt, horizon in cases:
        lm = load()
        r = vgb(lm, prompt, horizon, args.samples, args.steps_factor, args.alpha)
        led, seen = r["ledger"], r["seen"]
        print(f"| {name} | {lm.vocab_size:,} | {horizon} | {args.samples} | {r['steps']:,} | {led.seconds:.1f} | "
              f"{led.forward_passes:,} | {led.tokens:,} | {r['tokens_per_prefix']:.3f} | {seen['requests']:,} | "
              f"{seen['requests'] / led.forward_passes:.1f}x | {r['peak'] / 2**20:.0f} / {r['bound'] / 2**20:.0f} | "
              f"{r['valid']:.0%} |", flush=True)
        print(f"  (cache hits {led.cache_hits:,}, misses {led.cache_misses:,}, reward calls {led.reward_calls:,}, "
              f"trie nodes {r['trie_nodes']:,}, restarts {led.restarts:,}; first samples: {r['texts'][:3]})", flush=True)
        timings.append((name, horizon, left_to_right(load(), prompt, horizon)))
    print("\n| model | left-to-right, 64 rows | ours: s (tokens) | HF generate: s (tokens) | ours / generate per token |")
    print("|---|---|---|---|---|")
    for name, horizon, t in timings:
        ratio = (t["ours"] / t["ours_tokens"]) / (t["theirs"] / t["theirs_tokens"])
        print(f"| {name} | H = {horizon} | {t['ours']:.2f} ({t['ours_tokens']:,}) | {t['theirs']:.2f} "
              f"({t['theirs_tokens']:,}) | {ratio:.2f} |")


if __name__ == "__main__":
    main()
