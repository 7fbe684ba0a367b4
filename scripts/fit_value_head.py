"""Fit a value head at test time on the Dyck model and report its held-out error.

For one prompt: draw prefixes the way a sampler meets them (partial
generations from pi_ref, cut at a uniform depth), label each with k
Monte-Carlo rollouts (model calls and reward calls counted), fit the MLP head
on the pre-logits of 80% of them, and report the mean absolute error on the
other 20% against the rollout labels and against the exact V* (enumerable
here), beside the error of predicting the training mean.

    .venv/bin/python scripts/fit_value_head.py [--horizon 8] [--prefixes 400] [--k 16]
"""

from __future__ import annotations

import argparse

import numpy as np

from ttsample.lm.backend import LanguageModel
from ttsample.lm.rewards import dyck_valid
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import ExactValues, RolloutValues, ValueHead, partial_generations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--prefixes", type=int, default=400)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    lm = LanguageModel.load("dyck")
    task = GenerationTask(lm, "", args.horizon, dyck_valid)
    rng = np.random.default_rng(args.seed)
    nodes = partial_generations(task, args.prefixes, rng)
    before = lm.ledger.as_dict()
    labels = RolloutValues(task, rng, k=args.k).estimate(nodes)
    spent = {k: v - before[k] for k, v in lm.ledger.as_dict().items() if v - before[k]}
    head = ValueHead(task, np.random.default_rng(args.seed))
    err_rollout = head.fit(nodes, labels, np.random.default_rng(args.seed))
    order = np.random.default_rng(args.seed).permutation(nodes.size)  # the split fit() made
    train, held = order[: int(nodes.size * 0.8)], order[int(nodes.size * 0.8):]
    v_star = np.exp(ExactValues(task)(nodes))  # enumerates the trie: after the fit, so it costs the fit nothing
    pred = np.exp(head(nodes[held]))
    print(f"Dyck model, horizon {args.horizon}: {nodes.size} prefixes, {args.k} rollouts each ({spent})")
    print(f"held-out MAE vs rollout labels: {err_rollout:.4f} (predicting the training mean: "
          f"{np.mean(np.abs(labels[held] - labels[train].mean())):.4f})")
    print(f"held-out MAE vs exact V*: {np.mean(np.abs(pred - v_star[held])):.4f} (training mean: "
          f"{np.mean(np.abs(v_star[held] - labels[train].mean())):.4f}; the rollout labels themselves: "
          f"{np.mean(np.abs(labels[held] - v_star[held])):.4f})")


if __name__ == "__main__":
    main()
