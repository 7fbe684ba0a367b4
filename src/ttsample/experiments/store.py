"""The result store: one SQLite row per finished run, keyed by (grid point, sampler, seed).

A row is written only when its run has finished, in its own transaction, so a
sweep that is killed loses at most the runs in flight, and running it again
skips every key already stored. A run whose outcome has a key with no
column is refused, not stored without it. A file that is not such a store (damaged, not
SQLite, or another program's database) is refused before anything is written.

The columns are derived: the fields of the run's spec (``LabRun``, ``LMRun``)
and of the ``Ledger`` each get one, typed from their annotations, so a new
field there needs no edit here; what an outcome adds (``LAB_OUTCOME``,
``LM_OUTCOME``) is listed below. Opening an older store adds the columns it
lacks.
"""

from __future__ import annotations

import sqlite3
import typing
from contextlib import closing
from dataclasses import asdict, fields
from pathlib import Path

from ..errors import ResultStoreError
from ..ledger import Ledger
from .spec import LabRun, LMRun

SQL_TYPES = {bool: "INTEGER", int: "INTEGER", float: "REAL", str: "TEXT"}


def columns_of(record) -> dict[str, str]:
    """A dataclass's fields as columns, typed from its annotations (``X | None`` as ``X``)."""
    hints = typing.get_type_hints(record)
    out = {}
    for f in fields(record):
        kind = hints[f.name]
        kind = next(k for k in (typing.get_args(kind) or (kind,)) if k is not type(None))
        out[f.name] = SQL_TYPES[kind]
    return out


# what a lab run's outcome holds beyond its ledger (ttsample.experiments.runner)
LAB_OUTCOME = {
    "walk_steps": "INTEGER", "tv_output_law": "REAL", "tv_empirical": "REAL",
    # queries until the first sample, as a one-at-a-time run from a fresh cache would make them: total and distinct
    "first_sample_queries": "INTEGER", "first_sample_distinct": "INTEGER",
    # walks on enumerable trees: the restart rule at its best T for TV <= 0.01, computed exactly
    "best_walk_steps": "INTEGER", "best_steps_per_sample": "REAL",
}
# the metrics of a language-model run (ttsample.experiments.lm_runs; NULL on the lab's rows)
LM_OUTCOME = {
    "weighted": "INTEGER", "ess": "REAL", "log_z_hat": "REAL", "acceptance_rate": "REAL", "setup_seconds": "REAL",
    "z": "REAL", "z_exact": "INTEGER", "base_reward": "REAL", "pistar_reward": "REAL",
    "mean_reward": "REAL", "accuracy": "REAL", "distinct_share": "REAL", "distinct_2": "REAL",
    "off_support": "REAL", "tv_pistar": "REAL", "kl_pistar": "REAL", "kl_base": "REAL", "kl_base_pistar": "REAL",
    "tv_floor": "REAL", "tv_floor_q95": "REAL", "kl_floor": "REAL", "tv_ratio": "REAL",
    "law_dead_mass": "REAL", "tv_law_ratio": "REAL", "kl_pistar_law": "REAL", "kl_base_law": "REAL",
    "kl_bound": "REAL", "kl_drift": "REAL", "responses": "REAL", "distinct_correct": "REAL",
    "approved_wrong": "REAL",
}
# a row: the run's key and spec (either kind's; kind NULL means a lab row), how it ended, its ledger, its outcome
COLUMNS = {
    "key": "TEXT PRIMARY KEY", **columns_of(LabRun), "rho": "REAL", **columns_of(LMRun),
    "status": "TEXT",  # ok, budget (censored: stopped at max_queries), or error (the run raised)
    "error": "TEXT",  # why a run failed (status error)
    "delivered": "INTEGER", **columns_of(Ledger), **LAB_OUTCOME, **LM_OUTCOME,
}


def check_store(path: Path) -> None:
    """Raise ``ResultStoreError`` unless ``path`` is missing, empty, or a result store (of any version).

    Read-only: a file that is refused is left exactly as it was.
    """
    if not path.exists():
        return
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            damage = [row[0] for row in db.execute("PRAGMA quick_check")]
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    except sqlite3.Error as exc:
        problem = f"it is damaged or not SQLite ({exc})"
    else:
        if damage != ["ok"]:
            problem = f"SQLite reports damage ({'; '.join(damage[:3])})"
        elif tables and "results" not in tables:
            problem = f"it is an SQLite database of something else (tables {', '.join(sorted(tables))}, no results)"
        elif tables and "key" not in columns:
            problem = "its results table has no key column, so it was not written by ttsample"
        else:
            return
    raise ResultStoreError(
        f"{path} is not a ttsample result store: {problem}. It was left untouched; "
        "move it away, or choose another output folder (--out)"
    )


class ResultStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        check_store(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        cols = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        self.db.execute(f"CREATE TABLE IF NOT EXISTS results ({cols})")
        present = {row[1] for row in self.db.execute("PRAGMA table_info(results)")}
        for name, kind in COLUMNS.items():  # a store written by an older version gains the new columns
            if name not in present:
                self.db.execute(f"ALTER TABLE results ADD COLUMN {name} {kind.replace('PRIMARY KEY', '')}")
        self.db.commit()

    def done_keys(self) -> set[str]:
        return {row[0] for row in self.db.execute("SELECT key FROM results")}

    def add(self, point: LabRun | LMRun, outcome: dict) -> None:
        row = {"key": point.key, **asdict(point), "rho": point.rho, "rho_label": point.rho_label, **outcome}
        unknown = sorted(set(row) - set(COLUMNS))
        if unknown:  # a metric with no column would vanish from every report: add it to COLUMNS
            raise ResultStoreError(f"the store has no column for {', '.join(unknown)}; add it to "
                                   "the outcome's columns in ttsample.experiments.store (older stores gain it when "
                                   "opened)")
        row = {k: row.get(k) for k in COLUMNS}
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self.db:  # one transaction per finished run
            self.db.execute(f"INSERT OR IGNORE INTO results ({names}) VALUES ({marks})", tuple(row.values()))

    def rows(self) -> list[dict]:
        cur = self.db.execute("SELECT * FROM results ORDER BY key")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]

    def close(self) -> None:
        self.db.close()
