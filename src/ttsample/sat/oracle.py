"""A CNF formula's solutions as a counting oracle on a lazily grown binary trie.

The tree: level ``i`` fixes variable ``order[i]`` of the sampling set (action
0: false, 1: true); a node is a partial assignment, a leaf a complete
assignment of the sampling set, and ``mu*(v)`` is the number of (projected)
solutions extending ``v``, divided by the root's count. This is the classical
self-reducible tree of counting-to-sampling (Jerrum, Valiant & Vazirani 1986).

Answers (``log_weight``), per node, computed once and kept by handle for the
life of the oracle (so the top of the tree is paid once across samples and
across sampler calls); a node's two children are always computed together:

- a child's count is 0 when CryptoMiniSat refutes it under the partial
  assignment, and then its sibling's count is the parent's (no counter call);
  the child that agrees with the parent's witness needs no check at all;
- a subtree whose count is at most ``enumerate_below`` is enumerated once
  (CryptoMiniSat with blocking clauses on the sampled variables below it) and
  every count in it is read off the enumeration;
- otherwise the counter is asked, on the formula simplified by the partial
  assignment; with the exact counter (Ganak) only one child is counted and the
  other is ``count(parent) - count(child)``;
- leaves are always exact: from an enumeration or a satisfiability check.

Guarantee: ``log_rho`` is the counter's (0 for Ganak; ``log(1 + epsilon)`` for
ApproxMC, for each count with probability ``1 - delta``, see
``counters.ApproxMCCounter``). Conditionals ``mu(c)/mu(v)`` are exact wherever
both counts are exact (enumerated, refuted, or Ganak's). Masses are normalised
by the root count (with ApproxMC by ``(1 + eps) * count_hat(root)`` unless the
root count is exact, so that leaf masses ``1/Z_norm`` never exceed ``1/Z``:
JVV's acceptance stays at most 1 and its output law uniform).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import OracleBoundError, ParameterError
from ..ledger import Ledger
from ..oracles.protocol import Oracle
from ..trees.trie import TokenTrie
from .cnf import CNF, residual
from .counters import GanakCounter, SatCosts, SatSolver

DEFAULT_ENUMERATE_BELOW = 128  # chosen by measurement: the fastest of 16 to 4096 at 1000 samples on every family (docs/sat.md)
ORDERS = ("file", "occurrence")


def variable_order(cnf: CNF, how: str = "file") -> np.ndarray:
    """The sampled variables in the order the tree fixes them.

    ``file``: the sampling set's order in the file (``1..n`` without ``c ind``).
    ``occurrence``: most frequent first (the number of clauses a variable occurs
    in; ties in the file's order), a static version of the classical branching
    heuristic: fixing the most constrained variables first makes the residual
    formulas simplify, and subtrees become small (enumerable) sooner.
    """
    sampled = np.asarray(cnf.sampled, dtype=np.int64)
    if how == "file":
        return sampled
    if how == "occurrence":
        occ = cnf.occurrences()[sampled]
        return sampled[np.argsort(-occ, kind="stable")]
    raise ParameterError(f"unknown variable order {how!r}; choose one of {', '.join(ORDERS)}")


@dataclass
class Enumeration:
    """Every projected solution below a node at depth ``depth``: rows sorted lexicographically over ``order[depth:]``."""

    depth: int
    rows: np.ndarray


@dataclass
class Node:
    count: int  # solutions below (estimated with ApproxMC, unless exact)
    exact: bool
    values: np.ndarray | None = None  # the partial assignment (bool per level), kept on nodes outside enumerations
    witness: np.ndarray | None = None  # a solution below (bool per level), on nodes outside enumerations
    enum: Enumeration | None = None  # the enumeration this node's subtree is read from
    lo: int = 0
    hi: int = 0
    kids: list | None = field(default=None)  # the two children's Nodes, once computed


class CountingOracle(Oracle):
    """``log mu_hat(v) = log(count below v) - log Z_norm`` on the formula's trie (see the module docstring)."""

    normalised = True

    def __init__(self, cnf: CNF, counter=None, *, order: str | np.ndarray = "file",
                 enumerate_below: int | None = DEFAULT_ENUMERATE_BELOW):
        self.cnf = cnf
        self.counter = counter if counter is not None else GanakCounter()
        self.name = self.counter.name
        self.log_rho = float(self.counter.log_rho)
        self.order = variable_order(cnf, order) if isinstance(order, str) else np.asarray(order, dtype=np.int64)
        if sorted(self.order.tolist()) != sorted(cnf.sampled):
            raise ParameterError("a variable order must list every sampled variable once")
        self.order_name = order if isinstance(order, str) else "custom"
        if enumerate_below is None:
            enumerate_below = DEFAULT_ENUMERATE_BELOW
        if not isinstance(enumerate_below, (int, np.integer)) or enumerate_below < 0:
            raise ParameterError(f"enumerate_below must be an integer >= 0, got {enumerate_below!r}")
        self.enumerate_below = int(enumerate_below)
        self.n = int(self.order.size)
        self.tree = TokenTrie(2, self.n, eos=None)
        self.sat_costs = SatCosts()
        self.costs = Ledger()  # cache_hits: distinct nodes answered with no new tool call; cache_misses: with one
        self.solver = SatSolver(cnf, self.sat_costs)
        sat, solution = self.solver.solve([])
        if not sat:
            raise ParameterError(f"{cnf.source}: the formula is unsatisfiable (CryptoMiniSat); there is nothing to sample")
        root = Node(0, True, values=np.zeros(0, dtype=bool), witness=self._witness(solution))
        root.count, root.exact = self._count(root, 0)
        self.nodes: dict[int, Node] = {0: root}
        self.root_count = root.count
        self.log_norm = math.log(root.count) + (0.0 if root.exact else self.log_rho)

    # -- answers ---------------------------------------------------------------------------------

    def log_weight(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        flat = ids.ravel()
        out = np.empty(flat.size)
        for i, h in enumerate(flat.tolist()):
            c = self.node(h).count
            out[i] = math.log(c) - self.log_norm if c > 0 else -math.inf
        return out.reshape(ids.shape)

    def count(self, h: int) -> int:
        """The (estimated) number of projected solutions below node ``h``."""
        return self.node(h).count

    def node(self, h: int) -> Node:
        """The record of node ``h``, computing it (and its unknown ancestors) if needed."""
        rec = self.nodes.get(h)
        if rec is not None:
            return rec
        chain = [h]
        parent = int(self.tree.parent(h))
        while parent not in self.nodes:
            chain.append(parent)
            parent = int(self.tree.parent(parent))
        for v in reversed(chain):
            p = self.nodes[int(self.tree.parent(v))]
            calls = self._tool_calls()
            if p.kids is None:
                self._expand(p, int(self.tree.depth_of(v)) - 1)
            self.nodes[v] = p.kids[int(self.tree.action(v))]
            if self._tool_calls() > calls:
                self.costs.cache_misses += 1
            else:
                self.costs.cache_hits += 1
        return self.nodes[h]

    def _tool_calls(self) -> int:
        c = self.sat_costs
        return c.counter_calls + c.sat_calls + c.enumerations

    def assignment(self, leaves: np.ndarray) -> np.ndarray:
        """Each leaf's values of the sampled variables, as a (k, n) bool array with columns in ``self.order``."""
        paths = self.tree.path(np.asarray(leaves, dtype=np.int64))
        return np.array(paths, dtype=bool).reshape(len(paths), self.n)

    def literals(self, leaves: np.ndarray) -> list[list[int]]:
        """Each leaf as DIMACS literals of the sampled variables, by increasing variable number."""
        values = self.assignment(leaves)
        by_var = np.argsort(self.order)
        signed = np.where(values[:, by_var], 1, -1) * self.order[by_var]
        return signed.tolist()

    # -- computing counts ------------------------------------------------------------------------

    def _witness(self, solution) -> np.ndarray:
        return np.array([bool(solution[v]) for v in self.order.tolist()], dtype=bool)

    def _lits(self, values: np.ndarray) -> list[int]:
        d = values.size
        return np.where(values, self.order[:d], -self.order[:d]).tolist()

    def _count(self, node: Node, depth: int) -> tuple[int, bool]:
        res = residual(self.cnf, self.order[:depth], node.values)
        key = zlib.crc32(np.packbits(node.values).tobytes(), depth)  # the node's own: the same in every run
        return self.counter.count(res, key, self.sat_costs)

    def _should_enumerate(self, p: Node) -> bool:
        """Enumerate ``p``'s subtree rather than count below it: when its count (an estimate: times rho) is at most ``enumerate_below``."""
        c = p.count * (1.0 if p.exact else math.exp(self.log_rho))
        return c <= self.enumerate_below + 1e-9

    def _expand(self, p: Node, depth: int) -> None:
        """Compute both children of ``p`` (at ``depth``), the cheapest way available."""
        self.sat_costs.nodes_answered += 2
        if p.count == 0:
            p.kids = [Node(0, True), Node(0, True)]
            return
        if p.enum is None and self._should_enumerate(p):
            self._enumerate(p, depth)
        if p.enum is not None:
            p.kids = self._split(p, depth)
            self.sat_costs.by_enumeration += 2
            return
        w = int(p.witness[depth])  # the child that agrees with p's witness has a solution
        o = 1 - w
        values_w = np.append(p.values, bool(w))
        values_o = np.append(p.values, bool(o))
        sat, solution = self.solver.solve(self._lits(values_o))
        kids: list[Node | None] = [None, None]
        if not sat:
            kids[o] = Node(0, True)
            kids[w] = Node(p.count, p.exact, values_w, p.witness)
            self.sat_costs.by_unsat_sibling += 1
        elif depth + 1 == self.n:  # both leaves are solutions
            kids[o] = Node(1, True, values_o, self._witness(solution))
            kids[w] = Node(1, True, values_w, p.witness)
        else:
            kids[o] = Node(0, True, values_o, self._witness(solution))
            kids[w] = Node(0, True, values_w, p.witness)
            kids[o].count, kids[o].exact = self._count(kids[o], depth + 1)
            if self.counter.exact and p.exact:
                kids[w].count = p.count - kids[o].count
                self.sat_costs.by_subtraction += 1
                if kids[w].count <= 0 or kids[o].count <= 0:
                    raise OracleBoundError(
                        f"the exact counter is inconsistent: {p.count} solutions below a node, {kids[o].count} "
                        "below one child, yet both children have a solution"
                    )
            else:
                kids[w].count, kids[w].exact = self._count(kids[w], depth + 1)
        p.kids = kids

    def _enumerate(self, p: Node, depth: int) -> None:
        cap = max(self.enumerate_below, int(math.ceil(p.count * (1.0 if p.exact else math.exp(self.log_rho)))))
        rows = self.solver.enumerate(self._lits(p.values), self.order[depth:], cap)
        if rows is None:
            self.sat_costs.enumerations_abandoned += 1
            return
        if rows.shape[0] == 0 or (p.exact and rows.shape[0] != p.count):
            raise OracleBoundError(
                f"the counter and the enumeration disagree: {p.count} solutions counted below a node, "
                f"{rows.shape[0]} enumerated"
            )
        rows = rows[np.lexsort(rows.T[::-1])] if rows.shape[1] else rows
        p.enum, p.lo, p.hi = Enumeration(depth, rows), 0, rows.shape[0]

    def _split(self, p: Node, depth: int) -> list[Node]:
        col = depth - p.enum.depth
        zeros = int(np.searchsorted(p.enum.rows[p.lo : p.hi, col], 1))
        mid = p.lo + zeros
        return [Node(mid - p.lo, True, enum=p.enum, lo=p.lo, hi=mid),
                Node(p.hi - mid, True, enum=p.enum, lo=mid, hi=p.hi)]

    def stats(self) -> dict:
        return {**self.sat_costs.as_dict(), "root_count": int(self.root_count),
                "root_count_exact": self.nodes[0].exact,
                "enumerate_below": self.enumerate_below,
                "variable_order": self.order_name, "sampled_variables": self.n, **self.counter.describe()}
