"""Process reward models as values (``prm:DIR``), read at the step tag on a step tree.

PRM folders at random initialisation (tests/user_models.py) on the Dyck model
at H = 6 with steps ending after ")" or "]". The tag " the" is one token of
their tokenizer. Statistical checks reject a correct sampler with probability
at most FALSE_ALARM; the wrong-position twin must differ.
"""

import json

import numpy as np
import pytest

from extras import require

require("lm")

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from ttsample.cli import app  # noqa: E402
from ttsample.errors import ParameterError  # noqa: E402
from ttsample.lm.backend import LanguageModel  # noqa: E402
from ttsample.lm.exact import ExactLaw  # noqa: E402
from ttsample.lm.oracle import LMOracle  # noqa: E402
from ttsample.lm.prm import PRMReading, ProcessRewardValues  # noqa: E402
from ttsample.lm.rewards import REWARDS  # noqa: E402
from ttsample.lm.samplers.vgb import sample_vgb  # noqa: E402
from ttsample.lm.steps import Steps  # noqa: E402
from ttsample.lm.task import GenerationTask  # noqa: E402
from ttsample.testing import FALSE_ALARM, chi_square_p_value  # noqa: E402
from user_models import prm_folder  # noqa: E402

H = 6
TAG = " the"
RULE = Steps((")", "]"))


@pytest.fixture(scope="module")
def task():
    return GenerationTask(LanguageModel.load("dyck"), "", H, REWARDS["dyck"], step_rule=RULE)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("prm")
    return {"causal": prm_folder(root / "causal"), "labels": prm_folder(root / "labels", "classifier", 2),
            "scalar": prm_folder(root / "scalar", "classifier", 1)}


def step_ends(task, count: int, seed: int = 0) -> np.ndarray:
    """Distinct internal step ends two steps deep, drawn from pi_ref."""
    rng = np.random.default_rng(seed)
    nodes = np.zeros(count, dtype=np.int64)
    for _ in range(2):
        going = np.flatnonzero(~task.tree.is_leaf(nodes))
        nodes[going], _ = task.draw_children(nodes[going], rng)
    nodes = np.unique(nodes[~task.tree.is_leaf(nodes) & (nodes != 0)])
    assert nodes.size >= 3 and (task.tree.depth_of(nodes) == 2).any()
    return nodes


def by_hand(folder, kind, task, nodes, shift: int = 0) -> list[np.ndarray]:
    """The step scores read one text at a time, straight from the model: at the tag (``shift`` tokens off it)."""
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = (AutoModelForCausalLM if kind == "causal" else AutoModelForTokenClassification).from_pretrained(
        folder, local_files_only=True).eval()
    tag = tokenizer.encode(TAG, add_special_tokens=False)[0]
    out = []
    for v in nodes:
        steps, node = [], int(v)
        while node:
            steps.append(node)
            node = int(task.tree.parent(np.array([node]))[0])
        tokens = task.tokens(np.array(steps[::-1]))
        text, before = "", ()
        for whole in tokens:
            step = task.lm.tokenizer.decode(whole[len(before):])
            before = whole
            text += step[:-1] + TAG + step[-1]  # every step here ends with its delimiter, ")" or "]"
        ids = torch.tensor([tokenizer.encode(text)])
        with torch.no_grad():
            logits = model(ids).logits[0].double()
        at = torch.nonzero(ids[0] == tag)[:, 0] + shift
        if kind == "causal":
            pm = [tokenizer.encode(c, add_special_tokens=False)[0] for c in "+-"]
            out.append(torch.softmax(logits[at][:, pm], dim=1)[:, 0].numpy())
        elif kind == "labels":
            out.append(torch.softmax(logits[at], dim=1)[:, 1].numpy())
        else:
            out.append(torch.sigmoid(logits[at, 0]).numpy())
    return out


@pytest.mark.parametrize("kind", ["causal", "labels", "scalar"])
def test_the_prm_is_read_at_its_tags_and_aggregated(task, folders, kind):
    nodes = step_ends(task, 64)
    expected = by_hand(folders[kind], kind, task, nodes)
    for aggregate, f in [("last", lambda s: s[-1]), ("product", np.prod), ("min", np.min)]:
        values = ProcessRewardValues(task, str(folders[kind]), PRMReading(TAG, aggregate=aggregate))
        got = values(nodes)
        # batched with padding against one text at a time, float32 models: equal to 1e-5 in log space
        np.testing.assert_allclose(got, [np.log(f(s)) for s in expected], atol=1e-5)
    assert values(np.zeros(1, dtype=np.int64))[0] == 0.0  # the root, with no step: V_hat = 1


def test_an_eos_step_is_no_step_to_score(task, folders):
    """A response that ends with <eos> right after a step end reads as its last real step."""
    values = ProcessRewardValues(task, str(folders["causal"]), PRMReading(TAG))
    inner = step_ends(task, 64)
    leaf = task.token_tree.child(inner, np.full(inner.size, task.eos_action))  # <eos> after each step end
    assert np.all(task.tree.ends_step(leaf)) and np.all(task.tree.parent(leaf) == inner)
    assert [values.layout(int(v)) for v in leaf] == [values.layout(int(v)) for v in inner]
    np.testing.assert_allclose(values(leaf), values(inner), atol=1e-12)


def test_the_empty_response_is_one_empty_step_scored_at_a_tag_right_after_the_prompt(task, folders):
    """<eos> first: no step of text, yet a finished solution the maximisers score (they read values at leaves)."""
    empty = task.token_tree.child(np.zeros(1, dtype=np.int64), np.array([task.eos_action]))
    assert task.tree.is_leaf(empty)[0] and task.text(empty) == [""]
    tokenizer = AutoTokenizer.from_pretrained(folders["labels"], local_files_only=True)
    model = AutoModelForTokenClassification.from_pretrained(folders["labels"], local_files_only=True).eval()
    with torch.no_grad():
        logits = model(torch.tensor([tokenizer.encode(TAG)])).logits[0, -1].double()
    for aggregate in ("last", "product", "min"):
        values = ProcessRewardValues(task, str(folders["labels"]), PRMReading(TAG, aggregate=aggregate))
        assert values.layout(int(empty[0])) == (TAG, 1)
        np.testing.assert_allclose(values(empty), [torch.log_softmax(logits, 0)[1].item()], atol=1e-5)


def test_a_prm_read_one_token_before_its_tag_is_caught(task, folders):
    """Twin: the scores one position before the tag differ from what the values read."""
    nodes = step_ends(task, 64)
    values = ProcessRewardValues(task, str(folders["causal"]), PRMReading(TAG))(nodes)
    wrong = by_hand(folders["causal"], "causal", task, nodes, shift=-1)
    assert np.max(np.abs(values - np.log([s[-1] for s in wrong]))) > 1e-3


def test_vgb_with_prm_values_at_step_level_samples_pi_star(task, folders):
    law = ExactLaw(GenerationTask(task.lm, "", H, REWARDS["dyck"], step_rule=RULE))
    values = ProcessRewardValues(law.task, str(folders["labels"]), PRMReading(TAG))
    result = sample_vgb(law.task, LMOracle(law.task, values), 2000, np.random.default_rng(1))
    cells = np.array([law.index[tuple(t)] for t in law.task.tokens(result.samples)])
    assert chi_square_p_value(cells, law.pi_star) > FALSE_ALARM
    scored = []
    values.step_scores = lambda nodes, read=values.step_scores: scored.extend(nodes) or read(nodes)
    values(np.array(list(values.cache)))  # every node VGB asked, asked again: no PRM pass
    sample_vgb(law.task, LMOracle(law.task, values), 200, np.random.default_rng(2))
    assert len(scored) == len(set(scored))  # a step end is scored once, however often the walk asks it


def test_the_test_time_head_distils_the_prm_and_vgb_stays_exact(task, folders):
    """head:prm:DIR: the PRM labels the first nodes asked (and a share of later ones), the head answers the rest."""
    from ttsample.lm.generate import make_values

    law = ExactLaw(GenerationTask(task.lm, "", H, REWARDS["dyck"], step_rule=RULE))
    values = make_values(law.task, f"head:prm:{folders['labels']}", np.random.default_rng(0), PRMReading(TAG))
    result = sample_vgb(law.task, LMOracle(law.task, values), 2000, np.random.default_rng(1))
    assert values.head is not None and values.fits
    assert len(values.rollouts.cache) == len(values.labels)  # the PRM is asked only at the nodes it labels
    assert len(values.labels) < result.ledger.queries_distinct  # the head answered the rest
    cells = np.array([law.index[tuple(t)] for t in law.task.tokens(result.samples)])
    assert chi_square_p_value(cells, law.pi_star) > FALSE_ALARM


def test_bad_prm_settings_are_refused(task, folders, tmp_path):
    with pytest.raises(ParameterError, match="one"):
        ProcessRewardValues(task, str(folders["causal"]), PRMReading(" ки"))  # five tokens of this tokenizer
    with pytest.raises(ParameterError, match="no label 'correct'"):
        ProcessRewardValues(task, str(folders["labels"]), PRMReading(TAG, good="correct"))
    with pytest.raises(ParameterError, match="scores steps"):
        ProcessRewardValues(GenerationTask(task.lm, "", H, REWARDS["dyck"]), str(folders["causal"]), PRMReading(TAG))
    with pytest.raises(ParameterError, match="aggregate"):
        PRMReading(TAG, aggregate="mean")


def test_generate_with_a_prm(folders, tmp_path):
    args = ["generate", "--model", "dyck", "--horizon", str(H), "--reward", "dyck", "-n", "10", "--seed", "0",
            "--step-delimiter", ")", "--step-delimiter", "]"]
    out = tmp_path / "a"
    result = CliRunner().invoke(app, args + ["--sampler", "vgb", "--values", f"prm:{folders['causal']}",
                                             "--prm-tag", TAG, "--prm-aggregate", "min", "--out", str(out)])
    assert result.exit_code == 0, result.output
    ledger = json.loads((out / "ledger.json").read_text())
    assert ledger["prm"] == {"tag": TAG, "good": None, "bad": None, "aggregate": "min"} and ledger["reward_calls"] > 0
    result = CliRunner().invoke(app, args + ["--sampler", "vgb", "--prm-tag", TAG, "--out", str(tmp_path / "b")])
    assert result.exit_code == 2 and "not a PRM" in result.output
