"""Verdicts that can go either way, and the fits rerun on the data of the first published snapshot.

``data/scaling_snapshot_v1.sqlite`` is the result store behind the scaling report
first published in docs/results (4 seeds, best steps to depth 12), kept as it was.
Its old report called "confirmed" any expectation whose 95% interval came within
a tolerance of the expected value; the rule here must tell linear from quadratic
from cubic on the same data, or say that it cannot.
"""

import shutil
import sqlite3
from pathlib import Path

import pytest

from ttsample.eval.lab_part import lab_part
from ttsample.eval.report import write_report
from ttsample.eval.verdicts import Expectation
from ttsample.eval.scaling import collect, fit, worst_cases
from ttsample.experiments.reproductions import ADVERSARY_ORACLES, SCALING_EXPECTATIONS

SNAPSHOT = Path(__file__).parent / "data" / "scaling_snapshot_v1.sqlite"


def snapshot_rows() -> list[dict]:
    with sqlite3.connect(SNAPSHOT) as db:
        cur = db.execute("SELECT * FROM results")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]


@pytest.fixture(scope="module")
def fitted() -> dict:
    return {(f["sampler"], f["oracle"], f["rho_label"], f["family"]): f for f in map(fit, collect(snapshot_rows()))}


def slope_claim(expected: float, alternative: float, upper_bound: bool = False) -> Expectation:
    return Expectation(f"slope {expected} vs {alternative}", "conjecture", "test", lambda f: True, "best_steps",
                       "slope", lambda f: expected, lambda f: alternative, "alt", upper_bound)


# (series, published slope, published 95% interval) from the first snapshot's summary.json
PUBLISHED = [
    (("walk-boosted", "random", "1.5", "random"), 1.8992, (1.55, 2.26)),
    (("lifted", "random", "1+1/n", "random"), 0.8866, (0.55, 1.21)),
    (("walk", "random", "2.0", "random"), 2.8690, (2.53, 3.08)),
]


@pytest.mark.parametrize("key, slope, ci", PUBLISHED)
def test_fits_on_the_first_snapshot_reproduce_its_published_numbers(fitted, key, slope, ci):
    fm = fitted[key]["best_steps"]
    assert fm["slope"] == pytest.approx(slope, abs=1e-4)
    # the bootstrap's resamples depend on the order of stored rows; its interval only to its Monte-Carlo error
    assert fm["slope_ci95"] == pytest.approx(ci, abs=0.03)
    assert not fm["deterministic"] and fm["seeds"] == 4


def test_shared_factor_oracles_give_deterministic_series(fitted):
    # siblings share the adversarial oracle's factor: every seed gives the same best-T cost
    assert fitted[("walk", "adversarial", "1.5", "random")]["best_steps"]["deterministic"]
    assert fitted[("lifted", "adversarial", "2.0", "random")]["best_steps"]["deterministic"]
    assert not fitted[("lifted", "random", "2.0", "random")]["best_steps"]["deterministic"]


def test_the_rule_tells_exponents_apart_in_both_directions(fitted):
    boosted = fitted[("walk-boosted", "random", "1.5", "random")]  # 1.90 [1.55, 2.26]
    assert slope_claim(2.0, 3.0).verdict(boosted)["verdict"] == "confirmed"
    assert slope_claim(2.0, 1.0).verdict(boosted)["verdict"] == "confirmed"
    assert slope_claim(1.0, 2.0).verdict(boosted)["verdict"] == "refuted"
    assert slope_claim(3.0, 2.0).verdict(boosted)["verdict"] == "refuted"
    lifted = fitted[("lifted", "random", "1+1/n", "random")]  # 0.89 [0.55, 1.21]
    assert slope_claim(1.0, 2.0).verdict(lifted)["verdict"] == "confirmed"
    assert slope_claim(2.0, 1.0).verdict(lifted)["verdict"] == "refuted"


def test_an_interval_on_the_edge_is_inconclusive_and_says_what_would_decide_it(fitted):
    lifted = fitted[("lifted", "random", "1.5", "random")]  # 1.71 [1.36, 2.06]: straddles 1.5
    verdict = slope_claim(2.0, 1.0).verdict(lifted)
    assert verdict["verdict"] == "inconclusive"
    assert "seeds per x (now 4) would confirm" in verdict["to_decide"]
    assert slope_claim(1.0, 2.0).verdict(lifted)["verdict"] == "inconclusive"
    assert "would refute" in slope_claim(1.0, 2.0).verdict(lifted)["to_decide"]


def test_a_deterministic_series_is_judged_by_its_value(fitted):
    walk = fitted[("walk", "adversarial", "2.0", "random")]  # 3.04, the same for every seed
    assert slope_claim(3.0, 2.0).verdict(walk)["verdict"] == "confirmed"
    assert slope_claim(2.0, 3.0).verdict(walk)["verdict"] == "refuted"


def test_upper_bounds():
    series = {"best_steps": {"slope": 1.4, "slope_ci95": [1.2, 1.7], "deterministic": False, "seeds": 5}}
    assert slope_claim(1.0, 2.0, upper_bound=True).verdict(series)["verdict"] == "inconclusive"
    assert slope_claim(2.0, 3.0, upper_bound=True).verdict(series)["verdict"] == "confirmed"
    assert slope_claim(0.0, 1.0, upper_bound=True).verdict(series)["verdict"] == "refuted"


def test_a_claim_about_a_value_needs_an_alternative():
    with pytest.raises(ValueError, match="alternative"):
        Expectation("about 2", "conjecture", "test", lambda f: True, "best_steps", "slope", lambda f: 2.0)
    with pytest.raises(ValueError, match="provenance"):
        Expectation("about 2", "folklore", "test", lambda f: True, "best_steps", "slope", lambda f: 2.0,
                    lambda f: 1.0)


def test_worst_case_is_the_largest_instance_per_depth():
    rows = snapshot_rows()
    worst = {(w["sampler"], w["rho_label"]): w for w in worst_cases(rows, "best_steps", ("random", "adversarial"))}
    w = worst[("walk", "2.0")]
    for depth, value in zip(w["xs"], w["worst"]):
        candidates = [r["best_steps_per_sample"] for r in rows if r["sampler"] == "walk" and r["rho_label"] == "2.0"
                      and r["depth"] == depth and r["best_steps_per_sample"] is not None]
        assert value == max(candidates)


def test_report_on_the_first_snapshot(tmp_path):
    summary = write_report(snapshot_rows(), tmp_path, title="t", intro="i", expectations=SCALING_EXPECTATIONS,
                           caveats=[], command="c", parts=[lab_part(("depth",), ADVERSARY_ORACLES)])
    report = (tmp_path / "report.md").read_text()
    assert "(value: no seed variance)" in report and "## Worst instance found" in report
    for v in summary["expectations"]:
        assert v["provenance"] != "abstract"  # nothing in this reproduction is the paper's
        assert v["verdict"] in ("confirmed", "refuted", "inconclusive", "not measured")


def test_a_sweep_of_both_kinds_is_one_report_with_one_verdict_table(tmp_path):
    """The lab snapshot and the shipped language-model store in one sweep: both parts, one table of verdicts."""
    from ttsample.experiments.reproductions import SWEEP_REPORT
    from ttsample.experiments.store import ResultStore

    shipped = Path(__file__).resolve().parents[1] / "docs" / "results" / "lm" / "results.sqlite"
    shutil.copy(shipped, tmp_path / "lm.sqlite")  # opening a store migrates it: never the shipped file
    lm_store = ResultStore(tmp_path / "lm.sqlite")
    rows = snapshot_rows() + lm_store.rows()
    lm_store.close()
    summary = write_report(rows, tmp_path, title="t", intro="i", parts=list(SWEEP_REPORT.parts),
                           expectations=SWEEP_REPORT.expectations, caveats=SWEEP_REPORT.caveats_for(rows),
                           command="c")
    report = (tmp_path / "report.md").read_text()
    assert report.count("## Expectations against the data") == 1
    assert "## Every series against depth n" in report and "## Every configuration" in report
    claims = [v["claim"] for v in summary["expectations"] + summary["controls"]]
    assert any("VGB" in c for c in claims) and any("leaf-boosted walk" in c for c in claims)  # lab and lm together
    assert summary["series"] and summary["lm_points"]
    assert (tmp_path / "table.csv").exists() and (tmp_path / "lm_table.csv").exists()
    assert "`table.csv`" in report and "`lm_table.csv`" in report
