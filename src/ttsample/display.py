"""Tables that show runs to a person (the command line and the demo print them)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from .sampling import SamplingRun


def summary_table(runs: list[SamplingRun], title: str) -> Table:
    """One row per run: costs per delivered sample and distances to mu*."""
    table = Table(title=title)
    table.add_column("sampler", no_wrap=True, min_width=12)
    for col in ["queries/sample", "distinct", "steps/sample", "restarts", "TV law", "TV emp.", "s"]:
        table.add_column(col, justify="right")
    fmt = lambda x: "-" if x is None else f"{x:.1e}"  # noqa: E731
    for run in runs:
        led = run.result.ledger
        k = run.result.samples.size
        table.add_row(
            run.sampler,
            f"{led.queries_total / k:,.1f}",
            f"{led.queries_distinct:,}",
            f"{led.steps / k:,.1f}",
            f"{led.restarts:,}",
            fmt(run.tv_output_law),
            fmt(run.tv_empirical),
            f"{led.seconds:.2f}",
        )
    return table


def print_table(console: Console, table: Table) -> None:
    """Print ``table`` at least as wide as it needs: a console that is narrower (80 columns when piped or logged)
    would otherwise cut cells to an ellipsis, digits of numbers included."""
    wide = console.measure(table, options=console.options.update_width(1 << 16)).maximum
    narrow = console.width
    console.width = max(narrow, wide)  # print's own width= cannot exceed the console's
    try:
        console.print(table)
    finally:
        console.width = narrow
