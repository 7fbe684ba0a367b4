"""Samplers of a tree's density oracle: one module per algorithm; each returns samples with their ledger.

The table of every sampler, these and the language-model ones, with what a
caller needs to know about each, is ``ttsample.registry``.
"""

from .base import SampleResult
from .jvv import sample_jvv
from .lifted import sample_lifted
from .ttt import sample_learned_oracle, sample_mixture_rejection
from .uniform_rejection import sample_uniform_rejection
from .walk import sample_walk, sample_walk_boosted, sample_walk_proposal

__all__ = [
    "SampleResult", "sample_jvv", "sample_learned_oracle", "sample_lifted", "sample_mixture_rejection",
    "sample_uniform_rejection", "sample_walk", "sample_walk_boosted", "sample_walk_proposal",
]
