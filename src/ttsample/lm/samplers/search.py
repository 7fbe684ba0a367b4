"""Verifier-guided search and answer voting: the maximisers that reasoning systems compare against.

Not samplers of ``pi*``: each output is the response a rule picks, and its
law is whatever that rule makes of ``pi_ref`` and the verifier (reports call
them maximisers, as for best-of-n). On a step tree (``ttsample.lm.steps``)
they move a step at a time; on a token tree, a token at a time.

- ``sample_beam_search``: keep ``beams`` partial solutions; each unfinished
  one draws ``expansions`` next steps from ``pi_ref``; the candidates (new
  steps and the finished solutions kept) are ranked by the verifier, the best
  ``beams`` kept, until every kept one is finished; the output is the best.
- ``sample_dvts`` (diverse verifier tree search): ``trees`` independent
  searches of one beam each, which splits the budget into subtrees that do
  not compete; the output is the best of their solutions.
- ``sample_weighted_best_of_n``: ``candidates`` responses from ``pi_ref``,
  grouped by their extracted answer; the answer whose verifier scores sum
  highest wins, and the output is its best-scored response.
- ``sample_majority_vote`` (self-consistency): the same grouping, by count
  (ties to the answer drawn first); no verifier.

The verifier is the run's values (``oracle.log_values``: ``log V_hat`` at any
node, finished solutions included; a PRM reads every step of them), not the
task's reward, which is the ground truth a report measures accuracy by. (The
built-in values read at a finished response give its ``tau``, so with
``--values exact`` or ``heuristic`` the search does see the reward there:
pass a PRM, ``prm:DIR``, or values of one's own to keep them apart.) The
answer of a response is ``answer``'s last match in its text (a regular
expression; its first group if it has one) or, without ``answer``, the whole
stripped text; a response with no match votes for nothing. Ledger: tries =
responses or steps drawn, steps = steps decoded.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ...errors import ParameterError
from ...samplers.base import Progress, SampleResult, check_sample_count
from .base import Budget, lm_run

VOTE_BATCH = 1 << 12  # responses decoded per call by the voters


def _count(name: str, value) -> int:
    if not isinstance(value, (int, np.integer)) or value < 1:
        raise ParameterError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def _search(task, oracle, roots: int, beams: int, expansions: int, rng, ledger, progress, n: int) -> np.ndarray:
    """``roots`` independent beam searches from the root; the best finished solution of each. The searches are
    lists; the model and the verifier are asked for all of them at once, one round per step."""
    tree = task.tree
    kept = [[0] for _ in range(roots)]  # each search's beam, best first
    for depth in range(tree.depth + 1):
        open_ = [[v for v in beam if not tree.is_leaf(np.array([v]))[0]] for beam in kept]
        if not any(open_):
            break
        draws = beams * expansions if depth == 0 else expansions  # the root alone draws the whole first round
        owner = [r for r, nodes in enumerate(open_) for v in nodes for _ in range(draws)]
        parents = np.array([v for nodes in open_ for v in nodes for _ in range(draws)], dtype=np.int64)
        kids, _ = oracle.propose_child(parents, rng)
        ledger.steps += int(parents.size)
        ledger.record_tries(int(parents.size), int(parents.size), int(parents.size))
        pool = [[v for v in beam if v not in nodes] for beam, nodes in zip(kept, open_)]  # finished ones stay
        for r, kid in zip(owner, kids.tolist()):
            pool[r].append(kid)
        pool = [list(dict.fromkeys(p)) for p in pool]  # a step drawn twice is one candidate
        flat = np.array([v for p in pool for v in p], dtype=np.int64)
        score = oracle.log_values(flat)
        start = np.cumsum([0] + [len(p) for p in pool])
        kept = [[p[j] for j in np.argsort(-score[a:b], kind="stable")[:beams]]
                for p, a, b in zip(pool, start[:-1], start[1:])]
        if progress is not None:
            progress(n * (depth + 1) / (tree.depth + 1), n)
    return np.array([beam[0] for beam in kept], dtype=np.int64)


def sample_beam_search(task, oracle, n: int, rng: np.random.Generator, *, beams: int = 4, expansions: int = 4,
                       budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n`` outputs, each the best solution of a beam search (module docstring). ``params``: ``beams``,
    ``expansions``."""
    n, beams, expansions = check_sample_count(n), _count("beams", beams), _count("expansions", expansions)
    _check_verifier(oracle, "beam search")
    with lm_run(task, oracle, budget, progress) as run:
        leaves = _search(task, run.oracle, n, beams, expansions, rng, run.ledger, run.progress, n)
    return run.finish(SampleResult(np.empty(0, dtype=np.int64) if run.stopped else leaves, run.ledger,
                                   {"beams": beams, "expansions": expansions}))


def sample_dvts(task, oracle, n: int, rng: np.random.Generator, *, trees: int = 4, expansions: int = 4,
                budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n`` outputs, each the best of ``trees`` one-beam searches (module docstring). ``params``: ``trees``,
    ``expansions``."""
    n, trees, expansions = check_sample_count(n), _count("trees", trees), _count("expansions", expansions)
    _check_verifier(oracle, "DVTS")
    with lm_run(task, oracle, budget, progress) as run:
        found = _search(task, run.oracle, n * trees, 1, expansions, rng, run.ledger, run.progress, n)
        found = found.reshape(n, trees)
        score = run.oracle.log_values(found.ravel()).reshape(n, trees)
        best = found[np.arange(n), np.argmax(score, axis=1)]
    return run.finish(SampleResult(np.empty(0, dtype=np.int64) if run.stopped else best, run.ledger,
                                   {"trees": trees, "expansions": expansions}))


def answer_of(text: str, answer: str | None) -> str | None:
    """The answer a response gives (module docstring)."""
    if answer is None:
        return text.strip()
    found = list(re.finditer(answer, text))
    if not found:
        return None
    last = found[-1]
    return last.group(1) if last.re.groups else last.group(0)


def _vote(task, oracle, n: int, rng, candidates: int, answer: str | None, budget, progress, weighted: bool):
    n, k = check_sample_count(n), _count("candidates", candidates)
    if answer is not None:
        try:
            re.compile(answer)
        except re.error as exc:
            raise ParameterError(f"answer must be a regular expression, got {answer!r}: {exc}") from None
    out: list[int] = []
    votes: list[dict] = []
    per_batch = max(1, VOTE_BATCH // k)  # outputs decoded together; the budget is checked between batches
    with lm_run(task, oracle, budget, progress) as run:
        for first in range(0, n, per_batch):
            m = min(per_batch, n - first)
            leaves = task.sample_suffix(np.zeros(m * k, dtype=np.int64), rng).reshape(m, k)
            run.ledger.steps += int(task.tree.depth_of(leaves).sum())
            run.ledger.record_tries(m * k, m, m)
            score = (np.exp(run.oracle.log_values(leaves.ravel())).reshape(m, k) if weighted
                     else np.ones((m, k)))
            answers = [answer_of(t, answer) for t in task.text(leaves.ravel())]
            for i in range(m):
                tally: dict[str, float] = {}
                for j in range(k):
                    a = answers[i * k + j]
                    if a is not None:
                        tally[a] = tally.get(a, 0.0) + score[i, j]
                if tally:
                    won = max(tally, key=tally.get)  # ties: the answer drawn first (dicts keep insertion order)
                    mine = [j for j in range(k) if answers[i * k + j] == won]
                    out.append(int(leaves[i, max(mine, key=lambda j: score[i, j])]))
                else:  # no candidate gives an answer: the first one
                    won = None
                    out.append(int(leaves[i, 0]))
                votes.append({"answer": won, "support": float(tally.get(won, 0.0)) if won is not None else 0.0,
                              "candidates": [(int(leaf), float(w)) for leaf, w in zip(leaves[i], score[i])]})
            run.progress(len(out), n)
    return run.finish(SampleResult(np.array(out, dtype=np.int64), run.ledger, {"num_candidates": k, "answer": answer},
                                   {"votes": votes}))


def sample_weighted_best_of_n(task, oracle, n: int, rng: np.random.Generator, *, candidates: int = 8,
                              answer: str | None = None, budget: Budget | None = None,
                              progress: Progress | None = None) -> SampleResult:
    """``n`` outputs, each the answer with the largest summed verifier score among ``candidates`` responses.
    ``diagnostics["votes"]``: per output, the answer, its support (summed score, or count) and the candidates drawn, as
    (leaf handle, score) in draw order."""
    _check_verifier(oracle, "weighted best-of-n")
    return _vote(task, oracle, n, rng, candidates, answer, budget, progress, weighted=True)


def sample_majority_vote(task, oracle, n: int, rng: np.random.Generator, *, candidates: int = 8,
                         answer: str | None = None, budget: Budget | None = None,
                         progress: Progress | None = None) -> SampleResult:
    """``n`` outputs, each the most frequent answer among ``candidates`` responses (self-consistency)."""
    return _vote(task, oracle, n, rng, candidates, answer, budget, progress, weighted=False)


def selection_kl_bound(k: int) -> float:
    """``log k``: any rule that outputs one of ``k`` independent ``pi_ref`` draws has density ratio at most ``k``
    to ``pi_ref``, so its KL to the base is at most ``log k``."""
    return math.log(k)


def _check_verifier(oracle, what: str) -> None:
    if oracle is None:
        raise ParameterError(f"{what} ranks by a verifier: pass an LMOracle(task, values) (e.g. --values prm:DIR)")
