"""A reward model scored a batch at a time against one text at a time, inside best-of-n.

The same sequence-classification reward model (random-initialised BERT, 4
layers of width 256 by default, with the shipped MiniLM tokenizer: built
offline) scores best-of-n's candidates on the subword model, 64 candidates per
answer on 8 prompts, once as ttsample's batched ``hf:`` reward and once
wrapped as a per-text function (one forward pass per response). Both runs use
the same seeds, so they draw the same candidates; the script checks that the
answers are the same and reports seconds per answer, seconds inside the
reward, and their ratios, side by side in one run.

    .venv/bin/python benchmarks/reward_batching.py [--layers 4] [--width 256] [--candidates 64] [--prompts 8] [--threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time


def build_reward_model(folder: str, layers: int, width: int) -> None:
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from ttsample.lm.embedding import minilm_folder

    tokenizer = AutoTokenizer.from_pretrained(minilm_folder(), local_files_only=True)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=width, num_hidden_layers=layers,
                        num_attention_heads=max(1, width // 64), intermediate_size=4 * width, num_labels=1)
    torch.manual_seed(0)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


class Timed:
    """A reward function with the seconds spent inside it."""

    def __init__(self, function):
        self.function, self.seconds = function, 0.0

    def __call__(self, *args):
        start = time.perf_counter()
        try:
            return self.function(*args)
        finally:
            self.seconds += time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--candidates", type=int, default=64)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--horizon", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import torch

    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.generate import generate
    from ttsample.lm.reward_model import SequenceClassifierReward
    from ttsample.lm.rewards import Reward

    torch.set_num_threads(args.threads)
    prompts = ["this license", "the software", "you may", "permission is", "the above", "in no event",
               "redistribution", "the author"][: args.prompts]
    with tempfile.TemporaryDirectory() as folder:
        build_reward_model(folder, args.layers, args.width)
        model = SequenceClassifierReward(folder)
        # both read the response only (a per-text reward cannot see the prompt), so both score the same pairs
        batched = Timed(lambda prompts, texts: model([""] * len(texts), texts))
        per_text = Timed(lambda text: float(model([""], [text])[0]))
        rewards = {"batched": Reward(batched, "rm (batched)", batched=True),
                   "one text at a time": Reward(per_text, "rm (per text)")}
        lm = LanguageModel.load("subword")
        rows, answers = [], {}
        for name, reward in rewards.items():
            clock = batched if reward.batched else per_text
            clock.seconds = 0.0
            start = time.perf_counter()
            calls = texts = 0
            answers[name] = []
            for i, prompt in enumerate(prompts):
                run = generate(LanguageModel(lm.model, lm.tokenizer), prompt, args.horizon, reward,
                               sampler="best-of-n", beta=1.0, n=1, seed=i, candidates=args.candidates)
                calls += run.result.ledger.reward_calls
                texts += run.result.ledger.reward_texts
                answers[name] += run.texts()
            total = time.perf_counter() - start
            rows.append((name, total / len(prompts), clock.seconds / len(prompts), calls, texts))
    same = answers["batched"] == answers["one text at a time"]
    print(f"best-of-n, {args.candidates} candidates, {len(prompts)} prompts, H = {args.horizon}, reward model BERT "
          f"{args.layers} x {args.width} (random init), {args.threads} thread(s); same answers in both runs: {same}")
    print("| reward | seconds per answer | of which in the reward | reward calls | reward texts |")
    print("|---|---|---|---|---|")
    for name, per_answer, in_reward, calls, texts in rows:
        print(f"| {name} | {per_answer:.3f} | {in_reward:.3f} | {calls:,} | {texts:,} |")
    (_, a_b, r_b, _, _), (_, a_t, r_t, _, _) = rows
    print(f"one text at a time / batched: {a_t / a_b:.2f}x seconds per answer, {r_t / r_b:.2f}x seconds in the reward")


if __name__ == "__main__":
    main()
