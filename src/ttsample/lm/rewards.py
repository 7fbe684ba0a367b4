"""Rewards on decoded text, and the guard that turns a bad reward into a clear error.

Rule-based: Dyck validity and completability, "no letter e", a regular
expression, length; a small built-in sentiment lexicon. Each built-in is a
``Reward``: a function with a name and the range it declares, so that a
sampler that needs a bound on ``tau = exp(r / beta)`` (OutcomeLevelRS with a
tilt) finds one without being told, and, for a constraint, a prefix check
(``prefix``) that value estimators may use to prove a subtree empty. Any
Python callable ``text -> float`` can be passed instead; it declares neither.
``checked`` wraps either so that a
reward that raises, returns NaN/inf or leaves its declared range stops the run
with a ``RewardError``, and counts calls in a ledger.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..errors import RewardError


@dataclass(frozen=True)
class Reward:
    """A reward ``text -> float`` with a name and, where it knows one, its range.

    ``bounds = (low, high)`` holds for every text; with ``per_char`` it is per
    character, so the range over responses of at most ``m`` characters is
    ``(low m, high m)`` (a length reward's grows with the horizon).
    ``prefix``, for a constraint: a check on partial text that may return 0
    only where no response extending the text has reward > 0 (genlm's
    potentials keep such a ``prefix`` beside ``complete``); a value estimator
    may then give 0 there, and only there.
    """

    function: Callable[[str], float]
    name: str
    bounds: tuple[float, float] | None = None
    per_char: bool = False
    prefix: Callable[[str], float] | None = None

    def __post_init__(self) -> None:
        if self.bounds is not None:
            low, high = self.bounds
            if not (math.isfinite(low) and math.isfinite(high) and low <= high):
                raise ValueError(f"a reward's bounds must be finite with low <= high, got {self.bounds!r}")

    def __call__(self, text: str) -> float:
        return self.function(text)

    def range(self, max_chars: int) -> tuple[float, float] | None:
        """``(low, high)`` over every text of at most ``max_chars`` characters; None if the reward declares none."""
        if self.bounds is None:
            return None
        low, high = self.bounds
        return (low * max_chars, high * max_chars) if self.per_char else (low, high)


def reward_name(reward: Callable[[str], float]) -> str:
    return reward.name if isinstance(reward, Reward) else getattr(reward, "__name__", type(reward).__name__)


PAIRS = {"(": ")", "[": "]"}


def _stack(text: str) -> list[str] | None:
    """The open brackets left after reading ``text``, or None if a bracket closes wrongly."""
    stack: list[str] = []
    for c in text:
        if c in PAIRS:
            stack.append(c)
        elif c in PAIRS.values():
            if not stack or PAIRS[stack.pop()] != c:
                return None
    return stack


def dyck_valid(text: str) -> float:
    """1 for a complete, balanced word over () and [], else 0."""
    return float(_stack(text) == [])


def dyck_completable(text: str) -> float:
    """1 if some continuation makes ``text`` a valid Dyck word."""
    return float(_stack(text) is not None)


def no_letter(letter: str = "e") -> Reward:
    """Texts without ``letter`` (either case); its own prefix check, since a letter once written stays."""
    absent = lambda text: float(letter not in text.lower())  # noqa: E731
    return Reward(absent, f"no-{letter}", (0.0, 1.0), prefix=absent)


def regex_reward(pattern: str) -> Reward:
    compiled = re.compile(pattern)
    return Reward(lambda text: float(compiled.fullmatch(text) is not None), f"regex:{pattern}", (0.0, 1.0))


def length_reward(text: str) -> float:
    return float(len(text))


POSITIVE = frozenset("good great free freely permitted permission right rights benefit open share happy love best".split())
NEGATIVE = frozenset("bad no not without warranty liable damages fail failure restrict prohibited loss terminate".split())


def lexicon_sentiment(text: str) -> float:
    """(positive - negative words) / words, from a small built-in lexicon suited to license texts."""
    words = re.findall(r"[a-z]+", text.lower())
    if not words:
        return 0.0
    return (sum(w in POSITIVE for w in words) - sum(w in NEGATIVE for w in words)) / len(words)


REWARDS: dict[str, Reward] = {
    "dyck": Reward(dyck_valid, "dyck", (0.0, 1.0), prefix=dyck_completable),
    "dyck-completable": Reward(dyck_completable, "dyck-completable", (0.0, 1.0), prefix=dyck_completable),
    "no-e": no_letter("e"),
    "length": Reward(length_reward, "length", (0.0, 1.0), per_char=True),  # characters: at most the response's
    "sentiment": Reward(lexicon_sentiment, "sentiment", (-1.0, 1.0)),  # (positive - negative) / words
}


def log_tau_of(reward, beta: float | None) -> np.ndarray:
    """``log tau`` from rewards: ``r / beta`` for a tilt, ``0`` or ``-inf`` (``tau = 1{r > 0}``) for a constraint."""
    r = np.asarray(reward, dtype=np.float64)
    return np.where(r > 0, 0.0, -np.inf) if beta is None else r / beta


def checked(reward: Callable[[str], float], ledger=None,
            bounds: tuple[float, float] | None = None) -> Callable[[str], float]:
    """``reward`` with its calls counted and its failures (raising, not a finite number, outside ``bounds``, the
    range it declares) turned into ``RewardError``."""

    def call(text: str) -> float:
        if ledger is not None:
            ledger.reward_calls += 1
        try:
            value = reward(text)
        except Exception as exc:  # a user's reward may raise anything; report it with the input
            raise RewardError(f"the reward raised {type(exc).__name__}: {exc} (on {text!r})") from exc
        try:
            value = float(value)
        except (TypeError, ValueError):
            raise RewardError(f"the reward returned {value!r}, not a number (on {text!r})") from None
        if not math.isfinite(value):
            raise RewardError(f"the reward returned {value} on {text!r}; rewards must be finite numbers")
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            raise RewardError(f"the reward {reward_name(reward)} returned {value} on {text!r}, outside the range "
                              f"[{bounds[0]:g}, {bounds[1]:g}] it declares")
        return value

    return call
