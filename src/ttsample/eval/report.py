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
    metric: str  # a cost of ttsample.eval.scaling.METRICS: "queries", "tries", "best_steps", "first_queries"
    quantity: str  # "slope" (log-log), "rate" (log-linear) or "max_median" (the largest median over the axis)
    expected: Callable[[dict], float]
    tolerance: float
    upper_bound: bool = False  # the claim is "at most expected + tolerance", not "about expected"

    def verdict(self, fitted: dict) -> tuple[str, float | None]:
        value = fitted[self.metric][self.quantity]
        ci = fitted[self.metric][f"{self.quantity}_ci95"]
        if value is None:
            return "not measured", None
        want = self.expected(fitted)
        overlaps = ci[0] <= want + self.tolerance and (self.upper_bound or ci[1] >= want - self.tolerance)
        return ("confirmed" if overlaps else "refuted"), want


def rho_kind(fitted: dict) -> str:
    """exact, vanishing (rho = 1 + c/n), constant, or measured (oracles that state no rho: delayed, flat)."""
    if fitted["oracle"] == "exact":
        return "exact"
    if fitted["oracle"] in ("delayed", "flat"):
        return "measured"
    return "vanishing" if "/n" in str(fitted["rho_label"]) else "constant"


AXIS_NAME = {"depth": "depth n", "class_size": "class size |F|"}
PLOTTED = {
    "queries": "queries per sample (as run)",
    "best_steps": "chain-steps per sample at best T (exact)",
    "first_queries": "queries until the first sample",
}


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


def plot_family(series_list: list[Series], metric: str, title: str, path: Path) -> None:
    """Log-log cost against the axis: one panel per (oracle, rho, other axis), one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

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
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(sorted({x for s in series_list for x in s.values[metric]}))
        ax.set_title(f"oracle {panel[0]}, rho = {panel[1]}{panel[2]}", fontsize=10)
        ax.set_xlabel(AXIS_NAME[series_list[0].axis])
        ax.set_ylabel(PLOTTED[metric])
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _show(fm: dict, q: str, digits: int) -> str:
    if fm[q] is None:
        return "–"
    lo, hi = fm[f"{q}_ci95"]
    return f"{fm[q]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def write_report(rows: list[dict], out: Path, *, title: str, intro: str, expectations: list[Expectation],
                 caveats: list[str], command: str, axes: tuple[str, ...] = ("depth",),
                 extra_sections: Callable[[list[dict]], list[str]] | None = None) -> dict:
    """Write report.md, table.csv, summary.json and the plots into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    by_axis = {axis: collect(rows, axis) for axis in axes}
    fitted = [fit(s) for axis in axes for s in by_axis[axis]]

    table = [row for axis in axes for row in aggregate_table(by_axis[axis])]
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
                                 "metric": exp.metric, "quantity": exp.quantity, "axis": f["axis"], "expected": want,
                                 "tolerance": exp.tolerance, "upper_bound": exp.upper_bound,
                                 "measured": f[exp.metric][exp.quantity],
                                 "ci95": f[exp.metric][f"{exp.quantity}_ci95"], "verdict": verdict})

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

    summary = {"title": title, "command": command, "series": fitted, "expectations": verdicts, "plots": plots}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")

    lines = [f"# {title}", "", intro, "", f"Regenerate: `{command}`", ""]
    lines += ["## Expectations against the data", "",
              "| claim | source | series | fitted | expected ± tol | measured [95% CI] | verdict |", "|---|---|---|---|---|---|---|"]
    for v in verdicts:
        ci = v["ci95"]
        measured = "–" if v["measured"] is None else f"{v['measured']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
        want = f"<= {_fmt(v['expected'] + v['tolerance'])}" if v["upper_bound"] else \
            f"{_fmt(v['expected'])} ± {v['tolerance']:.2f}"
        lines.append(f"| {_cell(v['claim'])} | {_cell(v['source'])} | {_cell(v['series'])} | {v['quantity']} of {v['metric']} vs "
                     f"{v['axis']} | {want} | {measured} | **{v['verdict']}** |")
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in ("confirmed", "refuted", "not measured")}
    lines += ["", f"Verdicts: {counts['confirmed']} confirmed, {counts['refuted']} refuted, {counts['not measured']} not measured.", ""]
    if extra_sections is not None:
        lines += extra_sections(rows)
    for axis in axes:
        lines += [f"## Every series against {AXIS_NAME[axis]}", "",
                  "queries: oracle queries per delivered sample, as run (walks at their default T). "
                  "best steps: for walks on trees of at most 2^12 leaves, the chain-steps per sample of the restart "
                  "rule at its best T for output TV <= 0.01, computed exactly from the transition matrix. "
                  "first: queries until the first sample (class samplers). "
                  "Slope: of log(median over seeds) against log x; rate: against x. "
                  "Max TV: the worst exact TV of the output law to mu* over the runs where it was computed.", "",
                  "| series | x | queries: slope [95% CI] | queries: rate [95% CI] | best steps: slope [95% CI] "
                  "| first: slope [95% CI] | censored at | max TV |", "|---|---|---|---|---|---|---|---|"]
        for f in fitted:
            if f["axis"] != axis:
                continue
            tv = "–" if f["max_tv_output_law"] is None else f"{f['max_tv_output_law']:.1e}"
            lines.append(f"| {_cell(series_name(f))} | {', '.join(map(str, f['queries']['xs'])) or '–'} | "
                         f"{_show(f['queries'], 'slope', 2)} | {_show(f['queries'], 'rate', 3)} | "
                         f"{_show(f['best_steps'], 'slope', 2)} | {_show(f['first_queries'], 'slope', 2)} | "
                         f"{', '.join(map(str, f['censored_at'])) or '–'} | {tv} |")
        lines.append("")
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots]
    lines += ["", "## Read with care", ""] + [f"- {c}" for c in caveats]
    lines += ["", "Aggregated numbers per axis value: `table.csv`; fitted slopes and verdicts: `summary.json`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary
