"""The prepared GPU check runs on the CPU, tiny, so that it cannot rot before a GPU machine is lent."""

import importlib.util
import json
from pathlib import Path

from extras import require

require("lm")

from ttsample.registry import names

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "device_check.py"


def test_the_device_check_runs_small_on_the_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "check.json"
    module.main(["--device", "cpu", "--small", "--out", str(out)])
    report = json.loads(out.read_text())
    assert {(r["arch"], r["dtype"]) for r in report["cache"]} == {(a, d) for a in ("gpt2", "llama", "qwen2")
                                                                  for d in ("float32", "bfloat16")}
    assert all(r["ok"] for r in report["cache"]), report["cache"]
    assert [r["sampler"] for r in report["samplers"]] == list(names("generation"))
    assert all(r["samples"] >= 1 for r in report["samplers"])
    assert [r["batch"] for r in report["throughput"]] == [1, 16, 64]


def test_its_cache_check_catches_a_backend_that_loses_the_past(monkeypatch):
    """The bug met on transformers 5.19: the past passed under a name the model does not take is ignored."""
    import ttsample.lm.backend as backend

    spec = importlib.util.spec_from_file_location("device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(backend, "_cache_argument", lambda model: "ignored_past")
    assert not any(r["ok"] for r in module.check_cache("cpu", small=True))
