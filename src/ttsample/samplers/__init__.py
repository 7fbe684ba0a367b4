"""Samplers: one module per algorithm; each returns samples with their ledger."""

from .base import SampleResult
from .jvv import sample_jvv
from .lifted import sample_lifted
from .ttt import sample_learned_oracle, sample_mixture_rejection
from .uniform_rejection import sample_uniform_rejection
from .walk import sample_walk, sample_walk_boosted

SAMPLERS = {
    "jvv": sample_jvv,
    "walk": sample_walk,
    "walk-boosted": sample_walk_boosted,
    "lifted": sample_lifted,
    "uniform-rejection": sample_uniform_rejection,
}
# samplers that refuse every oracle but one whose promise bounds the leaves against flat (oracle.flat_promise)
FLAT_PROMISE_SAMPLERS = frozenset({"uniform-rejection"})

# samplers that also know the class F the target belongs to: sampler(cls, oracle, n, rng, ...)
CLASS_SAMPLERS = {
    "mixture-rejection": sample_mixture_rejection,
    "learned-oracle": sample_learned_oracle,
}

__all__ = ["CLASS_SAMPLERS", "FLAT_PROMISE_SAMPLERS", "SAMPLERS", "sample_learned_oracle", "sample_mixture_rejection", "SampleResult", "sample_jvv", "sample_lifted", "sample_uniform_rejection", "sample_walk", "sample_walk_boosted"]
