"""The adaptive walk length (``steps="auto"``): T doubled until the chains' depths look mixed.

On the Dyck constraint at H = 6 with exact values. Statistical checks reject a
correct sampler with probability at most FALSE_ALARM; each has a twin that
must fail.
"""

import json

import numpy as np
import pytest

from extras import require

require("lm")

from typer.testing import CliRunner

from ttsample.cli import app
from ttsample.ledger import Ledger
from ttsample.lm.backend import LanguageModel
from ttsample.lm.exact import ExactLaw
from ttsample.lm.oracle import LMOracle
from ttsample.lm.rewards import REWARDS
from ttsample.lm.samplers.vgb import sample_vgb
from ttsample.lm.task import GenerationTask
from ttsample.lm.values import ExactValues
from ttsample.samplers.chains import ADAPT_Z, adapt_steps
from ttsample.samplers.walk import KERNELS, default_walk_steps
from ttsample.testing import FALSE_ALARM, chi_square_p_value

H = 6
SHORT = H + 2  # a walk this short ends at a leaf mostly by having walked straight down: short words win


@pytest.fixture(scope="module")
def dyck():
    law = ExactLaw(GenerationTask(LanguageModel.load("dyck"), "", H, REWARDS["dyck"]))
    oracle = LMOracle(law.task, ExactValues(law.task))
    return law, oracle


def cells(law, tokens) -> np.ndarray:
    return np.array([law.index[tuple(t)] for t in tokens])


def test_auto_walk_length_is_shorter_than_the_default_on_exact_values_and_exact(dyck):
    law, oracle = dyck
    result = sample_vgb(law.task, oracle, 2000, np.random.default_rng(0), steps="auto")
    default = default_walk_steps(H, 4.0, 2.0 * H)
    assert result.params["steps"] < default  # exact values mix fast: the default is set for values of unknown quality
    assert result.diagnostics["steps_trace"][-1]["mixed"]
    assert chi_square_p_value(cells(law, law.task.tokens(result.samples)), law.pi_star) > FALSE_ALARM


def test_adapt_steps_lengthens_a_walk_that_has_not_mixed(dyck):
    """From T = H + 2 the chains are still near the root at T / 2: the rule doubles, and the walk at the T it
    chose samples pi*; the twin, the walk at the T it started from, is caught."""
    law, oracle = dyck
    walk = KERNELS["dense"](law.task.tree, 2.0 * H)
    steps, trace = adapt_steps(walk, oracle, SHORT, 10_000, 1024, np.random.default_rng(1), Ledger())
    assert trace[0]["steps"] == SHORT and abs(trace[0]["z"]) > ADAPT_Z and not trace[0]["mixed"]
    assert steps >= 4 * SHORT and trace[-1]["mixed"]
    chosen = sample_vgb(law.task, oracle, 2000, np.random.default_rng(2), steps=steps).samples
    assert chi_square_p_value(cells(law, law.task.tokens(chosen)), law.pi_star) > FALSE_ALARM
    start = sample_vgb(law.task, oracle, 2000, np.random.default_rng(2), steps=SHORT).samples
    assert chi_square_p_value(cells(law, law.task.tokens(start)), law.pi_star) < FALSE_ALARM


def test_adapt_steps_says_when_it_reached_its_longest_walk(dyck):
    law, oracle = dyck
    walk = KERNELS["dense"](law.task.tree, 2.0 * H)
    steps, trace = adapt_steps(walk, oracle, SHORT, 3 * SHORT, 1024, np.random.default_rng(1), Ledger())
    assert steps == 3 * SHORT and [e["steps"] for e in trace] == [SHORT, 2 * SHORT, 3 * SHORT]  # the cap, exactly
    assert not trace[-1]["mixed"]


def test_generate_takes_steps_auto_and_refuses_other_words(tmp_path):
    runner = CliRunner()
    args = ["generate", "--model", "dyck", "--horizon", str(H), "--reward", "dyck", "--sampler", "vgb",
            "--values", "exact", "-n", "20", "--seed", "0"]
    result = runner.invoke(app, args + ["--set", "steps=auto", "--out", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    assert "walk length by doubling" in result.output
    assert json.loads((tmp_path / "a" / "ledger.json").read_text())["info"]["steps_trace"]
    result = runner.invoke(app, args + ["--set", "steps=long", "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "'auto'" in result.output
