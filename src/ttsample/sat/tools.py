"""Loading the SAT tools (the optional extra ``ttsample[sat]``), checking their builds, and silencing them.

Three traps, measured here (see docs/sat.md):

- pyapproxmc 4.3.4, 4.4.0 and 4.4.1 undercount by ``2**k`` when their
  preprocessing finds ``k`` free variables (``(x1|x2)(-x1|x3)(x1)`` has 2
  solutions; 4.4.1 answers 1). 4.1.24 is correct: the extra pins it.
- The pyganak wheels (2.8.0, and 2.9.0 still) ship their own
  ``pyapproxmc.*.so`` (2.9.0's is 4.4.1, one of the bad builds) and
  ``pycryptosat.*.so``, which overwrite the files of the separately installed
  packages or are overwritten by them, so install order decides which build
  Python loads while pip's metadata keeps saying 4.1.24. ``approxmc_module``
  therefore checks the version of the module actually loaded, refuses a known
  bad build, and runs the free-variable formula once as a self-test.
- Ganak prints to standard output (``c o ...``) even at verbosity 0:
  ``quiet_stdout`` sends file descriptor 1 to /dev/null around a call.
"""

from __future__ import annotations

import importlib
import os
import sys
from contextlib import contextmanager
from functools import lru_cache

from ..errors import ParameterError

EXTRA_HINT = "install the SAT extra: pip install 'ttsample[sat]' (pyganak, pyapproxmc==4.1.24, pycryptosat, pyunigen)"
APPROXMC_VERIFIED = ("4.1.24",)
APPROXMC_KNOWN_BAD = ("4.3.4", "4.4.0", "4.4.1")  # undercount with free variables (4.4.1: pyganak 2.9.0's copy)
FREE_VARIABLE_TRAP = ([1, 2], [-1, 3], [1])  # 2 solutions: x1 = x3 = 1, x2 free
FIX_APPROXMC = "pip install --force-reinstall --no-deps pyapproxmc==4.1.24"


class MissingToolError(ParameterError):
    """A SAT tool of the ``[sat]`` extra is not installed, or its loaded build is known to be wrong."""


def _import(name: str, what: str):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingToolError(f"{what} needs the Python module {name}, which is not installed ({exc}); {EXTRA_HINT}") from None


def ganak_module():
    """pyganak (the exact counter)."""
    return _import("pyganak", "the exact counter (--counter ganak)")


def cryptosat_module():
    """pycryptosat (satisfiability checks, leaf checks and enumeration of small subtrees)."""
    return _import("pycryptosat", "satisfiability checks and enumeration")


def unigen_module():
    """pyunigen (only the benchmark against UniGen uses it)."""
    return _import("pyunigen", "the UniGen benchmark")


@lru_cache(maxsize=1)
def approxmc_module():
    """pyapproxmc, after checking that the loaded build counts free variables correctly."""
    module = _import("pyapproxmc", "the approximate counter (--counter approxmc)")
    version = str(getattr(module, "__version__", getattr(module, "VERSION", "unknown")))
    where = getattr(module, "__file__", "?")
    if version in APPROXMC_KNOWN_BAD:
        raise MissingToolError(
            f"the pyapproxmc loaded ({version}, {where}) undercounts formulas with free variables; this is often "
            f"the copy that the pyganak wheel ships, which overwrites pyapproxmc 4.1.24 when pyganak is installed "
            f"after it. Fix: {FIX_APPROXMC}"
        )
    if version not in APPROXMC_VERIFIED:  # unknown build: test it on the trap once
        counter = module.Counter(seed=1)
        counter.add_clauses([list(c) for c in FREE_VARIABLE_TRAP])
        with quiet_stdout():
            cells, hashes = counter.count([1, 2, 3])
        if cells * 2**hashes != 2:
            raise MissingToolError(
                f"the pyapproxmc loaded ({version}, {where}) counts {cells * 2**hashes} solutions of "
                f"(x1|x2)(-x1|x3)(x1), which has 2: it undercounts free variables. Fix: {FIX_APPROXMC}"
            )
    return module


def tool_versions() -> dict[str, str | None]:
    """The version and file of each SAT module as loaded (None: not installed); for ledgers and reports."""
    out = {}
    for name in ("pyganak", "pyapproxmc", "pycryptosat", "pyunigen"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            out[name] = None
            continue
        out[name] = str(getattr(module, "__version__", getattr(module, "VERSION", "unknown")))
    return out


def _flush_c_stdio() -> None:
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


@contextmanager
def quiet_stdout():
    """File descriptor 1 goes to /dev/null inside the block (C and C++ code that prints included).

    C's own buffer is flushed before the descriptor is restored, so nothing
    written inside surfaces later.
    """
    try:
        sys.stdout.flush()
    except (ValueError, OSError):
        pass
    _flush_c_stdio()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            try:
                yield
            finally:
                _flush_c_stdio()
                os.dup2(saved, 1)
    finally:
        os.close(saved)
