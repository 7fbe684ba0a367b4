"""One exception type per kind of bad input; every message says what to change."""


class TtsampleError(ValueError):
    """Base class of every error ttsample raises on purpose."""


class InvalidMassError(TtsampleError):
    """A mass is negative, NaN or infinite."""


class ZeroTotalMassError(TtsampleError):
    """Every leaf has mass zero, so there is nothing to sample."""


class TreeShapeError(TtsampleError):
    """Depth or branching out of range, or an array whose length is not b**n."""


class OracleBoundError(TtsampleError):
    """An error bound rho < 1, or an oracle answer outside its stated bound."""


class TargetFileError(TtsampleError):
    """A target file that cannot be read as a one-dimensional numeric array."""


class ParameterError(TtsampleError):
    """A sampler or command parameter out of its range (sample count, steps, ...)."""


class BudgetExhaustedError(TtsampleError):
    """A sampler hit its query budget before producing the requested samples.

    ``ledger`` holds what was spent up to then (``None`` when refused up front).
    """

    def __init__(self, message: str, ledger=None):
        super().__init__(message)
        self.ledger = ledger


class NoLeafReachedError(TtsampleError):
    """A walk sampler whose chains never end at a leaf at time T: T too short, or the walk periodic."""


class ResultStoreError(TtsampleError):
    """A results.sqlite that is damaged, not SQLite, or a database that ttsample did not write."""


class InconsistentClassError(TtsampleError):
    """Every member of the class F contradicts an oracle answer: the target is not in F."""


class ModelLoadError(TtsampleError):
    """A model folder that is missing, not a causal language model, or whose tokenizer does not match."""


class RewardError(TtsampleError):
    """A reward that raised or returned something other than a finite number."""


class BackendError(TtsampleError):
    """A model backend cannot give what was asked of it (hidden states from vLLM, say); the message names what can."""
