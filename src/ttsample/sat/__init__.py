"""Uniform solutions of SAT formulas from a model counter: the counting-to-sampling reduction on real CNF files.

``read_cnf`` parses DIMACS (plain or gzipped, with a ``c ind`` sampling set);
``CountingOracle`` turns a formula into an oracle on a lazily grown binary trie
(Ganak exact, ApproxMC approximate; CryptoMiniSat for checks and enumeration);
``sample_cnf`` runs one of the lab's samplers on it. The tools are the optional
extra ``ttsample[sat]``; nothing here imports them until it is used.
"""

from .cnf import CNF, parse_dimacs, read_cnf
from .counters import COUNTERS, ApproxMCCounter, GanakCounter, SatCosts, make_counter
from .oracle import DEFAULT_ENUMERATE_BELOW, ORDERS, CountingOracle, variable_order
from .run import SAT_SAMPLERS, SatRun, sample_cnf

__all__ = [
    "CNF", "COUNTERS", "DEFAULT_ENUMERATE_BELOW", "ORDERS", "SAT_SAMPLERS", "ApproxMCCounter", "CountingOracle",
    "GanakCounter", "SatCosts", "SatRun", "make_counter", "parse_dimacs", "read_cnf", "sample_cnf", "variable_order",
]
