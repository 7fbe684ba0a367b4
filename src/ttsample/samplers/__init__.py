"""Samplers: one module per algorithm; each returns samples with their ledger."""

from .base import SampleResult
from .jvv import sample_jvv
from .lifted import sample_lifted
from .walk import sample_walk, sample_walk_boosted

SAMPLERS = {
    "jvv": sample_jvv,
    "walk": sample_walk,
    "walk-boosted": sample_walk_boosted,
    "lifted": sample_lifted,
}

__all__ = ["SAMPLERS", "SampleResult", "sample_jvv", "sample_lifted", "sample_walk", "sample_walk_boosted"]
