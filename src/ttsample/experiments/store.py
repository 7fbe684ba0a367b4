"""The result store: one SQLite row per finished run, keyed by (grid point, sampler, seed).

A row is written only when its run has finished, in its own transaction, so a
sweep that is killed loses at most the runs in flight, and running it again
skips every key already stored. A file that is not such a store (damaged, not
SQLite, or another program's database) is refused before anything is written.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import asdict
from pathlib import Path

from ..errors import ResultStoreError
from .spec import Task

COLUMNS = {
    "key": "TEXT PRIMARY KEY",
    "family": "TEXT", "family_param": "REAL", "depth": "INTEGER", "branching": "INTEGER",
    "oracle": "TEXT", "rho_label": "TEXT", "rho": "REAL", "sampler": "TEXT", "seed": "INTEGER",
    "samples": "INTEGER", "max_queries": "REAL", "class_size": "INTEGER",
    "status": "TEXT",  # ok, budget (censored: stopped at max_queries), or error (the run raised)
    "delivered": "INTEGER",
    "queries_total": "INTEGER", "queries_distinct": "INTEGER", "steps": "INTEGER", "tries": "INTEGER",
    "restarts": "INTEGER", "surplus": "INTEGER", "forward_passes": "INTEGER", "tokens": "INTEGER", "reward_calls": "INTEGER",
    "cache_hits": "INTEGER", "cache_misses": "INTEGER", "error": "TEXT",  # error: why a run failed (status error)
    "seconds": "REAL", "walk_steps": "INTEGER", "tv_output_law": "REAL", "tv_empirical": "REAL",
    # queries until the first sample, as a one-at-a-time run from a fresh cache would make them: total and distinct
    "first_sample_queries": "INTEGER", "first_sample_distinct": "INTEGER",
    # walks on enumerable trees: the restart rule at its best T for TV <= 0.01, computed exactly
    "best_walk_steps": "INTEGER", "best_steps_per_sample": "REAL",
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

    def add(self, task: Task, outcome: dict) -> None:
        row = {"key": task.key, **asdict(task), "rho": task.rho, **outcome}
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
