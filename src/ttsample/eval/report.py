"""Reports for sweeps: report.md, one PNG per problem family, table.csv and summary.json.

Language-model runs (rows of kind ``lm``) get their own part: one point per
configuration (task, sampler, values, options, n) summarised over seeds, series
against n, metric-against-cost plots per task, and the same verdict rule for
their expectations (``write_lm_report`` when a sweep holds only those).

Expectations are stated beside the data: each names its provenance (a cited
result, the paper's abstract, our derivation, our conjecture, or a proof that
makes it a control on the implementation), the series it is about, the fitted
quantity, the value expected and the alternative it is told apart from; the
verdict rule is ``Expectation.verdict``. Controls are reported apart from
findings. Where the sweep searched oracle error patterns, the worst instance
found per sampler and depth is reported with its slope.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..strict_json import dumps
from .scaling import Series, aggregate_table, collect, collect_lm, fit, lm_series, paired_points, worst_cases


PROVENANCE = {
    "classical": "classical result (cited)",
    "proof": "proven by construction (ours or cited): a control on the implementation, not a finding",
    "ours": "our derivation from a cited result",
    "conjecture": "our conjecture",
    "abstract": "the paper's abstract",
}


# how a report reads its verdicts, said once at the top of its expectations
VERDICT_RULE = (
    "Each claim is told apart from an alternative: its band reaches halfway to the alternative. **confirmed**: the "
    "95% interval (t interval of the mean over seeds, or bootstrap for slopes) lies inside the band; **refuted**: it "
    "lies wholly outside; **inconclusive**: it straddles an edge (the last column estimates the seeds that would "
    "decide it). A quantity with no seed variance is judged by its value. Provenance: "
    + "; ".join(f"*{k}*: {v}" for k, v in PROVENANCE.items()) + "."
)


@dataclass(frozen=True)
class Expectation:
    """A claim about a fitted series, told apart from an alternative.

    The band of values that count as the claim reaches halfway to the
    alternative (``expected ± |alternative - expected| / 2``; for an upper
    bound, everything up to that point, or up to ``expected`` when there is no
    alternative). Verdicts: ``confirmed`` when the 95% interval lies inside the
    band (so it excludes the alternative's side), ``refuted`` when it lies
    wholly outside, ``inconclusive`` otherwise, ``not measured`` when the
    series could not be fitted. A deterministic series is judged by its value.
    """

    claim: str
    provenance: str  # a key of PROVENANCE
    source: str
    applies: Callable[[dict], bool]  # on a fitted series' labels
    metric: str  # a cost of ttsample.eval.scaling.METRICS
    quantity: str  # "slope" (log-log), "rate" (log-linear) or "max_median" (the largest median over the axis)
    expected: Callable[[dict], float]
    alternative: Callable[[dict], float] | None = None  # the value the claim is told apart from
    alternative_name: str = ""
    upper_bound: bool = False  # the claim is "at most expected", not "about expected"
    lower_bound: bool = False  # the claim is "at least expected" (band: from halfway to the alternative, upwards)

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCE:
            raise ValueError(f"unknown provenance {self.provenance!r}")
        if self.upper_bound and self.lower_bound:
            raise ValueError(f"{self.claim!r}: a claim is an upper bound, a lower bound or a value, not both bounds")
        if self.alternative is None and not (self.upper_bound or self.lower_bound):
            raise ValueError(f"{self.claim!r}: a claim about a value needs an alternative to be told apart from")

    def band(self, fitted: dict) -> tuple[float, float]:
        want = self.expected(fitted)
        half = 0.0 if self.alternative is None else abs(self.alternative(fitted) - want) / 2
        if self.lower_bound:
            return want - half, math.inf
        return (-math.inf if self.upper_bound else want - half), want + half

    def verdict(self, fitted: dict) -> dict:
        fm = fitted[self.metric]
        value = fm[self.quantity]
        if self.expected(fitted) is None or (self.alternative is not None and self.alternative(fitted) is None):
            # what the claim is judged against was not measured (e.g. every run of a configuration failed)
            return {"expected": None, "alternative": None, "band": [None, None], "measured": value,
                    "ci95": fm.get(f"{self.quantity}_ci95"), "deterministic": fm["deterministic"],
                    "seeds": fm["seeds"], "to_decide": "", "verdict": "not measured"}
        out = {"expected": self.expected(fitted), "alternative": None if self.alternative is None else
               self.alternative(fitted), "band": list(self.band(fitted)), "measured": value,
               "ci95": fm.get(f"{self.quantity}_ci95"), "deterministic": fm["deterministic"], "seeds": fm["seeds"],
               "to_decide": ""}
        if value is None:
            return {**out, "verdict": "not measured"}
        if not fm["deterministic"] and out["ci95"] is None:  # one seed: no interval
            return {**out, "verdict": "inconclusive", "to_decide": "one seed: no interval; run two or more seeds"}
        lo, hi = (value, value) if fm["deterministic"] else out["ci95"]
        low, high = out["band"]
        if low <= lo and hi <= high:
            return {**out, "verdict": "confirmed"}
        if hi < low or lo > high:
            return {**out, "verdict": "refuted"}
        return {**out, "verdict": "inconclusive", "to_decide": _seeds_to_decide(value, lo, hi, (low, high), fm["seeds"])}


def _seeds_to_decide(value: float, lo: float, hi: float, band: tuple[float, float], seeds: int) -> str:
    """How many seeds per x would decide an inconclusive verdict, if the interval narrows like 1/sqrt(seeds)."""
    inside = band[0] <= value <= band[1]
    need = min(value - band[0], band[1] - value) if inside else max(band[0] - value, value - band[1])
    if need <= 0:
        return "the estimate sits on the band's edge; more seeds may not decide it"
    more = math.ceil(seeds * ((hi - lo) / 2 / need) ** 2)
    return f"~{more} seeds per x (now {seeds}) would {'confirm' if inside else 'refute'} it at these x"


def rho_kind(fitted: dict) -> str:
    """exact, vanishing (rho = 1 + c/n), constant, or measured (oracles that state no rho: delayed, flat)."""
    if fitted["oracle"] == "exact":
        return "exact"
    if fitted["oracle"] in ("delayed", "flat"):
        return "measured"
    return "vanishing" if "/n" in str(fitted["rho_label"]) else "constant"


AXIS_NAME = {"depth": "depth n", "class_size": "class size |F|"}
PLOTTED = {
    "queries": "total queries per sample (as run)",
    "distinct": "distinct queries per sample (amortised)",
    "first_distinct": "distinct queries until the first sample",
    "best_steps": "chain-steps per sample at best T (exact)",
}
COSTS = (
    "A query is one answer of the oracle `mu_hat` at one node. *Total* queries count every ask, re-asks "
    "answered from the run's cache included; *distinct* queries count the nodes the oracle itself was asked: "
    "what an expensive oracle (a counter, a verifier) charges when answers are cached. *First sample*: distinct "
    "queries from a fresh cache until the first sample of a run that draws one proposal or one chain at a time. "
    "*Amortised*: over a whole run, per delivered sample. Walk samplers stop at a finite T, so their samples are "
    "within the TV shown of `mu*`, not exact; JVV, uniform rejection and the class samplers are exact."
)
VERDICTS = ("confirmed", "refuted", "inconclusive", "not measured")


def _other(f: dict) -> str:
    """The fixed value of the axis a series does not run along, when it matters."""
    if f["axis"] == "depth":
        return f" · |F|={f['class_size']}" if f.get("class_size") else ""
    return f" · n={f['depth']}"


def series_name(f: dict) -> str:
    fam = f"{f['family']}({f['family_param']:g})"
    return f"{f['sampler']} · {f['oracle']} rho={f['rho_label']} · {fam} · b={f['branching']}{_other(f)}"


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|")


def _fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def _panel(s: Series) -> tuple:
    f = s.label
    return (f["oracle"], f["rho_label"], _other(f))


def _log_axes(ax, xs, xlabel: str, ylabel: str) -> None:
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(sorted(xs))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)


def plot_family(series_list: list[Series], metric: str, title: str, path: Path) -> None:
    """Log-log cost against the axis: one panel per (oracle, rho, other axis), one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({_panel(s) for s in series_list if s.values[metric]})
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for s in series_list:
            xs = sorted(s.values[metric])
            if _panel(s) != panel or not xs:
                continue
            q = np.array([np.percentile(s.values[metric][x], [25, 50, 75]) for x in xs])
            line, = ax.plot(xs, q[:, 1], marker="o", label=s.label["sampler"])
            ax.fill_between(xs, q[:, 0], q[:, 2], color=line.get_color(), alpha=0.2)
        ax.set_title(f"oracle {panel[0]}, rho = {panel[1]}{panel[2]}", fontsize=10)
        _log_axes(ax, {x for s in series_list for x in s.values[metric]}, AXIS_NAME[series_list[0].axis], PLOTTED[metric])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_worst_cases(worst: list[dict], path: Path) -> None:
    """The worst instance found against depth: one panel per rho, one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({w["rho_label"] for w in worst})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, rho in zip(axes.flat, panels):
        for w in worst:
            if w["rho_label"] == rho:
                ax.plot(w["xs"], w["worst"], marker="o", label=f"{w['sampler']} (slope {w['slope']:.2f})")
        ax.set_title(f"worst instance found, rho = {rho}", fontsize=10)
        _log_axes(ax, {x for w in worst for x in w["xs"]}, "depth n", PLOTTED[worst[0]["metric"]])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _show(fm: dict, q: str, digits: int) -> str:
    if fm[q] is None:
        return "–"
    if fm["deterministic"]:
        return f"{fm[q]:.{digits}f} (det.)"
    lo, hi = fm[f"{q}_ci95"]
    return f"{fm[q]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def _at_largest(f: dict) -> str:
    """Median total, distinct and first-sample distinct queries at the series' largest fitted x."""
    cells = []
    for metric in ("queries", "distinct", "first_distinct"):
        med = f[metric]["medians"]
        cells.append("–" if not med else f"{med[-1]:,.1f}")
    return f"{f['queries']['xs'][-1] if f['queries']['xs'] else '–'}: " + ", ".join(cells)


def _worst_as_series(w: dict, oracles: tuple[str, ...]) -> dict:
    """A worst-case curve in the shape of a fitted series, so expectations apply to it."""
    fm = {"xs": w["xs"], "seeds": 1, "deterministic": True, "slope": w["slope"], "slope_ci95": None,
          "last_slope": w["last_slope"]}
    return {**{k: w[k] for k in ("family", "family_param", "branching", "rho_label", "sampler")},
            "axis": "depth", "class_size": 0, "oracle": f"worst of {'/'.join(oracles)}", "worst_case": True,
            w["metric"]: fm}


def _judge(expectations: list[Expectation], fitted: list[dict]) -> list[dict]:
    verdicts = []
    for exp in expectations:
        for f in fitted:
            if exp.applies(f) and exp.metric in f:
                name = f["name"] if f.get("kind") == "lm-paired" else lm_point_name(f) if f.get("kind") == "lm" \
                    else series_name(f)
                verdicts.append({"claim": exp.claim, "provenance": exp.provenance, "source": exp.source,
                                 "series": name, "metric": exp.metric, "quantity": exp.quantity,
                                 "axis": f["axis"], "alternative_name": exp.alternative_name,
                                 "upper_bound": exp.upper_bound, "lower_bound": exp.lower_bound, **exp.verdict(f)})
    return verdicts


def _band_text(v: dict) -> str:
    low, high = v["band"]
    if v["expected"] is None:
        return "–"
    if v.get("lower_bound"):
        return f">= {_fmt(v['expected'])} (band >= {_fmt(low)})"
    if v["upper_bound"]:
        return f"<= {_fmt(v['expected'])} (band <= {_fmt(high)})"
    return f"{_fmt(v['expected'])} (band {_fmt(low)} to {_fmt(high)})"


def _verdict_table(verdicts: list[dict]) -> list[str]:
    lines = ["| claim | provenance | source | series | fitted | expected | alternative | measured [95% CI] | verdict "
             "| what would decide it |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        if v["measured"] is None:
            measured = "–"
        elif v["deterministic"]:
            measured = f"{v['measured']:.2f} (value: no seed variance)"
        else:
            measured = f"{v['measured']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]"
        alt = ("–" if v["alternative"] is None and not v["alternative_name"] else v["alternative_name"]
               if v["alternative"] is None else f"{v['alternative_name']} ({v['alternative']:.2f})")
        fitted = (f"{v['quantity']} of {v['metric']} over seeds" if v["axis"] == "seeds"
                  else f"{v['quantity']} of {v['metric']} vs {v['axis']}")
        lines.append(f"| {_cell(v['claim'])} | {v['provenance']} | {_cell(v['source'])} | {_cell(v['series'])} | "
                     f"{fitted} | {_band_text(v)} | {_cell(alt)} | {measured} | "
                     f"**{v['verdict']}** | {v['to_decide'] or '–'} |")
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in VERDICTS}
    return lines + ["", "Verdicts: " + ", ".join(f"{counts[k]} {k}" for k in VERDICTS) + ".", ""]


def write_report(rows: list[dict], out: Path, *, title: str, intro: str, expectations: list[Expectation],
                 caveats: list[str], command: str, axes: tuple[str, ...] = ("depth",),
                 extra_sections: Callable[[list[dict]], list[str]] | None = None,
                 adversary_oracles: tuple[str, ...] = (), lm_expectations: list[Expectation] = (),
                 lm_pairings=(), lm_sections=None) -> dict:
    """Write report.md, table.csv, summary.json and the plots into ``out``; returns the summary.

    ``adversary_oracles``: the oracle error models whose runs form the search
    for hard instances; the worst found per sampler and depth gets its own
    section, and expectations apply to it as series with ``worst_case`` set.
    """
    out.mkdir(parents=True, exist_ok=True)
    lm_rows = [r for r in rows if r.get("kind") == "lm"]
    rows = [r for r in rows if r.get("kind") != "lm"]  # the lab's (kind NULL in stores of any version)
    if lm_rows and not rows:
        return write_lm_report(lm_rows, out, title=title, intro=intro, expectations=lm_expectations,
                               pairings=lm_pairings, sections=lm_sections,
                               caveats=caveats, command=command)
    by_axis = {axis: collect(rows, axis) for axis in axes}
    fitted = [fit(s) for axis in axes for s in by_axis[axis]]
    worst = worst_cases(rows, "best_steps", adversary_oracles) if adversary_oracles else []

    table = [row for axis in axes for row in aggregate_table(by_axis[axis])]
    with open(out / "table.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]) if table else ["empty"])
        writer.writeheader()
        writer.writerows(table)

    verdicts = _judge(expectations, fitted + [_worst_as_series(w, adversary_oracles) for w in worst])
    findings = [v for v in verdicts if v["provenance"] != "proof"]
    controls = [v for v in verdicts if v["provenance"] == "proof"]

    plots = []
    for axis in axes:
        families = sorted({(s.label["family"], s.label["family_param"], s.label["branching"]) for s in by_axis[axis]})
        for fam in families:
            members = [s for s in by_axis[axis] if (s.label["family"], s.label["family_param"], s.label["branching"]) == fam]
            for metric in PLOTTED:
                if not any(s.values[metric] for s in members):
                    continue
                name = f"{metric}_vs_{axis}_{fam[0].replace(':', '-')}_{fam[1]:g}_b{fam[2]}.png"
                plot_family(members, metric, f"{PLOTTED[metric]}: {fam[0]} ({fam[1]:g}), b = {fam[2]}", out / name)
                plots.append(name)
    if worst:
        plot_worst_cases(worst, out / "worst_case_vs_depth.png")
        plots.append("worst_case_vs_depth.png")

    summary = {"title": title, "command": command, "costs": COSTS, "series": fitted, "worst_cases": worst,
               "expectations": findings, "controls": controls, "plots": plots}
    lm_lines: list[str] = []
    if lm_rows:  # a sweep of both kinds: the language-model part follows the lab's, its table in lm_table.csv
        lm = _lm_part(lm_rows, out, lm_expectations, "lm_table.csv", lm_pairings, lm_sections)
        summary.update(lm["summary"])
        summary["expectations"] = findings + lm["findings"]
        summary["controls"] = controls + lm["controls"]
        summary["plots"] = plots + lm["plots"]
        lm_lines = (["## Language-model expectations against the data", "", LM_COUNTED, ""] + _verdict_table(lm["findings"])
                    + (["### Controls", ""] + _verdict_table(lm["controls"]) if lm["controls"] else []) + lm["lines"])
    (out / "summary.json").write_text(dumps(summary, indent=2) + "\n")

    lines = [f"# {title}", "", intro, "", f"Regenerate: `{command}`", "", "## What is counted", "", COSTS, ""]
    lines += ["## Expectations against the data", "", VERDICT_RULE, ""]
    lines += _verdict_table(findings)
    if controls:
        lines += ["## Controls", "", "Quantities fixed by a proof; the data check the implementation, they are not "
                  "findings.", ""] + _verdict_table(controls)
    if worst:
        lines += _worst_section(worst, adversary_oracles)
    if extra_sections is not None:
        lines += extra_sections(rows)
    for axis in axes:
        lines += [f"## Every series against {AXIS_NAME[axis]}", "",
                  "total / distinct: queries per delivered sample, as run (walks at their default T). "
                  "best steps: for walks on trees of at most 2^16 leaves, the chain-steps per sample of the restart "
                  "rule at its best T for output TV <= 0.01, computed exactly from the transition matrix; in brackets "
                  "after it, the local exponent between the two largest x. first: distinct queries until the first "
                  "sample. Slope: of log(median over seeds) against log x; (det.): the same value for every seed, "
                  "so a value, not an estimate. Max TV: the worst exact TV of the output law to mu* over the runs "
                  "where it was computed.", "",
                  "| series | x | total: slope | distinct: slope | best steps: slope (local) "
                  "| first: slope | at the largest x: total, distinct, first | censored at | max TV |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for f in fitted:
            if f["axis"] != axis:
                continue
            tv = "–" if f["max_tv_output_law"] is None else f"{f['max_tv_output_law']:.1e}"
            best = _show(f["best_steps"], "slope", 2)
            if f["best_steps"]["last_slope"] is not None:
                best += f" ({f['best_steps']['last_slope']:.2f})"
            lines.append(f"| {_cell(series_name(f))} | {', '.join(map(str, f['queries']['xs'])) or '–'} | "
                         f"{_show(f['queries'], 'slope', 2)} | {_show(f['distinct'], 'slope', 2)} | {best} | "
                         f"{_show(f['first_distinct'], 'slope', 2)} | {_at_largest(f)} | "
                         f"{', '.join(map(str, f['censored_at'])) or '–'} | {tv} |")
        lines.append("")
    lines += lm_lines
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in summary["plots"]]
    lines += ["", "## Read with care", ""] + [f"- {c}" for c in caveats]
    lines += ["", "Aggregated numbers per axis value: `table.csv`; fitted slopes and verdicts: `summary.json`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary


def _worst_section(worst: list[dict], oracles: tuple[str, ...]) -> list[str]:
    lines = ["## Worst instance found", "",
             f"Over the error models {', '.join(oracles)} (each within rho at every internal node) and every seed "
             "(target and oracle draw), the largest exact best-T cost per sample at each depth. A search finds a "
             "lower bound on the true worst case: a claimed upper bound can be refuted by it, a lower bound only "
             "illustrated. Slope: log-log over the depths; local: between the two largest depths.", "",
             "| sampler | family | rho | depths | worst chain-steps per sample | found at | slope | local |",
             "|---|---|---|---|---|---|---|---|"]
    for w in worst:
        lines.append(f"| {w['sampler']} | {w['family']}({w['family_param']:g}) | {w['rho_label']} | "
                     f"{', '.join(map(str, w['xs']))} | {', '.join(f'{v:,.0f}' for v in w['worst'])} | "
                     f"{'; '.join(w['instance'])} | {w['slope']:.2f} | {w['last_slope']:.2f} |")
    return lines + [""]


# ---- language-model runs (rows of kind "lm"): points per configuration, metrics against cost ----

LM_COUNTED = (
    "Per run of n samples, from its ledger: *forward passes* of the model (a batch of rows is one pass), *tokens* "
    "fed to it (a cached prefix is not fed again; each run starts from an empty cache), *reward calls* (the reward "
    "on a whole response, or on a prefix for the heuristic values), *queries* of the value oracle (V_hat, for "
    "the samplers that read it), and *seconds* of wall time on one thread; costs are shown per delivered "
    "sample. What the values cost before sampling (enumerating the trie for exact values, the rollouts and "
    "fitting of the test-time head) is part of the run's costs. Metrics: *TV to pi\\** and *KL to pi\\** are "
    "of the (weighted) empirical law of the n samples, where pi\\* is exact (enumerated); *floor* is the mean TV "
    "of n exact draws from pi\\* (200 repeats), and *TV / floor* the ratio (about 1 for an exact sampler); "
    "*law TV* is the exact TV of the sampler's output law where it has one in closed form (best-of-n; "
    "ActionLevelRS with deterministic values). *Accuracy*: share of samples with reward > 0 (constraints). "
    "*KL to base*: where pi\\* is exact, KL(empirical || pi_ref) with the Miller–Madow entropy correction "
    "(and the exact KL of the output law where there is one); elsewhere the identity E[log tau] - log Z_hat on "
    "the samples (exact in expectation for a sampler of pi\\*; NULL when a sample has tau = 0). *Distinct*: "
    "distinct responses / n. Weighted samplers (SMC) give self-normalised weighted metrics."
)
LM_SHOWN = (("tv_ratio", "TV / floor"), ("tv_output_law", "law TV"), ("kl_pistar", "KL to pi*"),
            ("accuracy", "accuracy"), ("mean_reward", "reward"), ("kl_base", "KL to base"),
            ("distinct_share", "distinct"), ("forward_passes", "fwd passes / sample"), ("tokens", "tokens / sample"),
            ("reward_calls", "reward calls / sample"), ("seconds", "seconds / sample"))
LM_PLOT_COSTS = (("forward_passes", "forward passes per sample"), ("seconds", "seconds per sample"))


def lm_point_name(f: dict) -> str:
    """A language-model configuration: task · sampler · values (· options) · n."""
    values = "" if f["values"] == "-" else f" · values {f['values']}"
    options = "".join(f" · {k}={v}" for k, v in sorted(f["options"].items()))
    n = f" · n={f['samples']}" if "samples" in f else " · against n"
    return f"{f['lm_task']} · {f['sampler']}{values}{options}{n}"


def _cell_value(m: dict, digits: int = 3) -> str:
    if m["mean"] is None:
        return "–"
    x = m["mean"]
    text = f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    if m["seeds"] > 1 and not m["deterministic"]:
        text += f" ±{(m['q75'] - m['q25']) / 2:.2g}"
    return text


def _task_table(points: list[dict]) -> list[str]:
    tasks: dict[str, dict] = {}
    for p in points:
        tasks.setdefault(p["lm_task"], p)
    lines = ["## Language-model tasks", "",
             "Z = E_pi_ref[tau] (exact where pi* is enumerated, else from reference draws of pi_ref); the base "
             "reward is the mean reward under pi_ref, the pi* reward under pi* (exact, or self-normalised "
             "importance weights on the reference draws). A task with several prompts has a row per prompt; its "
             "points pool the prompts like seeds.", "",
             "| task | model | prompt | H | reward | tau | pi* | Z | KL(pi* \\|\\| pi_ref) | base reward | pi* reward |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    show = lambda x, f: "–" if x is None else format(x, f)  # noqa: E731
    for name, p in tasks.items():
        reward = p["reward"] + (f" ({p['reference']!r})" if p.get("reference") else "")
        tau = "1{r > 0}" if p["beta"] is None else f"exp(r / {p['beta']:g})"
        exact = "exact" if p["exact"] else "not enumerated"
        for prompt, c in p["per_prompt"].items():
            z = "–" if c["z"] is None else f"{c['z']:.4g}" + ("" if c["z_exact"] else " (est.)")
            lines.append(f"| {_cell(name)} | {p['model']} | {_cell(repr(prompt))} | {p['horizon']} | "
                         f"{_cell(reward)} | {tau} | {exact} | {z} | {show(c['kl_base_pistar'], '.3f')} | "
                         f"{show(c['base_reward'], '.3f')} | {show(c['pistar_reward'], '.3f')} |")
    return lines + [""]


def _points_table(points: list[dict]) -> list[str]:
    lines = ["## Every configuration", "",
             "Means over seeds (± half the interquartile range where seeds differ); – where a metric does not "
             "apply (no exact pi*, a tilt has no accuracy, no closed-form law). Failed: runs that stopped with an "
             "error (listed below the table).", "",
             "| task | sampler | values | options | n | seeds ok / failed | "
             + " | ".join(name for _, name in LM_SHOWN) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(LM_SHOWN)]
    errors = []
    for p in points:
        options = ", ".join(f"{k}={v}" for k, v in sorted(p["options"].items())) or "–"
        cells = " | ".join(_cell_value(p[m]) for m, _ in LM_SHOWN)
        lines.append(f"| {_cell(p['lm_task'])} | {p['sampler']} | {p['values']} | {_cell(options)} | {p['samples']} | "
                     f"{p['seeds_ok']} / {p['seeds_failed']} | {cells} |")
        errors += [f"- {lm_point_name(p)}: {_cell(e)}" for e in p["errors"]]
    lines.append("")
    if errors:
        lines += ["Failed runs:", ""] + errors + [""]
    return lines


def _series_table(series: list[dict]) -> list[str]:
    if not series:
        return []
    lines = ["## Against the number of samples n", "",
             "Configurations run at several n: log-log slope of the median over seeds against n, with its 95% "
             "bootstrap interval (TV of n exact draws falls like n^-1/2).", "",
             "| configuration | n | TV to pi*: slope | TV / floor: slope | KL to pi*: slope | seconds / sample: slope |",
             "|---|---|---|---|---|---|"]
    for f in series:
        lines.append(f"| {_cell(lm_point_name(f))} | {', '.join(map(str, f['xs']))} | "
                     f"{_show(f['tv_pistar'], 'slope', 2)} | {_show(f['tv_ratio'], 'slope', 2)} | "
                     f"{_show(f['kl_pistar'], 'slope', 2)} | {_show(f['seconds'], 'slope', 2)} |")
    return lines + [""]


def _lm_table_rows(points: list[dict]) -> list[dict]:
    rows = []
    for p in points:
        row = {k: p[k] for k in ("lm_task", "model", "prompt", "horizon", "reward", "beta", "exact", "sampler",
                                 "values", "samples", "seeds_ok", "seeds_failed", "z", "base_reward", "pistar_reward")}
        row["options"] = json.dumps(p["options"], sort_keys=True)
        for metric in p:
            if isinstance(p[metric], dict) and "mean" in p[metric]:
                row.update({f"{metric}_mean": p[metric]["mean"], f"{metric}_median": p[metric]["median"]})
        rows.append(row)
    return rows


def plot_lm_task(points: list[dict], task: str, cost: str, cost_name: str, path: Path) -> bool:
    """Metrics against a cost per sample (log x), one panel each: a marker per configuration at its median over
    seeds, bars from the first to the third quartile, configurations run at several n joined by a line.
    Dashed: where an exact sampler sits (TV / floor = 1; KL(pi* || pi_ref) where pi* is exact; pi*'s mean
    reward on a tilt); dotted: the base model's accuracy or mean reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    mine = [p for p in points if p["lm_task"] == task and p[cost]["median"] is not None and p[cost]["median"] > 0]
    if not mine:
        return False
    first = mine[0]
    wanted = [("tv_ratio", "TV to pi* / noise floor of n exact draws", 1.0),
              ("accuracy" if first["beta"] is None else "mean_reward",
               "constraint accuracy" if first["beta"] is None else "mean reward (dashed: pi*'s, estimated)",
               None if first["beta"] is None else first["pistar_reward"]),
              ("kl_base", "KL to the base model", first["kl_base_pistar"]),
              ("distinct_share", "distinct responses / n", None)]
    metrics = [(m, name, ref) for m, name, ref in wanted if any(p[m]["median"] is not None for p in mine)]
    cols = 2 if len(metrics) > 1 else 1
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.2 * rows), squeeze=False)
    configs = sorted({(p["sampler"], p["values"], json.dumps(p["options"], sort_keys=True)) for p in mine})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP*Xh<>p"
    samplers = list(dict.fromkeys(c[0] for c in configs))  # a colour per sampler, a marker per values / options
    style = {c: (colors[samplers.index(c[0]) % len(colors)],
                 markers[[d for d in configs if d[0] == c[0]].index(c) % len(markers)]) for c in configs}
    for ax, (metric, name, ref) in zip(axes.flat, metrics):
        for config in configs:
            pts = sorted((p for p in mine if (p["sampler"], p["values"], json.dumps(p["options"], sort_keys=True))
                          == config and p[metric]["median"] is not None), key=lambda p: p["samples"])
            if not pts:
                continue
            x = [p[cost]["median"] for p in pts]
            y = [p[metric]["median"] for p in pts]
            err = [[p[metric]["median"] - p[metric]["q25"] for p in pts],
                   [p[metric]["q75"] - p[metric]["median"] for p in pts]]
            label = config[0] + ("" if config[1] == "-" else f" ({config[1]})") + (
                "" if config[2] == "{}" else " " + config[2].replace('"', "").strip("{}"))
            if len({p["samples"] for p in pts}) > 1:
                label += f" n={pts[0]['samples']}..{pts[-1]['samples']}"
            ax.errorbar(x, y, yerr=err, marker=style[config][1], color=style[config][0],
                        linestyle="-" if len(pts) > 1 else "none", capsize=2, label=label, alpha=0.85)
        if ref is not None:
            ax.axhline(ref, color="gray", linestyle="--", linewidth=1)
        if metric in ("accuracy", "mean_reward") and first["base_reward"] is not None:
            ax.axhline(first["base_reward"], color="gray", linestyle=":", linewidth=1)  # the base model's
        if metric == "tv_ratio":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(cost_name)
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7, frameon=False)
    fig.suptitle(f"{task}: metrics against {cost_name} (median over seeds, quartile bars)")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * math.ceil(len(labels) / 4), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _lm_part(rows: list[dict], out: Path, expectations: list[Expectation], table_name: str, pairings=(),
             sections=None) -> dict:
    """Points, series and paired comparisons (``pairings``) judged against ``expectations``; ``sections``:
    ``(rows, points, paired, out) -> (lines, plots)`` for a reproduction's own tables and plots."""
    points = collect_lm(rows)
    series = lm_series(rows)
    paired = paired_points(rows, pairings)
    table = _lm_table_rows(points)
    with open(out / table_name, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]) if table else ["empty"])
        writer.writeheader()
        writer.writerows(table)
    verdicts = _judge(list(expectations), points + series + paired)
    plots = []
    for task in dict.fromkeys(p["lm_task"] for p in points):
        for cost, cost_name in LM_PLOT_COSTS:
            name = f"lm_{''.join(c if c.isalnum() or c in '-_' else '_' for c in task)}_vs_{cost}.png"
            if plot_lm_task(points, task, cost, cost_name, out / name):
                plots.append(name)
    lines = _task_table(points)
    if sections is not None:
        own_lines, own_plots = sections(rows, points, paired, out)
        lines, plots = lines + own_lines, own_plots + plots
    lines += _points_table(points) + _series_table(series)
    return {"summary": {"lm_points": points, "lm_series": series, "lm_paired": paired}, "plots": plots,
            "lines": lines,
            "findings": [v for v in verdicts if v["provenance"] != "proof"],
            "controls": [v for v in verdicts if v["provenance"] == "proof"]}


def write_lm_report(rows: list[dict], out: Path, *, title: str, intro: str, expectations: list[Expectation],
                    caveats: list[str], command: str, pairings=(), sections=None) -> dict:
    """report.md, table.csv, summary.json and the plots of a sweep of language-model runs only."""
    lm = _lm_part(rows, out, expectations, "table.csv", pairings, sections)
    summary = {"title": title, "command": command, "costs": LM_COUNTED, **lm["summary"], "series": [],
               "expectations": lm["findings"], "controls": lm["controls"], "plots": lm["plots"]}
    (out / "summary.json").write_text(dumps(summary, indent=2) + "\n")
    lines = [f"# {title}", "", intro, "", f"Regenerate: `{command}`", "", "## What is counted", "", LM_COUNTED, ""]
    lines += ["## Expectations against the data", "", VERDICT_RULE, ""]
    lines += _verdict_table(lm["findings"])
    if lm["controls"]:
        lines += ["## Controls", "", "Quantities fixed by a proof; the data check the implementation, they are not "
                  "findings.", ""] + _verdict_table(lm["controls"])
    lines += lm["lines"]
    lines += ["## Plots", "", "Each metric against a cost per sample (log scale): the median over seeds, bars from "
              "the first to the third quartile; a line joins one configuration run at several n.", ""]
    lines += [f"![{p}]({p})" for p in lm["plots"]]
    lines += ["", "## Read with care", ""] + [f"- {c}" for c in caveats]
    lines += ["", "Aggregated numbers per configuration: `table.csv`; every point, series and verdict: "
              "`summary.json`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary
