"""Markdown pieces every report part uses: safe table cells, numbers with their intervals, names of what was
fitted, and the CSV writer."""

from __future__ import annotations

import csv
from pathlib import Path


def cell(text: str) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|")


def fmt(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}"


def show(fm: dict, q: str, digits: int) -> str:
    if fm[q] is None:
        return "–"
    if fm["deterministic"]:
        return f"{fm[q]:.{digits}f} (det.)"
    lo, hi = fm[f"{q}_ci95"]
    return f"{fm[q]:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def cell_value(m: dict, digits: int = 3) -> str:
    if m["mean"] is None:
        return "–"
    x = m["mean"]
    text = f"{x:.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    if m["seeds"] > 1 and not m["deterministic"]:
        text += f" ±{(m['q75'] - m['q25']) / 2:.2g}"
    return text


def other_axis(f: dict) -> str:
    """The fixed value of the axis a series does not run along, when it matters."""
    if f["axis"] == "depth":
        return f" · |F|={f['class_size']}" if f.get("class_size") else ""
    return f" · n={f['depth']}"


def series_name(f: dict) -> str:
    fam = f"{f['family']}({f['family_param']:g})"
    return f"{f['sampler']} · {f['oracle']} rho={f['rho_label']} · {fam} · b={f['branching']}{other_axis(f)}"


def lm_point_name(f: dict) -> str:
    """A language-model configuration: task · sampler · values (· options) · n."""
    values = "" if f["values"] == "-" else f" · values {f['values']}"
    options = "".join(f" · {k}={v}" for k, v in sorted(f["options"].items()))
    n = f" · n={f['samples']}" if "samples" in f else " · against n"
    return f"{f['lm_task']} · {f['sampler']}{values}{options}{n}"


def write_csv(rows: list[dict], path: Path) -> None:
    """One line per row, the first row's keys as the header (``empty`` when there are no rows)."""
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["empty"])
        writer.writeheader()
        writer.writerows(rows)
