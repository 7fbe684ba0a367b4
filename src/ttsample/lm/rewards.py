"""Rewards on decoded text, and the guard that turns a bad reward into a clear error.

Rule-based: Dyck validity and completability, "no letter e", a regular
expression, length; a small built-in sentiment lexicon. Any Python callable
``text -> float`` can be passed instead; ``checked`` wraps it so that a reward
that raises or returns NaN/inf stops the run with a ``RewardError``, and
counts calls in a ledger.
"""

from __future__ import annotations

import math
import re
from typing import Callable

from ..errors import RewardError

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


def no_letter(letter: str = "e") -> Callable[[str], float]:
    return lambda text: float(letter not in text.lower())


def regex_reward(pattern: str) -> Callable[[str], float]:
    compiled = re.compile(pattern)
    return lambda text: float(compiled.fullmatch(text) is not None)


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


REWARDS: dict[str, Callable[[str], float]] = {
    "dyck": dyck_valid,
    "dyck-completable": dyck_completable,
    "no-e": no_letter("e"),
    "length": length_reward,
    "sentiment": lexicon_sentiment,
}


def checked(reward: Callable[[str], float], ledger=None) -> Callable[[str], float]:
    """``reward`` with its calls counted and its failures turned into ``RewardError``."""

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
        return value

    return call
