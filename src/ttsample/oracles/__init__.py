"""Oracles mu_hat (error models) and the query ledger."""

from .error_models import (
    ORACLES,
    AdversarialOracle,
    DecoyOracle,
    DelayedOracle,
    DriftOracle,
    ErrorModel,
    ExactOracle,
    FlatOracle,
    RandomOracle,
    SignsOracle,
    SinglePerturbedOracle,
    make_oracle,
    with_error,
)
from ..ledger import Ledger
from .counted import CountedOracle
from .protocol import Oracle

__all__ = [
    "ORACLES",
    "AdversarialOracle",
    "CountedOracle",
    "DecoyOracle",
    "DelayedOracle",
    "DriftOracle",
    "ErrorModel",
    "ExactOracle",
    "FlatOracle",
    "Ledger",
    "Oracle",
    "RandomOracle",
    "SignsOracle",
    "SinglePerturbedOracle",
    "make_oracle",
    "with_error",
]
