"""The lab's part of a report: every series against each axis (depth, class size), fitted slopes, the worst
instance found by the search over oracle error patterns, and a reproduction's own sections."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .markdown import cell, series_name, show
from .plots import AXIS_NAME, PLOTTED, plot_family, plot_worst_cases
from .report import PartOutput
from .scaling import aggregate_table, collect, fit, worst_cases
from .verdicts import judge

COSTS = (
    "A query is one answer of the oracle `mu_hat` at one node. *Total* queries count every ask, re-asks "
    "answered from the run's cache included; *distinct* queries count the nodes the oracle itself was asked: "
    "what an expensive oracle (a counter, a verifier) charges when answers are cached. *First sample*: distinct "
    "queries from a fresh cache until the first sample of a run that draws one proposal or one chain at a time. "
    "*Amortised*: over a whole run, per delivered sample. Walk samplers stop at a finite T, so their samples are "
    "within the TV shown of `mu*`, not exact; JVV, uniform rejection and the class samplers are exact."
)


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


def _axis_section(fitted: list[dict], axis: str) -> list[str]:
    lines = [f"## Every series against {AXIS_NAME[axis]}", "",
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
        best = show(f["best_steps"], "slope", 2)
        if f["best_steps"]["last_slope"] is not None:
            best += f" ({f['best_steps']['last_slope']:.2f})"
        lines.append(f"| {cell(series_name(f))} | {', '.join(map(str, f['queries']['xs'])) or '–'} | "
                     f"{show(f['queries'], 'slope', 2)} | {show(f['distinct'], 'slope', 2)} | {best} | "
                     f"{show(f['first_distinct'], 'slope', 2)} | {_at_largest(f)} | "
                     f"{', '.join(map(str, f['censored_at'])) or '–'} | {tv} |")
    return lines + [""]


def _plots(by_axis: dict, worst: list[dict], out: Path) -> list[str]:
    plots = []
    for axis, series in by_axis.items():
        families = sorted({(s.label["family"], s.label["family_param"], s.label["branching"]) for s in series})
        for fam in families:
            members = [s for s in series if (s.label["family"], s.label["family_param"], s.label["branching"]) == fam]
            for metric in PLOTTED:
                if not any(s.values[metric] for s in members):
                    continue
                name = f"{metric}_vs_{axis}_{fam[0].replace(':', '-')}_{fam[1]:g}_b{fam[2]}.png"
                plot_family(members, metric, f"{PLOTTED[metric]}: {fam[0]} ({fam[1]:g}), b = {fam[2]}", out / name)
                plots.append(name)
    if worst:
        plot_worst_cases(worst, out / "worst_case_vs_depth.png")
        plots.append("worst_case_vs_depth.png")
    return plots


def lab_part(axes: tuple[str, ...] = ("depth",), adversary_oracles: tuple[str, ...] = (),
             sections: Callable[[list[dict]], list[str]] | None = None):
    """The part for the lab's rows (``kind`` NULL in stores of any version), series along ``axes``.

    ``adversary_oracles``: the error models whose runs form the search for
    hard instances; the worst found per sampler and depth gets its own
    section, and expectations apply to it as series with ``worst_case`` set.
    ``sections(rows) -> lines``: a reproduction's own sections.
    """

    def part(rows: list[dict], out: Path, expectations: list) -> PartOutput | None:
        lab_rows = [r for r in rows if r.get("kind") != "lm"]
        if not lab_rows and rows:
            return None  # rows of another kind only: their own part reports them
        by_axis = {axis: collect(lab_rows, axis) for axis in axes}
        fitted = [fit(s) for axis in axes for s in by_axis[axis]]
        worst = worst_cases(lab_rows, "best_steps", adversary_oracles) if adversary_oracles else []
        judged = fitted + [_worst_as_series(w, adversary_oracles) for w in worst]
        lines = _worst_section(worst, adversary_oracles) if worst else []
        if sections is not None:
            lines += sections(lab_rows)
        for axis in axes:
            lines += _axis_section(fitted, axis)
        return PartOutput(
            name="lab", counted=COSTS, verdicts=judge(expectations, judged, "lab", series_name), lines=lines,
            plots=_plots(by_axis, worst, out), summary={"series": fitted, "worst_cases": worst},
            table=[row for axis in axes for row in aggregate_table(by_axis[axis])],
            table_note="Aggregated numbers per axis value", summary_note="fitted slopes and verdicts")

    return part
