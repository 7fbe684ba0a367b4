"""The sampler registry: one table of every sampler, and a sampler added as one file plus one row.

``guided-descent`` (tests/toy_sampler.py) is registered here and nowhere
else: the command line, a sweep spec and the Python ``run`` all find it.
"""

import json
import tomllib

import numpy as np
import pytest
from typer.testing import CliRunner

from toy_sampler import sample_guided_descent
from ttsample import make_oracle, random_target, run
from ttsample.cli import app
from ttsample.errors import ParameterError
from ttsample.experiments.runner import run_spec
from ttsample.experiments.spec import parse_spec
from ttsample.experiments.store import ResultStore
from ttsample.registry import PROBLEM_KINDS, REGISTRY, SamplerEntry, names, register, sampler_entry
from ttsample.runs import OracleProblem


@pytest.fixture
def toy():
    entry = register(SamplerEntry("guided-descent", sample_guided_descent, "oracle", "descent by the oracle's answers"))
    yield entry
    REGISTRY.pop(entry.name)


def test_a_registered_sampler_runs_from_python_with_the_run_seed_rule(toy):
    target = random_target(5, 2, concentration=0.5, seed=3)
    done = run(OracleProblem(make_oracle(target)), "guided-descent", 300, seed=4)
    direct = sample_guided_descent(make_oracle(target), 300, np.random.default_rng([4, 1]))
    np.testing.assert_array_equal(done.result.samples, direct.samples)  # run's stream: default_rng([seed, 1])
    assert done.result.ledger.queries_total == 300 * 5 * 2 and done.result.ledger.queries_distinct > 0
    assert np.all(target.leaf_probs()[done.result.samples] > 0)


def test_a_registered_sampler_runs_from_the_command_line(toy, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["sample", "--random-target", "4", "--sampler", "guided-descent", "-n", "60",
                                      "--seed", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    direct = sample_guided_descent(make_oracle(random_target(4, 2, 1.0, 2)), 60, np.random.default_rng([2, 1]))
    np.testing.assert_array_equal(np.load(out / "samples.npy"), direct.samples)
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["sampler"] == "guided-descent" and ledger["levels"] == 4 and ledger["tv_output_law"] is None


def test_a_registered_sampler_runs_from_a_sweep_spec(toy, tmp_path):
    spec = parse_spec(tomllib.loads('name = "toy"\nsamplers = ["guided-descent", "jvv"]\ndepths = [3]\nseeds = 2\n'
                                    'samples = 40\nmax_queries = 1e6\n[[families]]\nkind = "random"\n'
                                    '[[oracles]]\nkind = "exact"\n'))
    store = ResultStore(tmp_path / "results.sqlite")
    assert run_spec(spec, store, workers=1) == 4
    rows = [r for r in store.rows() if r["sampler"] == "guided-descent"]
    assert len(rows) == 2 and all(r["status"] == "ok" and r["delivered"] == 40 for r in rows)


def test_unregistered_names_and_wrong_problems_are_refused_with_the_choices():
    with pytest.raises(ParameterError, match="unknown sampler 'guided-descent'; choose one of jvv"):
        sampler_entry("guided-descent", "tree")
    with pytest.raises(ParameterError, match="vgb does not run on a formula problem; choose one of jvv"):
        sampler_entry("vgb", "formula")
    with pytest.raises(ParameterError, match="already registered"):
        register(SamplerEntry("jvv", sample_guided_descent, "oracle", "a second jvv"))
    with pytest.raises(ParameterError, match="needs one of oracle, class, decoder"):
        SamplerEntry("x", sample_guided_descent, "model", "wrong kind of need")


def test_run_checks_options_and_seed_against_the_sampler_itself(toy):
    problem = OracleProblem(make_oracle(random_target(3, 2, seed=0)))
    with pytest.raises(ParameterError, match="guided-descent has no option steps; its options: max_queries"):
        run(problem, "guided-descent", 10, seed=0, steps=5)
    with pytest.raises(ParameterError, match="walk-boosted has no option leaf_hold; its options: steps, leaf_boost"):
        run(problem, "walk-boosted", 10, seed=0, leaf_hold=0.5)  # its options are sample_walk's (options_of)
    with pytest.raises(ParameterError, match="seed must be an integer >= 0"):
        run(problem, "guided-descent", 10, seed=-1)
    with pytest.raises(ParameterError, match="needs the class F"):
        run(problem, "mixture-rejection", 10, seed=0)


def test_every_row_says_where_it_runs_and_the_facts_callers_read():
    assert set(names("tree")) | set(names("generation")) == set(REGISTRY)
    assert set(names("formula")) == {n for n in names(needs="oracle") if not REGISTRY[n].flat_promise}
    assert {n for n in REGISTRY if REGISTRY[n].maximiser} == {"best-of-n", "aisp", "beam-search", "dvts",
                                                             "weighted-best-of-n", "majority-vote"}
    for name, entry in REGISTRY.items():
        assert any(entry.runs_on(kind) for kind in PROBLEM_KINDS), name
        assert entry.about and entry.options() is not None
        assert not (entry.walk and entry.exact_law), name  # a walk's law comes from its walk
        assert entry.needs == "decoder" or not (entry.uses_values or entry.responses or entry.kl), name


def test_the_readme_lists_the_registry_as_it_is():
    from pathlib import Path

    from ttsample.registry import markdown_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert markdown_table() in readme  # regenerate the README's table with markdown_table() after adding a row


def test_a_walk_s_exact_law_is_the_law_of_the_kernel_it_ran():
    """``walk`` with kernel="proposal" ran the proposal walk: its exact law is that walk's, not the dense one's."""
    from ttsample.eval.exact_laws import walk_output_law
    from ttsample.samplers.walk import ProposalWalk, SinclairJerrumWalk
    from ttsample.sampling import exact_output_law

    oracle = make_oracle(random_target(4, 2, concentration=0.5, seed=1), "random", 1.5, seed=2)
    done = run(OracleProblem(oracle), "walk", 20, seed=0, kernel="proposal", steps=30)
    law = exact_output_law("walk", oracle, done.result.params)
    proposal = walk_output_law(ProposalWalk(oracle.tree, 1.0), oracle, 30)[0]
    dense = walk_output_law(SinclairJerrumWalk(oracle.tree, 1.0), oracle, 30)[0]
    assert np.abs(proposal - dense).sum() > 1e-3  # the two laws differ at T = 30, so the check can fail
    np.testing.assert_allclose(law, proposal, rtol=0, atol=1e-12)


def test_draws_times_z_is_read_for_the_rows_that_reject_whole_responses_and_no_other():
    """OutcomeLevelRS's acceptance rate is the share of pi_ref responses accepted (Z in expectation); MH's is the
    share of moves accepted, which says nothing about Z: the metric reads the row's fact, not the sampler's name."""
    from ttsample.eval.scaling import LM_METRICS

    row = {"z": 0.5, "z_exact": 1, "acceptance_rate": 0.25}
    assert [name for name in REGISTRY if REGISTRY[name].rejects_responses] == ["outcome-rs"]
    assert LM_METRICS["draws_times_z"]({**row, "sampler": "outcome-rs"}) == 2.0
    assert LM_METRICS["draws_times_z"]({**row, "sampler": "mh"}) is None
    assert LM_METRICS["draws_times_z"]({**row, "sampler": "outcome-rs", "z_exact": 0}) is None
