"""Reports for sweeps: report.md, its plots, table.csv and summary.json, assembled from parts.

A part (``lab_part``, ``lm_part``) turns the rows of its kind into a
``PartOutput``: what it counts, its verdicts, its sections, plots, CSV rows
and entries of summary.json. ``write_report`` is the one skeleton: title,
how to regenerate, what is counted, the verdict table over every part's
findings, the controls (expectations fixed by a proof), each part's
sections, the plots, the caveats and the files. A reproduction is its parts,
its expectations (``ttsample.eval.verdicts``) and its caveats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..strict_json import dumps
from .markdown import write_csv
from .verdicts import VERDICT_RULE, verdict_table


@dataclass
class PartOutput:
    name: str  # its table is table.csv in the first part, NAME_table.csv after
    counted: str  # the "What is counted" text
    verdicts: list[dict]
    lines: list[str]  # its sections, after the verdicts and controls
    plots: list[str]
    summary: dict  # its entries of summary.json
    table: list[dict]  # its rows of the CSV table
    table_note: str  # what the table holds
    summary_note: str  # what summary.json holds
    plots_note: str = ""  # read before the plots


Part = Callable[[list[dict], Path, list], "PartOutput | None"]  # (rows, out, expectations); None: nothing to report


def write_report(rows: list[dict], out: Path, *, title: str, intro: str, parts: list[Part], expectations: list,
                 caveats: list[str], command: str) -> dict:
    """Write report.md, the tables, summary.json and the plots into ``out``; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    outputs = [o for o in (part(rows, out, expectations) for part in parts) if o is not None]
    tables = ["table.csv" if i == 0 else f"{o.name}_table.csv" for i, o in enumerate(outputs)]
    for o, name in zip(outputs, tables):
        write_csv(o.table, out / name)
    verdicts = [v for o in outputs for v in o.verdicts]
    findings = [v for v in verdicts if v["provenance"] != "proof"]
    controls = [v for v in verdicts if v["provenance"] == "proof"]
    plots = [p for o in outputs for p in o.plots]
    summary = {"title": title, "command": command, "costs": "\n\n".join(o.counted for o in outputs)}
    for o in outputs:
        summary.update(o.summary)
    summary.setdefault("series", [])
    summary.update(expectations=findings, controls=controls, plots=plots)
    (out / "summary.json").write_text(dumps(summary, indent=2) + "\n")

    lines = [f"# {title}", "", intro, "", f"Regenerate: `{command}`", "", "## What is counted", ""]
    lines += [line for o in outputs for line in (o.counted, "")]
    lines += ["## Expectations against the data", "", VERDICT_RULE, ""] + verdict_table(findings)
    if controls:
        lines += ["## Controls", "", "Quantities fixed by a proof; the data check the implementation, they are not "
                  "findings.", ""] + verdict_table(controls)
    lines += [line for o in outputs for line in o.lines]
    lines += ["## Plots", ""] + [line for o in outputs if o.plots_note for line in (o.plots_note, "")]
    lines += [f"![{p}]({p})" for p in plots]
    lines += ["", "## Read with care", ""] + [f"- {c}" for c in caveats]
    files = "; ".join(f"{o.table_note}: `{name}`" for o, name in zip(outputs, tables))
    lines += ["", f"{files}; {outputs[0].summary_note if outputs else 'verdicts'}: `summary.json`.", ""]
    (out / "report.md").write_text("\n".join(lines))
    return summary
