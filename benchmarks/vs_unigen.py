"""ttsample's counting-to-sampling reduction against UniGen on seeded formulas: seconds per sample, and uniformity.

    python benchmarks/vs_unigen.py [--quick] [--seed 0] [--budget 600] [--order occurrence] [--enumerate-below 128]
                                   [--thresholds 32,128,1024] [--tools jvv,lifted,unigen] [--skip-timing]
                                   [--skip-uniformity]

Needs the SAT extra (``pip install -c constraints.txt -e ".[sat]"``: pyganak, pyapproxmc 4.1.24, pycryptosat,
pyunigen); without it the script says so and exits 2. ``make bench-unigen`` runs it as is.

Formulas (all generated here from the seed; none is read from disk):
- ``rand3sat``: uniform random 3-SAT, 60 variables at clause ratio 3.3 (below the 4.26 threshold);
- ``colouring``: proper 4-colourings of a random graph G(20, 0.15), one-hot encoded (80 variables);
- ``xor``: 10 random parities of 5 of 50 variables, Tseitin-encoded with 40 auxiliary variables, plus 75 random
  3-clauses; the sampling set (``c ind``) is the 50 originals, so counting and sampling are projected.
Uniformity uses smaller members of the same families (at most a few thousand solutions), enumerated completely.

Timing. Each cell is one fresh process (the counts cached by one run are not reused by the next), wall-clock from
the formula to the N-th sample: the root count, every counter and SAT call, enumeration and the sampler for ttsample;
the Sampler object, its internal ApproxMC count and the sampling for UniGen. A run that exceeds ``--budget`` seconds
is killed and shown as ``> budget``; a run out of budget at N = 100 is not run again at N = 1000 (shown the same). ttsample runs: JVV with the exact counter (Ganak), and the lifted walk with
the approximate counter (ApproxMC, epsilon 0.8, delta 0.2), both with the variable order of ``--order``.
UniGen (pyunigen, its defaults: epsilon 0.8, delta 0.2, kappa 0.638) is timed two ways: one ``sample(num=N)`` call,
and N/100 fresh samplers of 100 samples each (different seeds), since one call's time grows faster than N (measured
here: 5.3 s for 100 samples, 29 s for 300, 292 s for 1000 on the 60-variable random formula). "ratio" is
ttsample-JVV's seconds per sample over the faster of the two UniGen columns.

Uniformity. All solutions are enumerated (CryptoMiniSat with blocking clauses), N = 5 per solution (at least 1000)
are drawn by each sampler, and each gets a chi-square test of uniformity (its p-value) and its total variation to
uniform, set against the TV of N exact uniform draws (mean and 99th percentile over 200 simulated repetitions): a
TV at that level is as good as exact sampling at that N. UniGen draws in batches of 500 (fresh seeds).
"""

from __future__ import annotations

import argparse
import itertools
import math
import multiprocessing as mp
import random
import sys
import time

import numpy as np
from scipy import stats

from ttsample.errors import TtsampleError
from ttsample.sat import CNF, sample_cnf
from ttsample.sat.counters import SatCosts, SatSolver
from ttsample.sat.tools import MissingToolError, quiet_stdout, tool_versions, unigen_module


# -- formulas ---------------------------------------------------------------------------------------------------------


def random_3sat(n: int, ratio: float, seed: int) -> CNF:
    """Uniform random 3-SAT, ``round(ratio * n)`` clauses of 3 distinct variables (satisfiable w.h.p. below 4.26)."""
    rng = random.Random(seed)
    clauses = tuple(tuple(rng.choice((-1, 1)) * v for v in rng.sample(range(1, n + 1), 3)) for _ in range(round(ratio * n)))
    return CNF(n, clauses, None, f"random-3sat(n={n}, ratio={ratio}, seed={seed})")


def colouring(vertices: int, edge_prob: float, colours: int, seed: int) -> CNF:
    """Proper colourings of a random graph G(vertices, edge_prob), one-hot: x(v, c) = vertex v has colour c."""
    rng = random.Random(seed)
    var = lambda v, c: v * colours + c + 1  # noqa: E731
    clauses = []
    for v in range(vertices):
        clauses.append(tuple(var(v, c) for c in range(colours)))
        clauses += [(-var(v, a), -var(v, b)) for a, b in itertools.combinations(range(colours), 2)]
    for u, v in itertools.combinations(range(vertices), 2):
        if rng.random() < edge_prob:
            clauses += [(-var(u, c), -var(v, c)) for c in range(colours)]
    return CNF(vertices * colours, tuple(clauses), None,
               f"colouring(vertices={vertices}, p={edge_prob}, colours={colours}, seed={seed})")


def xor_heavy(n: int, xors: int, length: int, ratio: float, seed: int) -> CNF:
    """``xors`` random parity constraints of ``length`` variables over ``n`` variables plus ``ratio * n`` random 3-clauses.

    Each parity is Tseitin-encoded in CNF by a chain of 3-variable XORs on auxiliary variables (4 clauses each); the
    sampling set (``c ind``) is the ``n`` original variables, so counts and samples are projected.
    """
    rng = random.Random(seed)
    clauses = [tuple(rng.choice((-1, 1)) * v for v in rng.sample(range(1, n + 1), 3)) for _ in range(round(ratio * n))]
    nxt = n + 1
    for _ in range(xors):
        vs = rng.sample(range(1, n + 1), length)
        parity = rng.random() < 0.5
        acc = vs[0]
        for v in vs[1:]:
            t = nxt  # t = acc xor v
            nxt += 1
            clauses += [(-t, acc, v), (-t, -acc, -v), (t, -acc, v), (t, acc, -v)]
            acc = t
        clauses.append((acc,) if parity else (-acc,))
    return CNF(nxt - 1, tuple(clauses), tuple(range(1, n + 1)),
               f"xor-heavy(n={n}, xors={xors}, length={length}, ratio={ratio}, seed={seed})")


FORMULAS = {  # timing: (full, quick)
    "rand3sat": (lambda s: random_3sat(60, 3.3, s + 3), lambda s: random_3sat(40, 3.3, s + 3)),
    "colouring": (lambda s: colouring(20, 0.15, 4, s + 1), lambda s: colouring(12, 0.2, 4, s + 1)),
    "xor": (lambda s: xor_heavy(50, 10, 5, 1.5, s + 2), lambda s: xor_heavy(30, 6, 5, 1.5, s + 2)),
}
UNIFORMITY = {  # at most a few thousand solutions: (full, quick)
    "rand3sat": (lambda s: random_3sat(22, 2.6, s + 1), lambda s: random_3sat(14, 3.0, s + 1)),
    "colouring": (lambda s: colouring(7, 0.3, 4, s + 1), lambda s: colouring(5, 0.4, 3, s + 1)),
    "xor": (lambda s: xor_heavy(18, 3, 4, 1.2, s + 1), lambda s: xor_heavy(12, 3, 4, 1.5, s + 1)),
}


# -- runs in their own processes --------------------------------------------------------------------------------------


def canonical(literals) -> tuple[int, ...]:
    return tuple(sorted(literals, key=abs))


def run_ttsample(cnf: CNF, n: int, sampler: str, counter: str, order: str, enumerate_below: int, seed: int,
                 keep: bool) -> dict:
    start = time.perf_counter()
    run = sample_cnf(cnf, n, sampler=sampler, counter=counter, seed=seed, order=order, enumerate_below=enumerate_below)
    seconds = time.perf_counter() - start
    stats_ = run.oracle.stats()
    return {"seconds": seconds, "solutions": [canonical(s) for s in run.solutions] if keep else None,
            "counter_calls": stats_["counter_calls"], "counter_seconds": stats_["counter_seconds"],
            "enumerated": stats_["enumerated_solutions"], "enumeration_seconds": stats_["enumeration_seconds"]}


def run_unigen(cnf: CNF, n: int, batch: int, seed: int, keep: bool) -> dict:
    module = unigen_module()
    start = time.perf_counter()
    out: list = []
    k = 0
    while len(out) < n:
        sampler = module.Sampler(seed=seed * 1000 + k + 1)
        k += 1
        for clause in cnf.clauses:
            sampler.add_clause(list(clause))
        with quiet_stdout():
            _, _, samples = sampler.sample(num=min(batch, n - len(out)), sampling_set=list(cnf.sampled))
        out += samples
    seconds = time.perf_counter() - start
    sampled = set(cnf.sampled)
    return {"seconds": seconds, "solutions": [canonical(l for l in s if abs(l) in sampled) for s in out[:n]] if keep else None}


def _child(queue, fn, args):
    try:
        queue.put(("ok", fn(*args)))
    except Exception as exc:  # reported in the table, never hidden
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def isolated(fn, args, budget: float):
    """``fn(*args)`` in a fresh process; ("ok", result), ("error", message) or ("timeout", None) after ``budget`` s."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, fn, args))
    proc.start()
    deadline = time.monotonic() + budget
    result = None
    while result is None and time.monotonic() < deadline:
        try:
            result = queue.get(timeout=min(1.0, max(0.01, deadline - time.monotonic())))
        except Exception:  # queue.Empty
            if not proc.is_alive() and queue.empty():
                result = ("error", f"the process died (exit code {proc.exitcode})")
    if result is None:
        proc.kill()
        result = ("timeout", None)
    proc.join()
    return result


# -- tables -----------------------------------------------------------------------------------------------------------


def per_sample(result, n: int, budget: float) -> tuple[str, float | None]:
    status, value = result
    if status == "ok":
        return f"{value['seconds'] / n:.4f}", value["seconds"] / n
    if status == "timeout":
        return f"> {budget / n:.3g} (budget)", None
    if status == "skipped":
        return "not run", None
    return f"error ({value[:60]})", None


def timing(args) -> None:
    sizes = (20, 100) if args.quick else (100, 1000)
    print("\n## Seconds per sample\n")
    print(f"ttsample: variable order {args.order}, enumerate below {args.enumerate_below}; budget {args.budget:.0f} s per cell; "
          "each cell a fresh process.\n")
    header = ("| formula | vars (sampled) | solutions | N | ttsample JVV + Ganak | ttsample lifted + ApproxMC | "
              "UniGen, 1 call | UniGen, batches of 100 | ratio JVV / best UniGen |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for name, (full, quick) in FORMULAS.items():
        cnf = (quick if args.quick else full)(args.seed)
        z = count_exact(cnf)
        ran_out: set[str] = set()  # a run out of budget at the smaller N is not run again at the larger (shown as such)

        def cell(key, fn, fargs):
            if key in ran_out:
                return ("timeout", None)
            if key not in args.tools and not (key in ("one", "batched") and "unigen" in args.tools):
                return ("skipped", None)
            result = isolated(fn, fargs, args.budget)
            if result[0] == "timeout":
                ran_out.add(key)
            return result

        for n in sizes:
            jvv = cell("jvv", run_ttsample, (cnf, n, "jvv", "ganak", args.order, args.enumerate_below, args.seed, False))
            lifted = cell("lifted", run_ttsample, (cnf, n, "lifted", "approxmc", args.order, args.enumerate_below,
                                                   args.seed, False))
            one = cell("one", run_unigen, (cnf, n, n, args.seed, False))
            batched = cell("batched", run_unigen, (cnf, n, 100, args.seed, False)) if n > 100 else one
            cells = [per_sample(r, n, args.budget) for r in (jvv, lifted, one, batched)]
            best = min((c[1] for c in cells[2:] if c[1] is not None), default=None)
            if cells[0][1] is not None and best:
                ratio = f"{cells[0][1] / best:.2f}"
            elif cells[0][1] is not None and all(r[0] == "timeout" for r in (one, batched)):
                ratio = f"< {cells[0][1] / (args.budget / n):.2f}"  # UniGen ran out of budget
            else:
                ratio = "n/a"
            print(f"| {name} | {cnf.num_vars} ({len(cnf.sampled)}) | {z:,} | {n} | " + " | ".join(c[0] for c in cells)
                  + f" | {ratio} |", flush=True)


def thresholds(args) -> None:
    values = [int(v) for v in args.thresholds.split(",")]
    n = 100 if args.quick else 1000
    print(f"\n## Enumeration threshold (JVV + Ganak, N = {n}, order {args.order}): seconds per sample\n")
    print("| formula | " + " | ".join(f"enumerate below {v}" for v in values) + " |")
    print("|---|" + "---|" * len(values))
    for name, (full, quick) in FORMULAS.items():
        cnf = (quick if args.quick else full)(args.seed)
        cells = [per_sample(isolated(run_ttsample, (cnf, n, "jvv", "ganak", args.order, v, args.seed, False), args.budget),
                            n, args.budget)[0] for v in values]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def count_exact(cnf: CNF) -> int:
    from ttsample.sat import CountingOracle, make_counter

    return CountingOracle(cnf, make_counter("ganak"), enumerate_below=0).root_count


def all_solutions(cnf: CNF, limit: int = 20_000) -> list[tuple[int, ...]]:
    solver = SatSolver(cnf, SatCosts())
    sampled = np.array(sorted(cnf.sampled))
    rows = solver.enumerate([], sampled, limit)
    if rows is None:
        raise SystemExit(f"{cnf.source} has more than {limit} solutions: too many for the uniformity check")
    return [tuple(int(v) if b else -int(v) for v, b in zip(sampled, row)) for row in rows]


def uniformity(args) -> None:
    print("\n## Uniformity (every solution enumerated)\n")
    print("| formula | solutions | N | sampler | invalid | chi-square p | TV to uniform | TV of N exact draws: mean (99%) |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(args.seed)
    for name, (full, quick) in UNIFORMITY.items():
        cnf = (quick if args.quick else full)(args.seed)
        sols = all_solutions(cnf)
        index = {s: i for i, s in enumerate(sols)}
        z = len(sols)
        n = max(1000, 5 * z)
        exact_tvs = [0.5 * np.abs(np.bincount(rng.integers(z, size=n), minlength=z) / n - 1 / z).sum() for _ in range(200)]
        floor = f"{np.mean(exact_tvs):.4f} ({np.quantile(exact_tvs, 0.99):.4f})"
        runs = {
            "ttsample JVV + Ganak": (run_ttsample, (cnf, n, "jvv", "ganak", args.order, args.enumerate_below, args.seed, True)),
            "ttsample lifted + ApproxMC": (run_ttsample, (cnf, n, "lifted", "approxmc", args.order, args.enumerate_below,
                                                          args.seed, True)),
            "UniGen (batches of 500)": (run_unigen, (cnf, n, 500, args.seed, True)),
        }
        for label, (fn, fargs) in runs.items():
            status, value = isolated(fn, fargs, args.budget)
            if status != "ok":
                print(f"| {name} | {z} | {n} | {label} | {status} {value or ''} | | | {floor} |", flush=True)
                continue
            got = [index.get(s, -1) for s in value["solutions"]]
            invalid = sum(g < 0 for g in got)
            cells = np.bincount([g for g in got if g >= 0], minlength=z)
            p = stats.chisquare(cells).pvalue if cells.sum() else float("nan")
            tv = 0.5 * np.abs(cells / max(cells.sum(), 1) - 1 / z).sum()
            print(f"| {name} | {z} | {n} | {label} | {invalid} | {p:.3g} | {tv:.4f} | {floor} |", flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller formulas, N = 20 and 100")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=None, help="seconds per cell (default 600; --quick 60)")
    parser.add_argument("--order", default="occurrence", help="ttsample's variable order: file or occurrence")
    parser.add_argument("--enumerate-below", type=int, default=128)
    parser.add_argument("--thresholds", default=None, help="also time JVV + Ganak at these enumeration thresholds")
    parser.add_argument("--tools", default="jvv,lifted,unigen",
                        help="which timing columns to run: jvv (JVV + Ganak), lifted (lifted + ApproxMC), unigen")
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument("--skip-uniformity", action="store_true")
    args = parser.parse_args(argv)
    if args.budget is None:
        args.budget = 60.0 if args.quick else 600.0
    args.tools = set(args.tools.split(","))
    try:
        unigen_module()
        count_exact(random_3sat(5, 1.0, 0))
    except (MissingToolError, TtsampleError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"# ttsample vs UniGen (seed {args.seed}{', quick' if args.quick else ''})\n")
    print("tools: " + ", ".join(f"{k} {v}" for k, v in tool_versions().items()))
    print(f"command: python benchmarks/vs_unigen.py {' '.join(sys.argv[1:] if argv is None else argv)}")
    if not args.skip_timing:
        timing(args)
    if args.thresholds:
        thresholds(args)
    if not args.skip_uniformity:
        uniformity(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
