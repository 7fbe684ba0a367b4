"""Every sampler of ttsample, lab, SAT and language model, as one row of one table.

A row says what a caller needs to know about a sampler, so that no caller
compares sampler names:

- ``needs``: what it samples from. ``oracle``: a tree's density oracle, called
  ``sample(oracle, n, rng, **options)`` (the lab's targets and CNF formulas);
  ``class``: the oracle and the class F the target belongs to,
  ``sample(target_class, oracle, n, rng, **options)``; ``decoder``: a generation task
  (``ttsample.lm.task.GenerationTask``), which draws responses from
  ``pi_ref``, with a value oracle when ``uses_values``,
  ``sample(task, oracle_or_None, n, rng, **options)``.
- what its output is: ``maximiser`` (a reward maximiser, not a sampler of the
  target); its exact output law where one is known (``walk``: the walk it ran,
  whose law the transition matrix gives; ``exact_law`` otherwise).
- what it reports: ``responses`` decoded per answer, ``kl`` to the base model
  (maximisers), a ``diagnostics_plot``; ``sample_prompts``, where it can decode
  several prompts in one batch.

``run`` (``ttsample.runs``) runs any row on a problem of its kind. Adding a
sampler is one module plus one ``register`` call; the command-line help, spec
validation and the README's table are read from here.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Callable

import numpy as np

from .errors import ParameterError
from .lm.samplers.action_rs import sample_action_rs
from .lm.samplers.aisp import sample_aisp, sample_aisp_prompts
from .lm.samplers.best_of_n import sample_best_of_n, sample_best_of_n_prompts
from .lm.samplers.mh import sample_mh
from .lm.samplers.outcome_rs import sample_outcome_rs
from .lm.samplers.smc import sample_smc, sample_smc_prompts
from .lm.samplers.search import (sample_beam_search, sample_dvts, sample_majority_vote, sample_weighted_best_of_n,
                                 selection_kl_bound)
from .lm.samplers.vgb import sample_vgb
from .samplers.jvv import log_acceptance_bound, sample_jvv
from .samplers.lifted import LiftedWalk, sample_lifted
from .samplers.ttt import sample_learned_oracle, sample_mixture_rejection
from .samplers.uniform_rejection import sample_uniform_rejection
from .samplers.walk import KERNELS, sample_walk, sample_walk_boosted, sample_walk_proposal

NEEDS = ("oracle", "class", "decoder")
PROBLEM_KINDS = {"tree": ("oracle", "class"), "formula": ("oracle",), "generation": ("decoder",)}
RUN_OPTIONS = ("progress", "twist")  # passed by run itself or fixed by the row, never a user's option


@dataclass(frozen=True)
class SamplerEntry:
    name: str
    sample: Callable
    needs: str  # oracle, class or decoder (module docstring)
    about: str  # one line: what it is, for help texts and the README's table
    uses_values: bool = False  # a decoder sampler that also reads V_hat through a value oracle
    maximiser: bool = False  # a reward maximiser: its output is not the target's law
    walk: Callable | None = None  # (tree, params) -> the walk it ran, rebuilt from the result's params
    # its exact output law: oracle rows (oracle, params) -> law on the leaves; decoder rows (ExactLaw, run) ->
    # (law over the ExactLaw's responses, mass lost at dead ends), or None where this run has none
    exact_law: Callable | None = None
    responses: Callable | None = None  # (result, n) -> responses decoded per answer (decoder rows)
    kl: Callable | None = None  # result -> {metric: value}: the KL to the base model a maximiser reports
    flat_promise: bool = False  # refuses every oracle but one whose promise bounds the leaves against flat
    expected_tries: Callable | None = None  # oracle -> expected tries per sample, where a closed form bounds it
    # its acceptance_rate is the share of pi_ref responses it accepts: Z in expectation, on a constraint
    rejects_responses: bool = False
    diagnostics_plot: Callable | None = None  # (result, path) -> writes a figure of the run
    options_of: Callable | None = None  # whose keyword-only parameters are its options (default: sample)
    sample_prompts: Callable | None = None  # (tasks, n, rng, **options) -> one result per task, decoded together

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ParameterError(f"a sampler needs one of {', '.join(NEEDS)}, got {self.needs!r}")

    def runs_on(self, kind: str) -> bool:
        return self.needs in PROBLEM_KINDS[kind] and not (kind == "formula" and self.flat_promise)

    def options(self) -> tuple[str, ...]:
        """The keyword options a caller may pass it."""
        params = inspect.signature(self.options_of or self.sample).parameters.values()
        return tuple(p.name for p in params if p.kind == p.KEYWORD_ONLY and p.name not in RUN_OPTIONS)

    def check_options(self, options: dict) -> None:
        unknown = sorted(set(options) - set(self.options()))
        if unknown:
            raise ParameterError(f"{self.name} has no option {', '.join(unknown)}; its options: "
                                 f"{', '.join(self.options()) or 'none'}")


REGISTRY: dict[str, SamplerEntry] = {}


def register(entry: SamplerEntry) -> SamplerEntry:
    """Add a sampler to the table (a name already taken is refused)."""
    if entry.name in REGISTRY:
        raise ParameterError(f"a sampler named {entry.name!r} is already registered")
    REGISTRY[entry.name] = entry
    return entry


def names(kind: str | None = None, *, needs: str | None = None) -> tuple[str, ...]:
    """The samplers that run on problems of ``kind`` (tree, formula, generation), or that need ``needs``."""
    return tuple(name for name, e in REGISTRY.items()
                 if (kind is None or e.runs_on(kind)) and (needs is None or e.needs == needs))


def sampler_entry(name: str, kind: str | None = None) -> SamplerEntry:
    """The row of ``name``; with ``kind``, refused unless it runs on problems of that kind."""
    if name not in REGISTRY:
        raise ParameterError(f"unknown sampler {name!r}; choose one of {', '.join(names(kind))}")
    entry = REGISTRY[name]
    if kind is not None and not entry.runs_on(kind):
        raise ParameterError(f"{name} does not run on a {kind} problem; choose one of {', '.join(names(kind))}")
    return entry


def markdown_table() -> str:
    """The table as Markdown: the README's list of samplers is this text (a test keeps the two equal)."""
    lines = ["| sampler | runs on | reads | output | exact output law | what it is |", "|---|---|---|---|---|---|"]
    for name, e in REGISTRY.items():
        kinds = ", ".join(kind for kind in PROBLEM_KINDS if e.runs_on(kind))
        reads = {"oracle": "the oracle", "class": "the oracle and the class F",
                 "decoder": "pi_ref" + (" and the values" if e.uses_values else "")}[e.needs]
        law = "by transition matrix" if e.walk else "closed form" if e.exact_law else "-"
        output = "reward maximiser" if e.maximiser else "sampler of the target"
        lines.append(f"| `{name}` | {kinds} | {reads} | {output} | {law} | {e.about} |")
    return "\n".join(lines) + "\n"


# --- exact laws and reports, read from what each sampler put in its result ---

def _jvv_law(oracle, params):
    from .eval.exact_laws import jvv_output_law

    return jvv_output_law(oracle)[0]


def _uniform_rejection_law(oracle, params):
    from .eval.exact_laws import uniform_rejection_output_law

    return uniform_rejection_output_law(oracle)[0]


def _best_of_n_law(exact, run):
    return exact.best_of_n(int(run.result.params["num_candidates"])), 0.0


def _action_rs_law(exact, run):
    """ActionLevelRS's exact output law (``descent_log_probs`` on the run's own oracle, the trie grown), over the
    ExactLaw's responses, and the mass lost where a descent meets children that all weigh zero; None unless its
    values are a fixed function of the node (then the law is the run's) and its actions are tokens."""
    from .eval.exact_laws import descent_log_probs

    task = run.task
    if not run.oracle.deterministic or task.step_rule is not None:  # steps are drawn, never listed: no descent law
        return None
    task.grow_support(1 << 20)
    leaves = task.tree.leaf_nodes()
    reached = np.exp(descent_log_probs(run.oracle)[task.tree.leaf_index(leaves)])
    law = np.zeros(exact.pi_star.size)
    for tok, m in zip(task.tokens(leaves), reached):
        law[exact.index[tok]] += m
    dead = 1.0 - float(reached.sum())
    return law, dead if dead > 1e-12 else 0.0  # below that, the rounding of H float64 normalisations


def best_of_n_kl_bound(k: int) -> float:
    """``log k - (k - 1) / k``: the bound on the KL of best-of-k's output law to the base (ALGORITHMS.md §8)."""
    return math.log(k) - (k - 1) / k


def _mh_responses(result, n):
    p = result.params
    steps = p["burn_in"] + p["thin"] * (-(-n // p["chains"]) - 1)
    return (result.diagnostics["init_tries"] + p["chains"] * steps) / n


def _plot_aisp(result, path):
    from .eval.plots import plot_aisp_diagnostics

    plot_aisp_diagnostics(result, path)


def _candidates(result, n) -> float:
    return float(result.params["num_candidates"])


def _selection_kl(result) -> dict:
    return {"kl_bound": selection_kl_bound(int(result.params["num_candidates"]))}


def _node_walk(tree, params):
    """The walk sample_walk ran, from the kernel and leaf boost it reported."""
    return KERNELS[params["kernel"]](tree, params["leaf_boost"])


for _entry in (
    SamplerEntry("jvv", sample_jvv, "oracle", "JVV descent with rejection: exact, needs normalised masses",
                 exact_law=_jvv_law,
                 expected_tries=lambda oracle: math.exp(log_acceptance_bound(oracle.tree, oracle.log_rho))),
    SamplerEntry("walk", sample_walk, "oracle", "the Sinclair–Jerrum random walk with restarts",
                 walk=_node_walk),
    SamplerEntry("walk-boosted", sample_walk_boosted, "oracle", "the Sinclair–Jerrum walk with leaf boost K = 2n",
                 walk=_node_walk, options_of=sample_walk),
    SamplerEntry("walk-proposal", sample_walk_proposal, "oracle",
                 "the boosted walk drawing one child per step from the proposal", walk=_node_walk,
                 options_of=sample_walk),
    SamplerEntry("lifted", sample_lifted, "oracle", "a lifted (non-reversible) walk",
                 walk=lambda tree, params: LiftedWalk(tree, params["leaf_hold"])),
    SamplerEntry("uniform-rejection", sample_uniform_rejection, "oracle",
                 "uniform leaves accepted by the flat promise (needs the flat oracle)",
                 exact_law=_uniform_rejection_law, flat_promise=True),
    SamplerEntry("mixture-rejection", sample_mixture_rejection, "class",
                 "rejection from the class's mixture (for a small class F)"),
    SamplerEntry("learned-oracle", sample_learned_oracle, "class",
                 "a test-time learned oracle over the class F (for a small class F)"),
    SamplerEntry("vgb", sample_vgb, "decoder", "value-guided sampling with backtracking (VGB)", uses_values=True),
    SamplerEntry("action-rs", sample_action_rs, "decoder",
                 "token-level guided decoding by the values (ActionLevelRS); its law is exact for fixed values",
                 uses_values=True, exact_law=_action_rs_law),
    SamplerEntry("outcome-rs", sample_outcome_rs, "decoder", "rejection of pi_ref responses by tau (OutcomeLevelRS)",
                 responses=lambda result, n: result.ledger.tries / n, rejects_responses=True),
    SamplerEntry("best-of-n", sample_best_of_n, "decoder", "the best of k pi_ref responses", maximiser=True,
                 exact_law=_best_of_n_law, responses=_candidates,
                 kl=lambda result: {"kl_bound": best_of_n_kl_bound(int(result.params["num_candidates"]))},
                 sample_prompts=sample_best_of_n_prompts),
    SamplerEntry("smc", partial(sample_smc, twist=False), "decoder", "sequential Monte Carlo, weighted particles",
                 responses=lambda result, n: float(result.params["particles"]), sample_prompts=sample_smc_prompts),
    SamplerEntry("twisted-smc", partial(sample_smc, twist=True), "decoder", "SMC twisted by the values",
                 uses_values=True, responses=lambda result, n: float(result.params["particles"])),
    SamplerEntry("mh", sample_mh, "decoder", "Metropolis–Hastings over suffix regenerations",
                 responses=_mh_responses),
    SamplerEntry("beam-search", sample_beam_search, "decoder",
                 "step-level beam search ranked by the values (a PRM): beams kept, expansions per beam",
                 uses_values=True, maximiser=True),
    SamplerEntry("dvts", sample_dvts, "decoder",
                 "diverse verifier tree search: independent one-beam searches, the best by the values",
                 uses_values=True, maximiser=True),
    SamplerEntry("weighted-best-of-n", sample_weighted_best_of_n, "decoder",
                 "the answer with the largest summed verifier score among k pi_ref responses", uses_values=True,
                 maximiser=True, responses=_candidates, kl=_selection_kl),
    SamplerEntry("majority-vote", sample_majority_vote, "decoder",
                 "self-consistency: the most frequent answer among k pi_ref responses", maximiser=True,
                 responses=_candidates, kl=_selection_kl),
    SamplerEntry("aisp", sample_aisp, "decoder", "adaptive importance sampling on pre-logits (AISP)", maximiser=True,
                 responses=lambda result, n: float(result.params["candidates"] * result.params["iterations"]),
                 kl=lambda result: {"kl_drift": float(np.mean(result.diagnostics["rounds"]["kl"]))},
                 diagnostics_plot=_plot_aisp, sample_prompts=sample_aisp_prompts),
):
    register(_entry)


class _SampleFunctions(Mapping):
    """name -> sample function of the rows that need ``needs``, read from the table at each use (so a row
    registered later is in it)."""

    def __init__(self, needs: str):
        self.needs = needs

    def __getitem__(self, name: str) -> Callable:
        if name not in REGISTRY or REGISTRY[name].needs != self.needs:
            raise KeyError(name)
        return REGISTRY[name].sample

    def __iter__(self):
        return iter(names(needs=self.needs))

    def __len__(self) -> int:
        return len(names(needs=self.needs))


SAMPLERS = _SampleFunctions("oracle")  # the samplers of a tree's oracle: sample(oracle, n, rng, **options)
CLASS_SAMPLERS = _SampleFunctions("class")  # sample(target_class, oracle, n, rng, **options)
