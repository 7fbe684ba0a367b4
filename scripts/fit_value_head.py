"""Fit a value head at test time on the Dyck model and report its held-out error.

For one prompt: draw prefixes the way a sampler meets them (partial
generations from pi_ref), label each with k Monte-Carlo rollouts (model
calls and reward calls counted), fit the MLP head on the pre-logits of 80% of
them, and report the mean absolute error on the other 20% against the rollout
labels and against the exact V* (enumerable here), beside the error of
predicting the training mean.

    .venv/bin/python scripts/fit_value_head.py [--horizon 8] [--prefixes 400] [--k 16]
"""

from __future__ import annotations

import argparse

import numpy as np

from ttsample.lm.backend import LanguageModel
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import dyck_valid
from ttsample.lm.targets import tilted_target
from ttsample.lm.values import RolloutValues, ValueHead


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--prefixes", type=int, default=400)
    parser.add_argument("--k", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    lm = LanguageModel.load("dyck")
    oracle = LMOracle(lm, "", args.horizon, dyck_valid, values=None)
    exact = tilted_target(LanguageModel.load("dyck"), "", args.horizon, dyck_valid)
    rng = np.random.default_rng(args.seed)
    # partial generations: a pi_ref rollout cut at a uniform depth (ones that ended are skipped)
    responses = []
    while len(responses) < args.prefixes:
        response = ()
        for _ in range(int(rng.integers(1, args.horizon))):
            q = lm.next_logprobs([oracle.prompt + response])[0, oracle.actions]
            p = np.exp(q - q.max())
            response += (int(oracle.actions[rng.choice(p.size, p=p / p.sum())]),)
            if response[-1] == lm.tokenizer.eos_id:
                break
        if lm.tokenizer.eos_id not in response:
            responses.append(response)
    before = lm.ledger.as_dict()
    labels = RolloutValues(oracle, k=args.k, seed=args.seed).estimate(responses)
    spent = {k: v - before[k] for k, v in lm.ledger.as_dict().items() if v - before[k]}
    head = ValueHead(oracle, seed=args.seed)
    err_rollout = head.fit(responses, labels, seed=args.seed)
    order = np.random.default_rng(args.seed).permutation(len(responses))
    held = order[int(len(order) * 0.8):]
    train = order[: int(len(order) * 0.8)]
    ids = np.array([_node_id(exact, r) for r in responses])
    v_star = np.exp(exact.log_values()[ids])
    pred = np.exp(head(None, [responses[i] for i in held]))
    print(f"Dyck model, horizon {args.horizon}: {len(responses)} prefixes, {args.k} rollouts each ({spent})")
    print(f"held-out MAE vs rollout labels: {err_rollout:.4f} (predicting the training mean: "
          f"{np.mean(np.abs(labels[held] - labels[train].mean())):.4f})")
    print(f"held-out MAE vs exact V*: {np.mean(np.abs(pred - v_star[held])):.4f} (training mean: "
          f"{np.mean(np.abs(v_star[held] - labels[train].mean())):.4f}; the rollout labels themselves: "
          f"{np.mean(np.abs(labels[held] - v_star[held])):.4f})")


def _node_id(exact, response) -> int:
    b = exact.tree.branching
    index = {int(t): a for a, t in enumerate(exact.actions)}
    position = 0
    for t in response:
        position = position * b + index[t]
    return int(exact.tree.level_starts[len(response)] + position)


if __name__ == "__main__":
    main()
