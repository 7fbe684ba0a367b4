import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ttsample import bounded_tilt_target
from ttsample.cli import app
from ttsample.oracles import ORACLES
from ttsample.registry import SAMPLERS

runner = CliRunner()


@pytest.fixture
def masses_file(tmp_path):
    path = tmp_path / "masses.npy"
    rng = np.random.default_rng(0)
    masses = rng.gamma(0.5, size=3**4)
    masses[:9] = 0.0
    np.save(path, masses)
    return path


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("oracle", ORACLES)
def test_sample_on_a_users_file(tmp_path, masses_file, sampler, oracle):
    out = tmp_path / "out"
    args = ["sample", "--target", str(masses_file), "--branching", "3", "--oracle", oracle, "--rho", "1.2",
            "--sampler", sampler, "-n", "200", "--seed", "4", "--out", str(out)]
    result = runner.invoke(app, args)
    if sampler == "jvv" and oracle in ("delayed", "flat"):  # zero subtrees get weight: no finite bound
        assert result.exit_code == 2 and "walk" in result.output and not out.exists()
        return
    if sampler == "uniform-rejection":  # needs the flat promise, and flat has no finite bound on this file
        assert result.exit_code == 2 and not out.exists()
        assert ("finite bound" if oracle == "flat" else "--oracle flat") in result.output
        return
    assert result.exit_code == 0, result.output
    samples = np.load(out / "samples.npy")
    assert samples.dtype == np.int64 and samples.shape == (200,)
    assert np.all(np.load(masses_file)[samples] > 0)
    ledger = json.loads((out / "ledger.json").read_text())
    for key in ["queries_total", "queries_distinct", "steps", "restarts", "seconds", "tv_empirical", "tv_output_law"]:
        assert key in ledger
    assert ledger["tv_empirical"] is not None and ledger["sampler"] == sampler
    rerun = runner.invoke(app, args)
    assert rerun.exit_code == 0
    np.testing.assert_array_equal(np.load(out / "samples.npy"), samples)  # same seed, same samples


def test_uniform_rejection_on_a_bounded_tilt_with_the_flat_oracle(tmp_path):
    path = tmp_path / "tilt.npy"
    np.save(path, bounded_tilt_target(4, 3, rho=1.5, seed=0).leaf_probs())
    out = tmp_path / "u"
    args = ["sample", "--target", str(path), "--branching", "3", "--sampler", "uniform-rejection", "-n", "300"]
    result = runner.invoke(app, [*args, "--oracle", "flat", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["tv_output_law"] < 1e-9 and ledger["first_sample_queries"] >= 1 and ledger["rho"] <= 1.5 + 1e-9
    refused = runner.invoke(app, [*args, "--oracle", "decoy", "--rho", "1.5", "--out", str(tmp_path / "v")])
    assert refused.exit_code == 2 and "--oracle flat" in refused.output and not (tmp_path / "v").exists()
    assert isinstance(refused.exception, SystemExit)  # a typed error, not an uncaught exception


def test_random_target(tmp_path):
    out = tmp_path / "r"
    result = runner.invoke(app, ["sample", "--random-target", "6", "--sampler", "lifted", "-n", "50", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads((out / "ledger.json").read_text())["depth"] == 6


def write(tmp_path, array):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    return str(path)


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda p: ["--target", write(p, np.array([1.0, -2.0, 1.0, 1.0]))], "negative"),
        (lambda p: ["--target", write(p, np.array([1.0, np.nan, 1.0, 1.0]))], "NaN"),
        (lambda p: ["--target", write(p, np.zeros(8))], "zero"),
        (lambda p: ["--target", write(p, np.ones(6))], "branching"),
        (lambda p: ["--target", str(p / "missing.npy")], "cannot read"),
        (lambda p: [], "exactly one of"),
        (lambda p: ["--random-target", "4", "--rho", "0.5", "--oracle", "random"], "rho"),
        (lambda p: ["--random-target", "0"], "depth"),
        (lambda p: ["--random-target", "4", "--oracle", "psychic"], "unknown oracle"),
        (lambda p: ["--random-target", "4", "--branching", "1"], "branching"),
    ],
)
def test_bad_input_exits_nonzero_and_writes_nothing(tmp_path, make_args, message):
    out = tmp_path / "out"
    args = ["sample", *make_args(tmp_path), "--sampler", "jvv", "-n", "10", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert isinstance(result.exception, SystemExit)  # a typed error, not an uncaught exception
    assert not out.exists()


def test_bad_seed_and_output_path(tmp_path):
    taken = tmp_path / "file"
    taken.write_text("x")
    for extra, message in [(["--seed", "-1", "--out", str(tmp_path / "o")], "seed"), (["--out", str(taken)], "not a folder")]:
        result = runner.invoke(app, ["sample", "--random-target", "3", "--sampler", "jvv", "-n", "5", *extra])
        assert result.exit_code == 2 and message in result.output and isinstance(result.exception, SystemExit)
    assert not (tmp_path / "o").exists() and taken.read_text() == "x"


def test_bad_sampler_and_count(tmp_path):
    for extra, message in [(["--sampler", "magic", "-n", "5"], "unknown sampler"), (["--sampler", "walk", "-n", "0"], "number of samples")]:
        result = runner.invoke(app, ["sample", "--random-target", "3", *extra, "--out", str(tmp_path / "o")])
        assert result.exit_code == 2 and message in result.output
        assert not (tmp_path / "o").exists()


def test_a_walk_that_never_reaches_a_leaf_exits_2(tmp_path):
    out = tmp_path / "o"
    args = ["sample", "--random-target", "6", "--sampler", "walk", "--steps", "3", "-n", "10", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--steps" in result.output and isinstance(result.exception, SystemExit)
    assert not out.exists()


def test_demo_runs():
    result = runner.invoke(app, ["demo", "--depth", "4", "-n", "100"])
    assert result.exit_code == 0, result.output
    for name in SAMPLERS:
        assert name in result.output


def test_tables_keep_every_digit_on_a_narrow_console():
    """Piped or logged, a console is 80 columns wide, and rich cut cells to an ellipsis ("1,875,…")."""
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    from ttsample.display import print_table

    def table():
        t = Table(title="costs")
        for column in ("samples", "distinct", "forward passes", "tokens", "reward calls", "queries", "seconds"):
            t.add_column(column, justify="right")
        t.add_row("3,000", "1,875,123", "12,345,678", "98,765,432", "1,000,000", "123,456,789", "1,234.56")
        return t

    plain, wide = Console(file=StringIO(), width=40), Console(file=StringIO(), width=40)
    plain.print(table())  # twin: the console's own printing cuts the digits
    print_table(wide, table())
    assert "…" in plain.file.getvalue() and "123,456,789" not in plain.file.getvalue()
    assert "…" not in wide.file.getvalue()
    assert all(x in wide.file.getvalue() for x in ("1,875,123", "12,345,678", "98,765,432", "123,456,789", "1,234.56"))
    assert wide.width == 40  # the console is left as it was
