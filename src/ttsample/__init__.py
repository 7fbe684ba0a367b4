"""ttsample: test-time sampling from approximate density oracles."""

from .errors import TtsampleError
from .ledger import Ledger
from .oracles import make_oracle
from .registry import SAMPLERS
from .runs import run
from .samplers import (
    SampleResult,
    sample_jvv,
    sample_lifted,
    sample_walk,
    sample_walk_boosted,
)
from .target import Target, bounded_tilt_target, random_target
from .trees import Tree

__version__ = "0.1.0"

__all__ = [
    "SAMPLERS",
    "Ledger",
    "SampleResult",
    "Target",
    "Tree",
    "TtsampleError",
    "bounded_tilt_target",
    "make_oracle",
    "random_target",
    "run",
    "sample_jvv",
    "sample_lifted",
    "sample_walk",
    "sample_walk_boosted",
]
