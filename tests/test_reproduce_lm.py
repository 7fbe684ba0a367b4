"""The language-model reproduction: LM tasks in the spec, the store and the runner, the report, `reproduce lm --quick`."""

import json
import math
import re
import signal
import sqlite3
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.errors import ParameterError
from ttsample.eval.verdicts import Expectation
from ttsample.lm.exact import best_of_n_law
from ttsample.experiments.reproductions import LM_EXPECTATIONS
from ttsample.registry import REGISTRY, best_of_n_kl_bound, names
from ttsample.experiments.runner import run_spec
from ttsample.experiments.reproductions import get_reproduction
from ttsample.experiments.spec import LMRun, LabRun, parse_spec
from ttsample.experiments.store import ResultStore

from extras import needs

LM_SPEC = """
name = "lm-test"
seeds = 2
samples = 40

[[lm_tasks]]
name = "dyck"
model = "dyck"
horizon = 3
reward = "dyck"
exact = true
samplers = ["action-rs", "outcome-rs", "best-of-n", "smc"]
values = ["exact", { kind = "exact", rho = 2.0 }]

[lm_tasks.sampler_samples]
smc = [20, 80]

[lm_tasks.options]
best-of-n = [{ candidates = 2 }, { candidates = 8 }]
"""
# columns that do not depend on the clock: the same in serial, parallel and resumed sweeps
DETERMINISTIC = ("key, status, delivered, forward_passes, tokens, reward_calls, queries_total, steps, tries, "
                 "tv_pistar, kl_base, accuracy, tv_output_law")



def refuse_non_json(name):
    raise ValueError(f"summary.json holds {name}, which is not JSON")

def rows_of(path):
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT {DETERMINISTIC} FROM results ORDER BY key").fetchall()


@needs("lm")
def test_the_spec_knows_the_lm_layer_s_samplers_and_values():
    lm_samplers = names("generation")
    assert {name for name in lm_samplers if REGISTRY[name].uses_values} == {"vgb", "action-rs", "twisted-smc",
                                                                             "beam-search", "dvts",
                                                                             "weighted-best-of-n"}
    data = tomllib.loads(LM_SPEC)
    data["lm_tasks"][0]["samplers"] = list(lm_samplers)  # every sampler of the LM layer is a valid spec entry
    data["lm_tasks"][0]["options"] = {}
    data["lm_tasks"][0].pop("sampler_samples")
    assert {t.sampler for t in parse_spec(data).runs()} == set(lm_samplers)


@needs("lm")
def test_lm_tasks_expand_to_keyed_runs_beside_the_lab_s():
    data = tomllib.loads(LM_SPEC)
    data.update(samplers=["walk"], depths=[3])  # a lab grid too
    tasks = parse_spec(data).runs()
    lab = [t for t in tasks if isinstance(t, LabRun)]
    lm = [t for t in tasks if isinstance(t, LMRun)]
    assert len(lab) == 2  # one depth, the exact oracle, two seeds
    # action-rs: 2 values; outcome-rs: 1; best-of-n: 2 option tables; smc: 2 sample sizes; 2 seeds each
    assert len(lm) == (2 + 1 + 2 + 2) * 2
    assert len({t.key for t in tasks}) == len(tasks)
    assert {(t.value_kind, t.rho) for t in lm if t.sampler == "action-rs"} == {("exact", 1.0), ("exact", 2.0)}
    assert {t.value_kind for t in lm if t.sampler != "action-rs"} == {""}
    assert {t.samples for t in lm if t.sampler == "smc"} == {20, 80}
    assert {json.loads(t.options)["candidates"] for t in lm if t.sampler == "best-of-n"} == {2, 8}
    assert {t.values_label for t in lm} == {"exact", "exact x2", "-"}


@needs("lm")  # the samplers and values are checked against the LM registry, which imports torch
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.update(samplers=["magic"]), "samplers must be"),
        (lambda t: t.update(reward="joy"), "unknown reward"),
        (lambda t: t.update(reward="minilm"), "reference"),
        (lambda t: t.update(values=["oracle"]), "unknown values"),
        (lambda t: t.update(values=[{"kind": "exact", "rho": 0.5}]), "rho"),
        (lambda t: t.update(beta=0), "beta"),
        (lambda t: t.update(horizon=0), "horizon"),
        (lambda t: t.update(options={"vgb": {"steps": 10}}), "options"),
        (lambda t: t.update(options={"smc": 3}), "options"),
        (lambda t: t.update(sampler_samples={"smc": [0]}), "samples"),
        (lambda t: t.pop("model"), "model"),
    ],
)
def test_bad_lm_tasks_are_refused(edit, message):
    data = tomllib.loads(LM_SPEC)
    edit(data["lm_tasks"][0])
    with pytest.raises(ParameterError, match=message):
        parse_spec(data)


def test_two_lm_tasks_need_two_names():
    data = tomllib.loads(LM_SPEC)
    data["lm_tasks"].append(dict(data["lm_tasks"][0]))
    with pytest.raises(ParameterError, match="its own name"):
        parse_spec(data)


def test_the_best_of_n_law_in_closed_form_matches_simulation():
    rng = np.random.default_rng(0)
    p_ref, reward = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.5, 0.1, 0.5, 0.0])
    for beta, k in [(None, 1), (None, 3), (0.5, 4)]:
        score = (reward > 0).astype(float) if beta is None else reward
        law = best_of_n_law(p_ref, score, k)
        assert law.sum() == pytest.approx(1.0)
        if k == 1:
            assert law == pytest.approx(p_ref)
        draws = rng.choice(4, p=p_ref, size=(200_000, k))
        best = draws[np.arange(draws.shape[0]), np.argmax(score[draws], axis=1)]  # the first of the best
        empirical = np.bincount(best, minlength=4) / draws.shape[0]
        assert np.abs(empirical - law).max() < 5e-3  # ~4.5 standard errors at most


def test_a_lower_bound_claim_is_refuted_only_below_its_band():
    claim = Expectation("x", "ours", "s", lambda f: True, "m", "mean", lambda f: 2.0, lambda f: 1.0, "floor",
                        lower_bound=True)

    def judged(mean, ci):
        return claim.verdict({"m": {"mean": mean, "mean_ci95": ci, "deterministic": False, "seeds": 3}})["verdict"]

    assert claim.band({}) == (1.5, math.inf)
    assert judged(8.0, [6.0, 10.0]) == "confirmed"  # far above the expected value still confirms "at least"
    assert judged(1.1, [1.0, 1.2]) == "refuted"
    assert judged(1.6, [1.2, 2.0]) == "inconclusive"
    assert judged(1.6, None) == "inconclusive"  # one seed: no interval
    with pytest.raises(ValueError):
        Expectation("x", "ours", "s", lambda f: True, "m", "mean", lambda f: 2.0, upper_bound=True, lower_bound=True)
    assert best_of_n_kl_bound(8) == pytest.approx(math.log(8) - 7 / 8)


@needs("lm")
def test_an_old_store_opens_and_keeps_its_lab_rows_apart(tmp_path):
    path = tmp_path / "results.sqlite"
    with sqlite3.connect(path) as db:  # a store of the version before language-model columns
        db.execute("CREATE TABLE results (key TEXT PRIMARY KEY, status TEXT, delivered INTEGER, sampler TEXT)")
        db.execute("INSERT INTO results VALUES ('old', 'ok', 3, 'walk')")
    db.close()
    store = ResultStore(path)
    data = tomllib.loads(LM_SPEC)
    data["lm_tasks"][0].update(samplers=["outcome-rs"], seeds=1, options={}, sampler_samples={})
    assert run_spec(parse_spec(data), store, workers=1) == 1
    rows = {r["key"]: r for r in store.rows()}
    store.close()
    assert rows["old"]["kind"] is None and rows["old"]["tv_pistar"] is None
    (new,) = [r for k, r in rows.items() if k != "old"]
    assert new["kind"] == "lm" and new["status"] == "ok" and new["accuracy"] == 1.0 and new["tv_pistar"] is not None


@needs("lm")
def test_serial_and_parallel_lm_sweeps_store_the_same_numbers(tmp_path):
    data = tomllib.loads(LM_SPEC)
    data["lm_tasks"][0].update(samplers=["action-rs", "smc"], seeds=1, options={})
    spec = parse_spec(data)
    for name, workers in [("serial", 1), ("parallel", 2)]:
        store = ResultStore(tmp_path / name / "results.sqlite")
        assert run_spec(spec, store, workers=workers) == len(spec.runs())
        store.close()
    assert rows_of(tmp_path / "serial" / "results.sqlite") == rows_of(tmp_path / "parallel" / "results.sqlite")


@needs("lm")
@needs("ray")
def test_the_ray_executor_stores_what_the_process_pool_does(tmp_path):
    data = tomllib.loads(LM_SPEC)
    data["lm_tasks"][0].update(samplers=["action-rs", "smc"], seeds=1, options={})
    spec = parse_spec(data)
    for name, executor in [("proc", "process"), ("ray", "ray")]:
        store = ResultStore(tmp_path / name / "results.sqlite")
        run_spec(spec, store, workers=1, executor=executor)
        store.close()
    assert rows_of(tmp_path / "proc" / "results.sqlite") == rows_of(tmp_path / "ray" / "results.sqlite")


KILL_AFTER_K_ROWS = """
import os, signal, sys, tomllib
from ttsample.experiments.runner import run_spec
from ttsample.experiments.spec import parse_spec
from ttsample.experiments.store import ResultStore

spec = parse_spec(tomllib.loads(open(sys.argv[1]).read()))
stored = []
def on_result(task, outcome):
    stored.append(task.key)
    if len(stored) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)
run_spec(spec, ResultStore(sys.argv[2]), workers=1, on_result=on_result)
"""


@needs("lm")
def test_a_killed_lm_sweep_resumes_without_losing_or_duplicating(tmp_path):
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(LM_SPEC.replace("seeds = 2", "seeds = 1"))
    total = len(parse_spec(tomllib.loads(spec_file.read_text())).runs())
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_K_ROWS, str(spec_file), str(killed / "results.sqlite"), "3"],
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert len(rows_of(killed / "results.sqlite")) == 3 < total
    for out in (killed, clean):
        store = ResultStore(out / "results.sqlite")
        run_spec(parse_spec(tomllib.loads(spec_file.read_text())), store, workers=1)
        store.close()
    resumed = rows_of(killed / "results.sqlite")
    assert len(resumed) == total == len({r[0] for r in resumed})
    assert resumed == rows_of(clean / "results.sqlite")


@needs("lm")
def test_quick_lm_reproduction_writes_the_report_and_resumes(tmp_path):
    from ttsample.lm.rewards import REWARDS

    named = set(REWARDS)
    out = tmp_path / "lm"
    first = CliRunner().invoke(app, ["reproduce", "lm", "--quick", "--workers", "1", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert set(REWARDS) == named  # the MiniLM reward was registered for its runs only
    for name in ["report.md", "summary.json", "table.csv", "results.sqlite"]:
        assert (out / name).exists(), name
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert "lm_dyck_vs_forward_passes.png" in pngs and "lm_dyck_vs_seconds.png" in pngs
    summary = json.loads((out / "summary.json").read_text(), parse_constant=refuse_non_json)
    verdicts = summary["expectations"] + summary["controls"]
    assert verdicts and {v["verdict"] for v in verdicts} <= {"confirmed", "refuted", "inconclusive", "not measured"}
    assert {v["provenance"] for v in summary["controls"]} == {"proof"}
    claims = {v["claim"] for v in verdicts}
    assert claims <= {e.claim for e in LM_EXPECTATIONS}
    assert any("best-of-n" in c for c in claims) and any("VGB" in c for c in claims)
    points = summary["lm_points"]
    assert {p["lm_task"] for p in points} == {"dyck", "subword-no-e", "text-minilm"}
    dyck = next(t for t in get_reproduction("lm").spec(quick=True).lm_tasks if t["name"] == "dyck")
    assert {p["sampler"] for p in points if p["lm_task"] == "dyck"} == set(dyck["samplers"])
    exact_action = [p for p in points if p["sampler"] == "action-rs" and p["values"] == "exact"]
    assert exact_action and exact_action[0]["tv_output_law"]["mean"] < 1e-9  # V = V*: its law is pi*
    report = (out / "report.md").read_text()
    for section in ["## What is counted", "## Expectations against the data", "## Controls",
                    "## Language-model tasks", "## Every configuration", "## Plots", "Read with care"]:
        assert section in report, section
    table = (out / "table.csv").read_text().splitlines()
    assert table[0].startswith("lm_task,") and len(table) == len(points) + 1
    before = rows_of(out / "results.sqlite")
    second = CliRunner().invoke(app, ["reproduce", "lm", "--quick", "--workers", "1", "--out", str(out)])
    assert second.exit_code == 0, second.output
    said = re.search(r"(\d+) already in .*?(\d+) to run", " ".join(second.output.split()))
    assert said and said.groups() == (str(len(before)), "0"), second.output
    assert rows_of(out / "results.sqlite") == before
    again = CliRunner().invoke(app, ["report", str(out)])
    assert again.exit_code == 0 and "configurations" in again.output


@needs("lm")
def test_a_language_model_run_over_its_budget_is_stored_as_censored_with_what_it_spent():
    """The runner's one censoring rule serves both kinds of run: OutcomeLevelRS held to 4 tries on a rare
    constraint raises BudgetExhaustedError, which is stored as status budget with its ledger."""
    from ttsample.experiments.runner import execute_run

    task = LMRun("d", "dyck", "", 8, "dyck", "", None, True, "outcome-rs", "", 1.0, 0, 200,
                  json.dumps({"max_tries": 4}))
    outcome = execute_run(task)
    assert outcome["status"] == "budget" and outcome["delivered"] == 0 and outcome["tries"] >= 4
