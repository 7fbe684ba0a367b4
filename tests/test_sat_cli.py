"""``ttsample sat``: solutions and ledger on a user's CNF file; every bad input exits 2 and writes nothing."""

import gzip
import json
import sys

import pytest

from extras import require

require("sat")

from typer.testing import CliRunner

from ttsample.cli import app


runner = CliRunner()
FORMULA = """c (x1 | x2) (-x1 | x3) (x2 | -x3 | x4) (-x2 | -x4 | x5): 11 solutions over 5 variables
p cnf 5 4
1 2 0
-1 3 0
2 -3 4 0
-2 -4 5 0
"""
PROJECTED = "p cnf 4 3\nc ind 1 2 0\n-1 3 0\n-2 -3 0\n3 4 0\n"  # over x1, x2: 3 of the 4 assignments extend (not 1 2)


def satisfies(literals, text):
    value = {abs(l): l > 0 for l in literals}
    clauses = [[int(t) for t in line.split()[:-1]] for line in text.splitlines()
               if line and line[0] not in "cp"]
    return all(any(value[abs(l)] == (l > 0) for l in c) for c in clauses)


def invoke(tmp_path, text, *args, name="f.cnf", out="out"):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if name.endswith(".gz") else text.encode())
    result = runner.invoke(app, ["sat", str(path), *args, "--out", str(tmp_path / out)])
    return result, tmp_path / out


@pytest.mark.parametrize("counter, sampler", [("ganak", "jvv"), ("approxmc", "lifted"), ("ganak", "walk")])
def test_sat_writes_solutions_and_ledger(tmp_path, counter, sampler):
    args = ["-n", "40", "--counter", counter, "--sampler", sampler, "--seed", "3"]
    result, out = invoke(tmp_path, FORMULA, *args)
    assert result.exit_code == 0, result.output
    lines = (out / "solutions.txt").read_text().splitlines()
    assert len(lines) == 40 and all(line.endswith(" 0") for line in lines)
    for line in lines:
        lits = [int(t) for t in line.split()[:-1]]
        assert sorted(map(abs, lits)) == [1, 2, 3, 4, 5] and satisfies(lits, FORMULA)
    ledger = json.loads((out / "ledger.json").read_text())
    for key in ("counter_calls", "cache_hits", "seconds", "wall_seconds", "queries_total", "queries_distinct",
                "sat_calls", "enumerations", "root_count", "tools"):
        assert key in ledger, key
    assert ledger["root_count"] == 11 and ledger["sampler"] == sampler and ledger["counter"] == counter
    again, _ = invoke(tmp_path, FORMULA, *args, out="again")
    assert again.exit_code == 0 and (tmp_path / "again" / "solutions.txt").read_text() == "\n".join(lines) + "\n"


def test_sat_projects_on_c_ind_and_reads_gzip(tmp_path):
    result, out = invoke(tmp_path, PROJECTED, "-n", "60", "--order", "occurrence", name="p.cnf.gz")
    assert result.exit_code == 0, result.output
    got = {line for line in (out / "solutions.txt").read_text().splitlines()}
    assert got == {"1 -2 0", "-1 2 0", "-1 -2 0"}
    assert json.loads((out / "ledger.json").read_text())["projected"] is True


@pytest.mark.parametrize("text, args, message", [
    ("p cnf 2 2\n1 2 0\n", [], "declares 2 clauses"),
    ("p cnf 2 1\n1 2\n", [], "does not end with 0"),
    ("p cnf 1 2\n1 0\n-1 0\n", [], "unsatisfiable"),
    ("p cnf 2 1\nc ind 1 9 0\n1 2 0\n", [], "names variable 9"),
    (FORMULA, ["--counter", "sharpsat"], "unknown counter"),
    (FORMULA, ["--sampler", "mixture-rejection"], "does not apply to a formula"),
    (FORMULA, ["--sampler", "nope"], "unknown sampler"),
    ("p cnf 20 1\n1 2 0\n", ["--counter", "approxmc"], "--sampler lifted"),  # JVV's bound: 1.8**38 tries
    (FORMULA, ["--counter", "approxmc", "--sampler", "lifted", "--epsilon", "0"], "--epsilon"),
    (FORMULA, ["--order", "alphabetical"], "unknown variable order"),
    (FORMULA, ["--seed", "-1"], "--seed"),
])
def test_bad_input_exits_2_and_writes_nothing(tmp_path, text, args, message):
    result, out = invoke(tmp_path, text, "-n", "10", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output and not out.exists()
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())  # no staging folder left either


def test_an_unknown_sampler_is_told_only_the_samplers_a_formula_takes(tmp_path):
    result, _ = invoke(tmp_path, FORMULA, "-n", "10", "--sampler", "nope")
    assert result.exit_code == 2 and "lifted" in result.output
    assert "mixture-rejection" not in result.output and "uniform-rejection" not in result.output  # it refuses those


def test_missing_file_and_missing_counter_exit_2(tmp_path, monkeypatch):
    result = runner.invoke(app, ["sat", str(tmp_path / "nope.cnf"), "-n", "3", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "cannot read" in result.output and not (tmp_path / "o").exists()
    monkeypatch.setitem(sys.modules, "pyganak", None)  # as if the [sat] extra were not installed
    result, out = invoke(tmp_path, FORMULA, "-n", "3")
    assert result.exit_code == 2 and "ttsample[sat]" in result.output and not out.exists()
