"""Samplers: one module per algorithm; each returns samples with their ledger.

``REGISTRY`` names every sampler with what a caller needs to know about it:
whether it needs the class F, the walk it runs (walks take ``steps`` and have
an exact law by transition matrix), its exact output law otherwise, and
whether it needs the flat oracle's promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import ParameterError
from .base import SampleResult
from .jvv import sample_jvv
from .lifted import LiftedWalk, sample_lifted
from .ttt import sample_learned_oracle, sample_mixture_rejection
from .uniform_rejection import sample_uniform_rejection
from .walk import ProposalWalk, SinclairJerrumWalk, sample_walk, sample_walk_boosted, sample_walk_proposal


def _jvv_law(oracle, info):
    from ..eval.exact_laws import jvv_output_law

    return jvv_output_law(oracle)[0]


def _uniform_rejection_law(oracle, info):
    from ..eval.exact_laws import uniform_rejection_output_law

    return uniform_rejection_output_law(oracle)[0]


@dataclass(frozen=True)
class SamplerEntry:
    sample: Callable  # sampler(oracle, n, rng, ...), or sampler(cls, oracle, n, rng, ...) when needs_class
    needs_class: bool = False
    walk: Callable | None = None  # (tree, info) -> the walk it ran, rebuilt from the parameters it reported
    exact_law: Callable | None = None  # (oracle, info) -> its output law on leaves (walks: from their walk)
    flat_promise: bool = False  # refuses every oracle but one whose promise bounds the leaves against flat


REGISTRY: dict[str, SamplerEntry] = {
    "jvv": SamplerEntry(sample_jvv, exact_law=_jvv_law),
    "walk": SamplerEntry(sample_walk, walk=lambda tree, info: SinclairJerrumWalk(tree, info["leaf_boost"])),
    "walk-boosted": SamplerEntry(sample_walk_boosted, walk=lambda tree, info: SinclairJerrumWalk(tree, info["leaf_boost"])),
    "walk-proposal": SamplerEntry(sample_walk_proposal, walk=lambda tree, info: ProposalWalk(tree, info["leaf_boost"])),
    "lifted": SamplerEntry(sample_lifted, walk=lambda tree, info: LiftedWalk(tree, info["leaf_hold"])),
    "uniform-rejection": SamplerEntry(sample_uniform_rejection, exact_law=_uniform_rejection_law, flat_promise=True),
    "mixture-rejection": SamplerEntry(sample_mixture_rejection, needs_class=True),
    "learned-oracle": SamplerEntry(sample_learned_oracle, needs_class=True),
}


def sampler_entry(name: str) -> SamplerEntry:
    if name not in REGISTRY:
        raise ParameterError(f"unknown sampler {name!r}; choose one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


# views by kind, for listings and checks
SAMPLERS = {name: e.sample for name, e in REGISTRY.items() if not e.needs_class}
CLASS_SAMPLERS = {name: e.sample for name, e in REGISTRY.items() if e.needs_class}
WALK_SAMPLERS = frozenset(name for name, e in REGISTRY.items() if e.walk is not None)
FLAT_PROMISE_SAMPLERS = frozenset(name for name, e in REGISTRY.items() if e.flat_promise)

__all__ = [
    "CLASS_SAMPLERS", "FLAT_PROMISE_SAMPLERS", "REGISTRY", "SAMPLERS", "WALK_SAMPLERS", "SampleResult",
    "SamplerEntry", "sample_jvv", "sample_learned_oracle", "sample_lifted", "sample_mixture_rejection",
    "sample_uniform_rejection", "sample_walk", "sample_walk_boosted", "sample_walk_proposal", "sampler_entry",
]
