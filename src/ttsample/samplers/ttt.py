"""Test-time training over a bounded class F: samplers whose cost does not grow like n**2 when |F| is small.

Our constructions (ALGORITHMS.md §5; the paper's algorithm is not available).
Both keep the version space V ⊆ F of members consistent with every answer so
far (exact at leaves, within ``rho`` at internal nodes); the true target is
always in V, and if V ever empties the class was wrong and they raise.

- ``sample_mixture_rejection`` (exact): draw ``x`` from the uniform mixture
  ``q`` of V (free), ask the oracle ``mu*(x)`` (one leaf query), accept with
  probability ``mu*(x) / (|V| q(x))`` (<= 1 since ``mu*`` is in V), and drop
  every member with ``nu(x) != mu*(x)``. Each round is a rejection step for a
  fixed V, so the output law is exactly ``mu*``; expected rounds (one leaf
  query each) per sample at most ``|F|`` whatever the depth, and 1 once V
  has collapsed. Proposals are asked in batches, so a run may also ask
  proposals it never tests (thinned away, or left over): queries >= rounds.
- ``sample_learned_oracle`` (exact; also learns from internal answers): before proposing, descend the
  tree by V's mixture and ask the oracle at the children on the path where
  V's members disagree by more than ``rho**2`` (an answer there must rule some
  out), so internal answers teach V too; then propose from V's mixture and
  accept with the sharpened constant
  ``B = min(|V|, max_x |V| max_F nu(x) / sum_V nu(x))`` in place of ``|V|``
  (still >= ``mu*(x) / q(x)``). Once V agrees, every proposal is accepted.

Both report the cost of their first sample, total and distinct queries from a
fresh cache (``diagnostics["first_sample_queries"]``, ``diagnostics["first_sample_distinct"]``),
beside the ledger's totals, so amortisation is visible.
"""

from __future__ import annotations

import numpy as np

from ..errors import InconsistentClassError, ParameterError
from ..ledger import Ledger
from ..oracles.counted import CountedOracle
from ..problems.classes import TargetClass
from .base import Progress, SampleResult, check_budget, check_sample_count

TOLERANCE = 1e-9  # relative tolerance when comparing a member's mass with an exact answer
MAX_BATCH = 1 << 16


def _mismatch(member_log: np.ndarray, answer_log: np.ndarray, log_rho: float) -> np.ndarray:
    """True where a member's log-mass cannot be the truth given the answer (bound ``log_rho``)."""
    both_zero = np.isneginf(member_log) & np.isneginf(answer_log)
    with np.errstate(invalid="ignore"):
        gap = np.abs(member_log - answer_log)
    return ~both_zero & ~(gap <= log_rho + TOLERANCE)


class VersionSpace:
    """The members of F consistent with every answer so far, with their mixture's leaf masses."""

    def __init__(self, target_class: TargetClass, log_rho: float):
        self.target_class = target_class
        self.log_rho = log_rho
        self.alive = np.ones(target_class.size, dtype=bool)
        self.leaf_p = np.exp(target_class.leaf_log_mass)  # (|F|, L)
        self.cdf = np.cumsum(self.leaf_p, axis=1)
        self.cdf /= self.cdf[:, -1:]
        self.max_all = self.leaf_p.max(axis=0)  # max over all of F, for the sharpened bound
        self._resum()

    @property
    def count(self) -> int:
        return int(self._count)

    def _resum(self) -> None:
        self._count = int(self.alive.sum())
        self._summed_at = self._count
        self.leaf_sum = self.leaf_p[self.alive].sum(axis=0)

    def _drop(self, dead: np.ndarray, where: str, answer: float) -> None:
        if not dead.any():
            return
        if dead.sum() == self._count:
            raise InconsistentClassError(
                f"every member of the class contradicts the oracle's answer log mu_hat = {answer:.6g} at {where}: "
                "the target is not in this class (or the oracle breaks its error bound rho)"
            )
        idx = np.flatnonzero(self.alive)[dead]
        self.alive[idx] = False
        self._count -= idx.size
        if self._count <= self._summed_at // 2:
            self._resum()  # exact sums now and then, so subtraction errors never accumulate
        else:
            self.leaf_sum = np.maximum(self.leaf_sum - self.leaf_p[idx].sum(axis=0), 0.0)

    def observe(self, node_ids: np.ndarray, answers: np.ndarray) -> None:
        """Drop the members inconsistent with the oracle's answers at these nodes."""
        node_ids = np.asarray(node_ids).ravel()
        at_leaf = self.target_class.tree.is_leaf(node_ids)
        for v, a, leaf in zip(node_ids, np.asarray(answers).ravel(), at_leaf):
            members = self.target_class.log_mass[self.alive, v]
            bound = 0.0 if leaf else self.log_rho
            self._drop(_mismatch(members, a, bound), f"node {int(v)}", float(a))

    def would_change(self, leaf_idx: np.ndarray, answers: np.ndarray) -> np.ndarray:
        """For each proposal, whether its (exact leaf) answer would rule out a live member."""
        members = self.target_class.leaf_log_mass[self.alive][:, leaf_idx]  # (|V|, m)
        return _mismatch(members, answers[None, :], 0.0).any(axis=0)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        """``m`` leaf indices from the uniform mixture of V (free: the members are known)."""
        members = rng.choice(np.flatnonzero(self.alive), size=m)
        u = rng.random(m)
        out = np.empty(m, dtype=np.int64)
        for i in np.unique(members):
            rows = members == i
            out[rows] = np.searchsorted(self.cdf[i], u[rows], side="right")
        return out

    def bound(self, sharpened: bool) -> float:
        """A constant ``B >= max_x mu*(x) / q(x)`` over the support of V's mixture."""
        if not sharpened:
            return float(self._count)
        support = self.leaf_sum > 0
        ratio = self._count * self.max_all[support] / self.leaf_sum[support]
        return float(min(self._count, ratio.max()))

    def children_spread(self, v: int) -> tuple[np.ndarray, np.ndarray]:
        """Children of ``v``, and their mixture masses over V, and whether V disagrees there by > rho**2."""
        children = self.target_class.tree.children(np.array([v]))[0]
        log_m = self.target_class.log_mass[self.alive][:, children]  # (|V|, b)
        top, low = log_m.max(axis=0), log_m.min(axis=0)
        with np.errstate(invalid="ignore"):
            disagree = (np.isneginf(low) & np.isfinite(top)) | (top - low > 2 * self.log_rho + TOLERANCE)
        return children, np.exp(log_m).mean(axis=0), disagree


def thin(rng: np.random.Generator, old_sum: np.ndarray, new_sum: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Which pending proposals ``x``, drawn from the mixture of the old V, to keep now that V has shrunk.

    ``old_sum`` and ``new_sum`` are the members' summed leaf masses before and
    after. V only loses members, so ``new_sum <= old_sum``; keeping ``x`` with
    probability ``new_sum(x) / old_sum(x)`` turns a draw from ``old_sum``
    (normalised) into one from ``new_sum``: P(draw x and keep it) ∝ old_sum(x) * new_sum(x) / old_sum(x) = new_sum(x).
    The kept proposals are then independent draws from the new V's mixture.
    """
    return rng.random(x.size) * old_sum[x] < new_sum[x]


def _probe(vs: VersionSpace, oracle: CountedOracle, rng: np.random.Generator) -> None:
    """One learning descent: follow V's mixture, asking where V's members disagree."""
    v = 0
    for _ in range(vs.target_class.tree.depth - 1):  # children down to depth n-1 are internal
        children, _, disagree = vs.children_spread(v)
        if disagree.any():
            asked = children[disagree]
            vs.observe(asked, oracle.log_weight(asked))
        if vs.count == 1:
            return
        children, mass, _ = vs.children_spread(v)
        v = int(rng.choice(children, p=mass / mass.sum()))


def _sample_class(
    target_class: TargetClass, oracle, n_samples: int, rng: np.random.Generator, *, learn: bool,
    max_queries: float | None, progress: Progress | None,
) -> SampleResult:
    n_samples = check_sample_count(n_samples)
    if oracle.tree != target_class.tree:
        raise ParameterError(f"the oracle's tree {oracle.tree} is not the class's tree {target_class.tree}")
    ledger = Ledger()
    counted = CountedOracle(oracle, ledger)
    vs = VersionSpace(target_class, oracle.log_rho)
    leaf_node = target_class.tree.leaf_nodes()  # leaf index -> node
    out: list[np.ndarray] = []
    got, batch, first = 0, 1, {}  # first: the first sample's cost, as a one-query-at-a-time run pays it
    with ledger.timed():
        while got < n_samples:
            if learn and vs.count > 1:
                _probe(vs, counted, rng)
            # proposals a batch may use: about need * bound; more would be drawn from a V about to change
            cap = np.ceil((n_samples - got) * vs.bound(sharpened=learn))
            m = int(max(1, min(MAX_BATCH, cap, np.inf if vs.count == 1 else batch)))
            x = vs.sample(rng, m)
            before, distinct_before = ledger.queries_total, ledger.queries_distinct
            drawn, was_cached = x, counted.cached(leaf_node[x])  # for the first sample's distinct queries
            answers = counted.log_weight(leaf_node[x])
            position = np.arange(m)  # in the batch: the queries a sequential run would have made so far
            changed, unused = False, []
            while x.size and got < n_samples:
                bound = vs.bound(sharpened=learn)
                changes = vs.would_change(x, answers)
                k = int(np.argmax(changes)) + 1 if changes.any() else x.size  # rounds run with this V
                log_accept = np.log(vs.count / bound) + answers[:k] - np.log(vs.leaf_sum[x[:k]])
                accept = np.log(rng.random(k)) < log_accept
                if not first and accept.any():
                    p = int(position[np.argmax(accept)]) + 1  # the first sample came with the batch's p-th query
                    first = {"first_sample_queries": before + p, "first_sample_distinct": distinct_before +
                             np.unique(drawn[:p][~was_cached[:p]]).size}
                take = x[:k][accept][: n_samples - got]
                out.append(take)
                got += take.size
                ledger.record_tries(k, int(accept.sum()), take.size)
                if not changes.any():
                    break
                changed = True
                old_sum = vs.leaf_sum.copy()
                vs.observe(leaf_node[x[k - 1 : k]], answers[k - 1 : k])
                keep = thin(rng, old_sum, vs.leaf_sum, x[k:])
                unused.append((x[k:][~keep], answers[k:][~keep]))
                x, answers, position = x[k:][keep], answers[k:][keep], position[k:][keep]
            unused.append((x, answers))
            for ux, ua in unused:  # answers teach even when their proposals were not used
                vs.observe(leaf_node[ux], ua)
            batch = 1 if changed else min(2 * batch, MAX_BATCH)
            check_budget(ledger, max_queries, "learned-oracle" if learn else "mixture-rejection")
            if progress is not None:
                progress(got, n_samples)
    return SampleResult(np.concatenate(out), ledger,
                        diagnostics={**first, "final_version_space": vs.count, "class_size": target_class.size})


def sample_mixture_rejection(target_class: TargetClass, oracle, n_samples: int, rng: np.random.Generator, *,
                             max_queries: float | None = None, progress: Progress | None = None) -> SampleResult:
    """Exact samples by mixture rejection with elimination over the class (leaf queries only)."""
    return _sample_class(target_class, oracle, n_samples, rng, learn=False, max_queries=max_queries, progress=progress)


def sample_learned_oracle(target_class: TargetClass, oracle, n_samples: int, rng: np.random.Generator, *,
                          max_queries: float | None = None, progress: Progress | None = None) -> SampleResult:
    """Exact samples from the version space sharpened by internal answers (test-time training)."""
    return _sample_class(target_class, oracle, n_samples, rng, learn=True, max_queries=max_queries, progress=progress)
