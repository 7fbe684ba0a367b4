"""Oracles mu_hat (error models) and the query ledger."""

from .error_models import (
    ORACLES,
    AdversarialOracle,
    DecoyOracle,
    DelayedOracle,
    DriftOracle,
    ExactOracle,
    FlatOracle,
    Oracle,
    RandomOracle,
    SignsOracle,
    SinglePerturbedOracle,
    make_oracle,
)
from .ledger import CountedOracle, Ledger

__all__ = [
    "ORACLES",
    "AdversarialOracle",
    "CountedOracle",
    "DecoyOracle",
    "DelayedOracle",
    "DriftOracle",
    "ExactOracle",
    "FlatOracle",
    "Ledger",
    "Oracle",
    "RandomOracle",
    "SignsOracle",
    "SinglePerturbedOracle",
    "make_oracle",
]
