"""Reports for sweeps: report.md, one PNG per problem family, table.csv and summary.json.

Expectations are stated beside the data: each names its source (a cited
result, the paper's abstract, or our own construction), the series it is
about, the fitted quantity and the value expected. The verdict is
``confirmed`` when the fit's 95% interval overlaps ``expected ± tolerance``
(the tolerance is ours, for finite-depth effects), ``refuted`` when it does
not, ``not measured`` when the series could not be fitted.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .scaling import Series, aggregate_table, collect, fit


@dataclass(frozen=True)
class Expectation:
    claim: str
    source: str
    applies: Callable[[dict], bool]  # on a fitted series' labels
    metric: str  # a cost of ttsample.eval.scaling.METRICS: "queries" or "best_steps"
    quantity: str  # "slope" (log-log) or "rate" (log-linear, per level)
    expected: Callable[[dict], float]
    tolerance: float

    def verdict(self, fitted: dict) -> tuple[str, float | None]:
        value = fitted[self.metric][self.quantity]
        ci = fitted[self.metric][f"{self.quantity}_ci95"]
        if value is None:
            return "not measured", None
        want = self.expected(fitted)
        overlaps = ci[0] <= want + self.tolerance and ci[1] >= want - self.tolerance
        return ("confirmed" if overlaps else "refuted"), want


def rho_kind(fitted: dict) -> str:
    """exact, vanishing (rho = 1 + c/n), constant, or measured (oracles that state no rho: delayed, flat)."""
    if fitted["oracle"] == "exact":
        return "exact"
    if fitted["oracle"] in ("delayed", "flat"):
        return "measured"
    return "vanishing" if "/n" in str(fitted["rho_label"]) else "constant"


def series_name(f: dict) -> str:
    fam = f"{f['family']}({f['family_param']:g})"
    return f"{f['sampler']} · {f['oracle']} rho={f['rho_label']} · {fam} · b={f['branching']}"


def _fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


METRIC_AXIS = {"queries": "queries per sample (as run)", "best_steps": "chain-steps per sample at best T (exact)"}  # plotted


def plot_family(series_list: list[Series], metric: str, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    panels = sorted({(s.label["oracle"], s.label["rho_label"]) for s in series_list})
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for s in series_list:
            if (s.label["oracle"], s.label["rho_label"]) != panel:
                continue
            depths = sorted(s.values[metric])
            if not depths:
                continue
            q = np.array([np.percentile(s.values[metric][d], [25, 50, 75]) for d in depths])
            line, = ax.plot(depths, q[:, 1], marker="o", label=s.label["sampler"])
            ax.fill_between(depths, q[:, 0], q[:, 2], color=line.get_color(), alpha=0.2)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(sorted({d for s in series_list for d in s.values[metric]}))
        ax.set_title(f"oracle {panel[0]}, rho = {panel[1]}")
        ax.set_xlabel("depth n")
        ax.set_ylabel(METRIC_AXIS[metric])
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(rows: list[dict], out: Path, *, title: str, intro: str, expectations: list[Expectation],
                 caveats: list[str], command: str) -> dict:
    """Write report.md, table.csv, summary.json and the plots into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    series_list = collect(rows)
    fitted = [fit(s) for s in series_list]

    table = aggregate_table(series_list)
    with open(out / "table.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]) if table else ["empty"])
        writer.writeheader()
        writer.writerows(table)

    verdicts = []
    for exp in expectations:
        for f in fitted:
            if exp.applies(f):
                verdict, want = exp.verdict(f)
                verdicts.append({"claim": exp.claim, "source": exp.source, "series": series_name(f),
                                 "metric": exp.metric, "quantity": exp.quantity, "expected": want,
                                 "tolerance": exp.tolerance, "measured": f[exp.metric][exp.quantity],
                                 "ci95": f[exp.metric][f"{exp.quantity}_ci95"], "verdict": verdict})

    plots = []
    for fam in sorted({(s.label["family"], s.label["family_param"], s.label["branching"]) for s in series_list}):
        members = [s for s in series_list if (s.label["family"], s.label["family_param"], s.label["branching"]) == fam]
        for metric in METRIC_AXIS:
            if not any(s.values[metric] for s in members):
                continue
            name = f"{metric}_{fam[0]}_{fam[1]:g}_b{fam[2]}.png"
            plot_family(members, metric, f"{METRIC_AXIS[metric]}: {fam[0]} targets ({fam[1]:g}), b = {fam[2]}", out / name)
            plots.append(name)

    summary = {"title": title, "command": command, "series": fitted, "expectations": verdicts, "plots": plots}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    lines = [f"# {title}", "", intro, "", f"Regenerate: `{command}`", ""]
    lines += ["## Expectations against the data", "",
              "| claim | source | series | fitted | expected ± tol | measured [95% CI] | verdict |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        ci = v["ci95"]
        measured = "–" if v["measured"] is None else f"{v['measured']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
        lines.append(f"| {v['claim']} | {v['source']} | {v['series']} | {v['quantity']} of {v['metric']} | "
                     f"{_fmt(v['expected'])} ± {v['tolerance']:.2f} | {measured} | **{v['verdict']}** |")
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in ("confirmed", "refuted", "not measured")}
    lines += ["", f"Verdicts: {counts['confirmed']} confirmed, {counts['refuted']} refuted, {counts['not measured']} not measured.", ""]
    lines += ["## Every series", "",
              "queries: oracle queries per delivered sample, as run (walks at their default T). "
              "best steps: for walks on trees of at most 2^12 leaves, the chain-steps per sample of the restart "
              "rule at its best T for output TV <= 0.01, computed exactly from the transition matrix. "
              "Slope: of log(median over seeds) against log n; rate: against n (per level). "
              "Max TV: the worst exact TV of the output law to mu* over the runs where it was computed.", "",
              "| series | queries: depths | queries: slope [95% CI] | queries: rate [95% CI] | best steps: depths "
              "| best steps: slope [95% CI] | censored at | max TV |", "|---|---|---|---|---|---|---|---|"]

    def show(fm: dict, q: str, digits: int) -> str:
        if fm[q] is None:
            return "–"
        lo, hi = fm[f"{q}_ci95"]
        return f"{fm[q]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"

    for f in fitted:
        tv = "–" if f["max_tv_output_law"] is None else f"{f['max_tv_output_law']:.1e}"
        lines.append(f"| {series_name(f)} | {', '.join(map(str, f['queries']['depths'])) or '–'} | "
                     f"{show(f['queries'], 'slope', 2)} | {show(f['queries'], 'rate', 3)} | "
                     f"{', '.join(map(str, f['best_steps']['depths'])) or '–'} | {show(f['best_steps'], 'slope', 2)} | "
                     f"{', '.join(map(str, f['censored_depths'])) or '–'} | {tv} |")
    lines += ["", "## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "## Read with care", ""] + [f"- {c}" for c in caveats]
    lines += ["", "Aggregated numbers per depth: `table.csv`; fitted slopes and verdicts: `summary.json`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary
