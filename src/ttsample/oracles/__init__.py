"""Oracles mu_hat (error models) and the query ledger."""

from .error_models import (
    ORACLES,
    AdversarialOracle,
    DelayedOracle,
    ExactOracle,
    FlatOracle,
    Oracle,
    RandomOracle,
    SinglePerturbedOracle,
    make_oracle,
)
from .ledger import CountedOracle, Ledger

__all__ = [
    "ORACLES",
    "AdversarialOracle",
    "CountedOracle",
    "DelayedOracle",
    "ExactOracle",
    "FlatOracle",
    "Ledger",
    "Oracle",
    "RandomOracle",
    "SinglePerturbedOracle",
    "make_oracle",
]
