"""Sweeps: specs, the resumable store (killed for real), executors, the report and the quick reproduction."""

import json
import signal
import sqlite3
import subprocess
import shutil
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.errors import ParameterError, ResultStoreError
from ttsample.experiments.reproductions import SCALING_EXPECTATIONS
from ttsample.experiments.runner import run_spec
from ttsample.experiments.spec import load_spec, parse_spec, rho_at
from ttsample.experiments.store import COLUMNS, ResultStore

from extras import needs

SPEC = """
name = "t"
samplers = ["jvv", "walk-boosted", "lifted"]
depths = [3, 4]
seeds = 2
samples = 20
max_queries = 1e6

[sampler_depths]
jvv = [2, 3]

[[families]]
kind = "random"
concentration = 0.5

[[families]]
kind = "bounded_tilt"
rho = 1.5
oracles = [{ kind = "flat" }]

[[oracles]]
kind = "random"
rho = "1+1/n"

[[oracles]]
kind = "adversarial"
rho = 2
"""
DETERMINISTIC = "key, status, delivered, queries_total, queries_distinct, steps, tries, restarts, walk_steps"


def rows_of(path):
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT {DETERMINISTIC} FROM results ORDER BY key").fetchall()


def test_spec_expands_to_the_grid():
    spec = parse_spec(tomllib.loads(SPEC))
    tasks = spec.runs()
    # random family: 2 oracles x 3 samplers x 2 depths x 2 seeds; tilt family: its own flat oracle only
    assert len(tasks) == 2 * 3 * 2 * 2 + 1 * 3 * 2 * 2
    assert {t.depth for t in tasks if t.sampler == "jvv"} == {2, 3}
    assert {t.oracle for t in tasks if t.family == "bounded_tilt"} == {"flat"}
    assert len({t.key for t in tasks}) == len(tasks)
    assert rho_at("1+1/n", 4) == 1.25 and rho_at("1 + 2/n", 4) == 1.5 and rho_at("2.0", 9) == 2.0


def test_families_and_oracles_can_narrow_the_grid():
    data = tomllib.loads(SPEC)
    data["families"] = [{"kind": "random", "samplers": ["lifted"],
                         "oracles": [{"kind": "exact", "seeds": 1}, {"kind": "random", "rho": 2.0}]}]
    tasks = parse_spec(data).runs()
    assert {t.sampler for t in tasks} == {"lifted"}
    assert {t.seed for t in tasks if t.oracle == "exact"} == {0} and {t.seed for t in tasks if t.oracle == "random"} == {0, 1}
    assert len(tasks) == 2 * (1 + 2)  # two depths; one seed for exact, the spec's two for random


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(samplers=["magic"]), "unknown sampler"),
        (lambda d: d.update(depths=[0, 3]), "depths"),
        (lambda d: d["oracles"].append({"kind": "random", "rho": "1-1/n"}), "rho"),
        (lambda d: d["oracles"].append({"kind": "random", "rho": 0.5}), "rho"),
        (lambda d: d["oracles"].append({"kind": "psychic"}), "oracle kind"),
        (lambda d: d["families"].append({"kind": "knapsack"}), "family kind"),
        (lambda d: d.update(seeds=0), "seeds"),
        (lambda d: d.update(sampler_depths={"walk": [3]}), "sampler_depths"),
        (lambda d: d["oracles"].append({"kind": "random", "rho": "1+1.2.3/n"}), "rho"),
        (lambda d: d.update(max_queries="lots"), "max_queries"),
        (lambda d: d.update(branchings=[1.5]), "branchings"),
        (lambda d: d["families"].append({"kind": "class", "class": "local", "param": 4, "class_sizes": [2]}), "spread"),
        (lambda d: d["oracles"].append({"kind": "random", "rho": 1.5, "seeds": 0}), "seeds"),
        (lambda d: d["families"].append({"kind": "random", "samplers": ["walk"]}), "samplers"),
    ],
)
def test_bad_specs_are_refused(edit, message):
    data = tomllib.loads(SPEC)
    edit(data)
    with pytest.raises(ParameterError, match=message):
        parse_spec(data)


def test_a_failing_run_is_stored_as_an_error_not_fatal(tmp_path):
    data = tomllib.loads(SPEC)
    # a class of 10**7 members does not fit in memory: those runs fail, the others must still be stored
    data["families"] = [{"kind": "class", "class": "independent", "param": 0.5, "class_sizes": [2, 10**7]}]
    data["samplers"], data["sampler_depths"] = ["mixture-rejection"], {}
    spec = parse_spec(data)
    store = ResultStore(tmp_path / "results.sqlite")
    run_spec(spec, store, workers=1)
    rows = store.rows()
    assert len(rows) == len(spec.runs())
    assert {r["class_size"] for r in rows if r["status"] == "ok"} == {2}
    failed = [r for r in rows if r["status"] == "error"]
    assert {r["class_size"] for r in failed} == {10**7} and all("TreeShapeError" in r["error"] for r in failed)


def test_unreadable_spec(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("samplers = [")
    with pytest.raises(ParameterError, match="cannot read"):
        load_spec(bad)


def test_parallel_equals_serial_and_rerun_adds_nothing(tmp_path):
    spec = parse_spec(tomllib.loads(SPEC))
    for name, workers in [("serial", 1), ("parallel", 2)]:
        store = ResultStore(tmp_path / name / "results.sqlite")
        assert run_spec(spec, store, workers=workers) == len(spec.runs())
        assert run_spec(spec, store, workers=workers) == 0
        store.close()
    assert rows_of(tmp_path / "serial" / "results.sqlite") == rows_of(tmp_path / "parallel" / "results.sqlite")


@needs("ray")
def test_ray_executor_matches_processes(tmp_path):
    spec = parse_spec({**tomllib.loads(SPEC), "depths": [3], "sampler_depths": {}, "families": [{"kind": "random"}]})
    for name, executor in [("proc", "process"), ("ray", "ray")]:
        store = ResultStore(tmp_path / name / "results.sqlite")
        run_spec(spec, store, workers=1, executor=executor)
        store.close()
    assert rows_of(tmp_path / "proc" / "results.sqlite") == rows_of(tmp_path / "ray" / "results.sqlite")


# a sweep that SIGKILLs its own process right after the k-th row is committed: a real kill, at a known point
KILL_AFTER_K_ROWS = """
import os, signal, sys
from ttsample.experiments.runner import run_spec
from ttsample.experiments.spec import load_spec
from ttsample.experiments.store import COLUMNS, ResultStore

spec_file, db, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
stored = []
def on_result(task, outcome):
    stored.append(task.key)
    if len(stored) == k:
        os.kill(os.getpid(), signal.SIGKILL)
run_spec(load_spec(spec_file), ResultStore(db), workers=1, on_result=on_result)
"""


def test_killed_sweep_resumes_without_losing_or_duplicating(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC)
    total = len(load_spec(spec_file).runs())
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    db = killed / "results.sqlite"
    k = total // 3
    killer = [sys.executable, "-c", KILL_AFTER_K_ROWS, str(spec_file), str(db), str(k)]
    proc = subprocess.run(killer, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert len(rows_of(db)) == k < total
    cmd = [sys.executable, "-m", "ttsample.cli", "sweep", str(spec_file), "--workers", "1", "--out"]
    subprocess.run(cmd + [str(killed)], check=True, capture_output=True)
    subprocess.run(cmd + [str(clean)], check=True, capture_output=True)
    resumed = rows_of(db)
    assert len(resumed) == total == len({r[0] for r in resumed})
    assert resumed == rows_of(clean / "results.sqlite")


def strict_json(path):
    """The file parsed as strict JSON: Python's ``NaN`` and ``Infinity`` extensions refused."""
    def refuse(name):
        raise ValueError(f"{path.name} holds {name}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_quick_reproduction_writes_the_report(tmp_path):
    out = tmp_path / "scaling"
    result = CliRunner().invoke(app, ["reproduce", "scaling", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ["report.md", "summary.json", "table.csv", "queries_vs_depth_random_0.5_b2.png",
                 "best_steps_vs_depth_random_0.5_b2.png", "worst_case_vs_depth.png"]:
        assert (out / name).exists(), name
    summary = strict_json(out / "summary.json")
    jvv_exact = [s for s in summary["series"] if s["sampler"] == "jvv" and s["oracle"] == "exact"]
    assert len(jvv_exact) == 1
    lo, hi = jvv_exact[0]["queries"]["slope_ci95"]
    assert lo <= jvv_exact[0]["queries"]["slope"] <= hi
    assert abs(jvv_exact[0]["queries"]["slope"] - 1.0) < 1e-9  # exactly n*b queries per sample
    verdicts = {v["verdict"] for v in summary["expectations"] + summary["controls"]}
    assert verdicts <= {"confirmed", "refuted", "inconclusive", "not measured"}
    assert {v["claim"] for v in summary["controls"]} == {e.claim for e in SCALING_EXPECTATIONS if e.provenance == "proof"}
    assert summary["worst_cases"] and {w["sampler"] for w in summary["worst_cases"]} == {"walk", "walk-boosted", "lifted"}
    report = (out / "report.md").read_text()
    for section in ["## What is counted", "## Expectations against the data", "## Controls", "## Worst instance found",
                    "Read with care"]:
        assert section in report, section
    again = CliRunner().invoke(app, ["report", str(out)])
    assert again.exit_code == 0 and "expectations:" in again.output


def test_report_of_an_empty_folder_fails_clearly(tmp_path):
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "no results.sqlite" in result.output


def test_a_store_from_an_older_version_gains_new_columns(tmp_path):
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE results (key TEXT PRIMARY KEY, status TEXT, delivered INTEGER)")
        db.execute("INSERT INTO results VALUES ('old', 'ok', 3)")
    store = ResultStore(path)
    spec = parse_spec({**tomllib.loads(SPEC), "depths": [3], "sampler_depths": {}, "families": [{"kind": "random"}]})
    run_spec(spec, store, workers=1)
    rows = store.rows()
    assert len(rows) == len(spec.runs()) + 1 and all("surplus" in r for r in rows)


def test_every_field_of_a_run_spec_and_of_the_ledger_is_a_typed_column():
    from dataclasses import fields

    from ttsample.experiments.spec import LMRun, LabRun
    from ttsample.experiments.store import COLUMNS
    from ttsample.ledger import Ledger

    for record in (LabRun, LMRun, Ledger):
        assert {f.name for f in fields(record)} <= set(COLUMNS)
    assert (COLUMNS["beta"], COLUMNS["exact"], COLUMNS["seconds"], COLUMNS["prompt"]) == ("REAL", "INTEGER", "REAL",
                                                                                          "TEXT")


def test_an_outcome_with_a_key_the_store_has_no_column_for_is_refused(tmp_path):
    store = ResultStore(tmp_path / "results.sqlite")
    task = parse_spec(tomllib.loads(SPEC)).runs()[0]
    with pytest.raises(ResultStoreError, match="no column for new_metric"):
        store.add(task, {"status": "ok", "delivered": 1, "new_metric": 0.5})
    assert store.rows() == []  # nothing half-written


@pytest.mark.parametrize("path", [Path(__file__).parent / "data" / "scaling_snapshot_v1.sqlite",
                                  *sorted((Path(__file__).resolve().parents[1] / "docs" / "results").glob("*/results.sqlite"))],
                         ids=lambda p: p.parent.name)
def test_old_and_shipped_stores_open_and_read(tmp_path, path):
    copy = tmp_path / "results.sqlite"
    shutil.copy(path, copy)
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    rows = ResultStore(copy).rows()
    assert len(rows) == stored > 0 and all(set(COLUMNS) <= set(r) for r in rows)


def damage(kind: str, path) -> None:
    """Write a results.sqlite that is not a result store of ttsample."""
    if kind == "not a database":
        path.write_text("key,status\nold,ok\n" * 200)
        return
    if kind == "truncated":
        ResultStore(path).close()
        with sqlite3.connect(path) as db:
            db.executemany("INSERT INTO results (key, status) VALUES (?, 'ok')", [(f"run-{i:05d}",) for i in range(3000)])
        db.close()
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return
    table = "notes" if kind == "another program's database" else "results"  # results: without a key column
    with sqlite3.connect(path) as db:
        db.execute(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute(f"INSERT INTO {table} VALUES (1, 'x')")
    db.close()


@pytest.mark.parametrize("kind", ["truncated", "not a database", "another program's database", "results without key"])
@pytest.mark.parametrize("command", ["sweep", "run", "report"])  # run: the former name of sweep
def test_a_foreign_or_damaged_store_is_refused_and_left_untouched(tmp_path, kind, command):
    out = tmp_path / "sweep"
    out.mkdir()
    store = out / "results.sqlite"
    damage(kind, store)
    before = store.read_bytes()
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(SPEC)
    args = [command, str(spec_file), "--workers", "1", "--out", str(out)] if command != "report" else ["report", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert f"{store} is not a ttsample result store" in result.output and "move it away" in result.output
    assert store.read_bytes() == before
    written = {"results.sqlite", "spec.toml"} if command != "report" else {"results.sqlite"}  # sweep copies its spec first
    assert {p.name for p in out.iterdir()} == written


def test_validating_a_language_model_spec_loads_no_torch():
    """Naming the LM samplers and values must not load a model: spec validation used to import torch (seconds,
    and impossible on a core-only install). A fresh interpreter, so that no other test has imported it."""
    import ttsample.experiments

    spec = Path(ttsample.experiments.__file__).parent / "specs" / "lm.toml"
    code = ("import sys; from ttsample.experiments.spec import load_spec; "
            f"load_spec({str(spec)!r}); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
