"""VGB at long horizons and rare targets, beside twisted SMC, ActionLevelRS and OutcomeLevelRS (issue 22).

    .venv/bin/python benchmarks/long_horizon.py [--quick] [--seed 0] [--seconds 60] [--samples 400]

The targets (ours). The embedded Dyck model, an empty prompt, horizon H and the constraint "a valid Dyck word over
() and [] that nests at least k deep, with <eos> within H": rare because the model seldom nests deep. Its prefix
check (can this prefix still become such a word within H?) is exact, so V* > 0 exactly where the check passes. The
support is enumerated (pruned by the prefix check), so pi* and Z are exact at every (H, k) here:

    (H, k)   Z         responses
    (12, 5)  2.8e-4       32
    (16, 6)  4.4e-4     1,600
    (16, 7)  2.0e-5       128
    (22, 9)  3.6e-8    18,944

Each method draws up to ``--samples`` responses within ``--seconds`` of sampling (``Budget``: a run that hits it
keeps what it completed, and the table says so). TV is against the exact pi*, with the floor (mean TV of as many
exact draws); where the support is too large for TV to say anything at that n, the projections (length, nesting
depth, share of round brackets) are compared against pi*'s exact ones. Methods, all given the constraint and its
prefix check only (bar the best case):
- ``twisted-smc``: independent runs of 64 particles twisted by the prefix check, one resampled draw per run;
- ``vgb-alpha``: VGB, heuristic ``alpha^(H-h) 1{prefix ok}`` with ``alpha = Z_hat^(1/H)`` from a 100-particle pilot
  (the recipe of benchmarks/vs_genlm.py);
- ``vgb-calibrated``: VGB with ``DepthCalibratedValues`` (a 256-particle pilot's per-depth normaliser);
- ``vgb-exact``: VGB with V* (the best case: the values a perfect estimator would give);
- ``action-rs``: guided decoding on the calibrated values (biased without V*);
- ``outcome-rs``: rejection from pi_ref.
For the walks: the share of the walk's moves at each depth (depth occupancy) and the share of chains that ended at
a leaf at time T (leaf-hit rate), against the stationary leaf share ``K Z / (K Z + sum_h M_h)`` that the values imply.
One torch thread; the model's caches start empty for every method.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from vs_genlm import EOS_ID, SYMBOLS, complete_ok, nesting, prefix_ok  # noqa: E402

TARGETS = [(12, 5), (16, 6), (16, 7), (22, 9)]
QUICK_TARGETS = [(12, 5), (16, 7)]
METHODS = ["twisted-smc", "vgb-alpha", "vgb-calibrated", "vgb-exact", "action-rs", "outcome-rs"]
PARTICLES = 64


def support(h: int, k: int) -> list[str]:
    out: list[str] = []

    def grow(s: str) -> None:
        if complete_ok(s, h, k):
            out.append(s)
        if len(s) < h - 1:
            for c in "()[]":
                if prefix_ok(s + c, h, k):
                    grow(s + c)

    grow("")
    return out


def node_of_words(task, words: list[str]) -> np.ndarray:
    """The trie leaves of whole responses (each word then <eos>), descended one depth at a time for all at once."""
    col = {int(t): i for i, t in enumerate(task.actions)}
    ids = [task.lm.tokenizer.encode(w) + [EOS_ID] for w in words]
    acts = np.full((len(ids), max(map(len, ids))), -1)
    for i, seq in enumerate(ids):
        acts[i, : len(seq)] = [col[t] for t in seq]
    nodes = np.zeros(len(ids), dtype=np.int64)
    for d in range(acts.shape[1]):
        m = acts[:, d] >= 0
        nodes[m] = task.tree.child(nodes[m], acts[m, d])
    return nodes


class Target:
    """pi* by enumeration of the support; V* at every prefix of it (0 elsewhere, by the exact prefix check)."""

    def __init__(self, lm, h: int, k: int):
        from ttsample.lm.task import GenerationTask

        self.h, self.k = h, k
        words = support(h, k)
        task = GenerationTask(lm, "", h, lambda text: float(complete_ok(text, h, k)))
        leaves = node_of_words(task, words)
        log_p = task.log_pi_ref(leaves).astype(np.float64)
        self.log_z = float(np.logaddexp.reduce(log_p))
        self.keys = [tuple(t) for t in task.tokens(leaves)]
        self.pi = np.exp(log_p - self.log_z)
        self.index = {key: i for i, key in enumerate(self.keys)}
        mass: dict = {}
        for key, lp in zip(self.keys, log_p):
            for d in range(len(key)):
                mass[key[:d]] = np.logaddexp(mass.get(key[:d], -np.inf), lp)
        self.log_mass = mass  # prefix tokens -> log sum of pi_ref over the support below
        self.proj = {name: project(self.keys, self.pi, f) for name, f in PROJECTIONS.items()}

    def floor(self, n: int, rng: np.random.Generator, reps: int = 100) -> dict:
        tv, proj = [], {name: [] for name in PROJECTIONS}
        for _ in range(reps):
            counts = rng.multinomial(n, self.pi) / n
            tv.append(0.5 * np.abs(counts - self.pi).sum())
            for name, f in PROJECTIONS.items():
                proj[name].append(projection_tv(project(self.keys, counts, f), self.proj[name]))
        return {"tv": float(np.mean(tv)), **{name: float(np.mean(v)) for name, v in proj.items()}}


def text_of(key) -> str:
    return "".join(SYMBOLS[t] for t in key if t != EOS_ID)


PROJECTIONS = {
    "length": lambda key: len(text_of(key)),
    "depth": lambda key: nesting(text_of(key)),
    "round": lambda key: round(text_of(key).count("(") / max(1, len(text_of(key)) // 2) * 4) / 4,
}


def project(keys, weights, f) -> dict:
    out: dict = {}
    for key, w in zip(keys, weights):
        out[f(key)] = out.get(f(key), 0.0) + float(w)
    return out


def projection_tv(a: dict, b: dict) -> float:
    return 0.5 * sum(abs(a.get(v, 0.0) - b.get(v, 0.0)) for v in set(a) | set(b))


class ExactLookup:
    proves_zeros = True

    def __init__(self, task, target: Target):
        self.task, self.target = task, target

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        log_pi = self.task.log_pi_ref(nodes)
        return np.array([self.target.log_mass.get(tuple(k), -np.inf) for k in self.task.tokens(nodes)]) - log_pi


def recording_walk(occupancy: np.ndarray):
    """The dense VGB walk, counting the depth of every chain at every move it makes."""
    from ttsample.samplers.walk import SinclairJerrumWalk

    class Recorded(SinclairJerrumWalk):
        def kernel(self, oracle, ids):
            np.add.at(occupancy, self.tree.depth_of(self.node_of(ids)), 1)
            return super().kernel(oracle, ids)

    return Recorded


def run(method: str, target: Target, n: int, seconds: float, rng: np.random.Generator) -> dict:
    from ttsample.lm.backend import LanguageModel
    from ttsample.lm.oracle import LMOracle
    from ttsample.lm.rewards import Reward
    from ttsample.lm.samplers import vgb as vgb_module
    from ttsample.lm.samplers.action_rs import sample_action_rs
    from ttsample.lm.samplers.base import Budget
    from ttsample.lm.samplers.outcome_rs import sample_outcome_rs
    from ttsample.lm.samplers.smc import sample_smc
    from ttsample.lm.task import GenerationTask
    from ttsample.lm.values import DepthCalibratedValues, HeuristicValues

    h, k = target.h, target.k
    lm = LanguageModel.load("dyck")
    reward = Reward(lambda t: float(complete_ok(t, h, k)), f"dyck-depth-{k}", (0.0, 1.0),
                    prefix=lambda t: float(prefix_ok(t, h, k)))
    task = GenerationTask(lm, "", h, reward)
    budget = Budget(max_seconds=seconds)
    start = time.perf_counter()
    extra: dict = {}
    occupancy = np.zeros(h + 1)
    log_w = None
    if method == "twisted-smc":
        oracle = LMOracle(task, HeuristicValues(task, alpha=1.0))
        samples, weights = [], []
        while len(samples) < n and time.perf_counter() - start < seconds:
            r = sample_smc(task, oracle, 1, rng, particles=PARTICLES, twist=True)
            if np.isfinite(r.info["log_z"]):
                samples.append(int(r.samples[0]))
        leaves = np.array(samples, dtype=np.int64)
        stopped = "max_seconds" if len(samples) < n else None
        ledger = None
    else:
        if method == "vgb-alpha":
            pilot = sample_smc(task, LMOracle(task, HeuristicValues(task, alpha=1.0)), 100, rng, twist=True)
            alpha = float(np.clip(np.exp(pilot.info["log_z"] / h), 0.05, 1.0))
            values, extra["alpha"] = HeuristicValues(task, alpha=alpha), round(alpha, 3)
        elif method in ("vgb-calibrated", "action-rs"):
            values = DepthCalibratedValues(task, rng)
        elif method == "vgb-exact":
            values = ExactLookup(task, target)
        left = max(1e-3, seconds - (time.perf_counter() - start))
        if method.startswith("vgb"):
            kernels = vgb_module.KERNELS
            vgb_module.KERNELS = {**kernels, "dense": recording_walk(occupancy)}
            try:
                result = vgb_module.sample_vgb(task, LMOracle(task, values), n, rng, budget=Budget(max_seconds=left))
            finally:
                vgb_module.KERNELS = kernels
            extra["T"] = result.info["steps"]
            led = result.ledger
            extra["leaf rate"] = (led.tries - led.restarts) / max(led.tries, 1)
            extra["stationary leaf share"] = stationary_leaf_share(task, values, target)
        elif method == "action-rs":
            result = sample_action_rs(task, LMOracle(task, values), n, rng, budget=Budget(max_seconds=left))
        else:
            result = sample_outcome_rs(task, None, n, rng, budget=Budget(max_seconds=left))
        leaves, stopped, ledger = result.samples, result.stopped, result.ledger
    wall = time.perf_counter() - start
    keys = [tuple(t) for t in task.tokens(leaves)] if leaves.size else []
    row = {"method": method, "samples": len(keys), "stopped": stopped or "", "seconds": wall,
           "s/sample": wall / len(keys) if keys else math.inf, "forward passes": lm.ledger.forward_passes,
           "restarts": ledger.restarts if ledger is not None else 0, **extra}
    row.update(measure(target, keys))
    if occupancy.sum():
        row["occupancy"] = occupancy / occupancy.sum()
    return row


def stationary_leaf_share(task, values, target: Target) -> float:
    """Leaf share of the walk's stationary law, ``K Z / (K Z + sum over internal prefixes of pi_ref V_hat)``, over
    the prefixes of the support only (the others have V_hat = 0 under an exact prefix check), from the values."""
    from ttsample.lm.samplers.vgb import choose_kernel  # noqa: F401  (the dense kernel: K = 2H)

    prefixes = [p for p in target.log_mass if len(p) < target.h]
    nodes = node_of_prefixes(task, prefixes)
    log_w = task.log_pi_ref(nodes) + values(nodes)
    inner = float(np.exp(np.logaddexp.reduce(log_w) - target.log_z))
    boost = 2.0 * target.h
    return boost / (boost + inner)


def node_of_prefixes(task, prefixes) -> np.ndarray:
    col = {int(t): i for i, t in enumerate(task.actions)}
    width = max(len(p) for p in prefixes)
    acts = np.full((len(prefixes), max(width, 1)), -1)
    for i, p in enumerate(prefixes):
        acts[i, : len(p)] = [col[t] for t in p]
    nodes = np.zeros(len(prefixes), dtype=np.int64)
    for d in range(acts.shape[1]):
        m = acts[:, d] >= 0
        nodes[m] = task.tree.child(nodes[m], acts[m, d])
    return nodes


def measure(target: Target, keys: list) -> dict:
    if not keys:
        return {"tv": math.nan, **{name: math.nan for name in PROJECTIONS}, "off support": 0}
    counts = np.zeros(target.pi.size)
    off = 0
    for key in keys:
        if key in target.index:
            counts[target.index[key]] += 1
        else:
            off += 1
    q = counts / len(keys)
    out = {"tv": 0.5 * (np.abs(q - target.pi).sum() + off / len(keys)), "off support": off}
    for name, f in PROJECTIONS.items():
        out[name] = projection_tv(project(target.keys, q, f), target.proj[name])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two targets, 10 s per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=60.0, help="sampling budget per method and target")
    parser.add_argument("--samples", type=int, default=400)
    args = parser.parse_args()
    import torch

    from ttsample.lm.backend import LanguageModel

    torch.set_num_threads(1)
    seconds = 10.0 if args.quick else args.seconds
    targets = QUICK_TARGETS if args.quick else TARGETS
    for h, k in targets:
        target = Target(LanguageModel.load("dyck"), h, k)
        floor = target.floor(args.samples, np.random.default_rng(args.seed))
        print(f"\n## H = {h}, nesting >= {k}: Z = {math.exp(target.log_z):.3g}, {target.pi.size:,} responses; floor at "
              f"n = {args.samples}: TV {floor['tv']:.3f}, length {floor['length']:.3f}, depth {floor['depth']:.3f}, "
              f"round {floor['round']:.3f}\n")
        print("| method | samples | s/sample | forward passes | restarts | TV | length | depth | round | notes |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for i, method in enumerate(METHODS):
            row = run(method, target, args.samples, seconds, np.random.default_rng(args.seed + i))
            notes = [f"stopped at {seconds:g} s" if row["stopped"] else "", f"{row['off support']} off support"
                     if row["off support"] else ""]
            notes += [f"{key} {row[key]:.3g}" for key in ("alpha", "T", "leaf rate", "stationary leaf share") if key in row]
            if "occupancy" in row:
                occ = row["occupancy"]
                notes.append("occupancy by depth " + " ".join(f"{x:.2f}" for x in occ))
            print(f"| {method} | {row['samples']} | {row['s/sample']:.3g} | {row['forward passes']:,} | "
                  f"{row['restarts']:,} | {row['tv']:.3f} | {row['length']:.3f} | {row['depth']:.3f} | "
                  f"{row['round']:.3f} | {'; '.join(x for x in notes if x)} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
