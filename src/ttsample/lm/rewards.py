"""Rewards on decoded text, by name or as objects, and the guard that turns a bad reward into a clear error.

A reward scores responses to a prompt. Every sampler asks it once per batch
of new responses it has (the candidates of best-of-n, SMC's finished
particles, a round of AISP, a batch of rejection). Two forms:

- per text: ``text -> float`` (the built-ins, and any plain callable); a
  batch is one call per response;
- batched: ``(prompts, responses) -> sequence of floats``, one call per
  batch. Mark such a function with ``@batched`` (or pass
  ``Reward(fn, name, batched=True)``): a neural reward model scores a batch
  in one forward pass.

A ``Reward`` carries a name, the range it declares, so that a sampler that
needs a bound on ``tau = exp(r / beta)`` (OutcomeLevelRS with a tilt) finds one
without being told, and, for a constraint, a prefix check (``prefix``) that
value estimators may use to prove a subtree empty. ``resolve_reward`` turns
what a user gives (a built-in name, ``regex:PATTERN``, ``similarity:TEXT``,
``python:MODULE:FUNCTION``, ``path/to/file.py:FUNCTION``, ``hf:DIR[:LABEL]``, a
callable or a ``Reward``) into a ``Reward``: the same forms in the command
line, in specs and in ``generate()``. ``checked`` guards it: a reward that
raises, returns NaN/inf, the wrong number of scores, or leaves its declared
range stops the run with a ``RewardError``; calls and texts scored are
counted in a ledger (``reward_calls``, ``reward_texts``).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..errors import ParameterError, RewardError
from . import arithmetic


@dataclass(frozen=True)
class Reward:
    """A reward ``text -> float`` with a name and, where it knows one, its range.

    ``bounds = (low, high)`` holds for every text (``low`` may be ``-inf``); with ``per_char`` it is per
    character, so the range over responses of at most ``m`` characters is
    ``(low m, high m)`` (a length reward's grows with the horizon).
    ``prefix``, for a constraint: a check on partial text that may return 0
    only where no response extending the text has reward > 0 (genlm's
    potentials keep such a ``prefix`` beside ``complete``); a value estimator
    may then give 0 there, and only there.
    """

    function: Callable
    name: str
    bounds: tuple[float, float] | None = None
    per_char: bool = False
    prefix: Callable[[str], float] | None = None
    batched: bool = False  # function(prompts, responses) -> scores, one call per batch; else function(text) -> score

    def __post_init__(self) -> None:
        if self.bounds is not None:
            low, high = self.bounds
            if not (math.isfinite(high) and (math.isfinite(low) or low == -math.inf) and low <= high):
                raise ValueError(f"a reward's bounds must be low <= high, high finite (low may be -inf: a "
                                 f"log-probability), got {self.bounds!r}")

    def __call__(self, text: str) -> float:
        """The score of one response (to an empty prompt, for a batched reward)."""
        return float(self.score([""], [text])[0])

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list:
        """One score per (prompt, response): one call if batched, else one per response (unchecked: ``checked``)."""
        if self.batched:
            return list(self.function(list(prompts), list(responses)))
        return [self.function(r) for r in responses]

    def range(self, max_chars: int) -> tuple[float, float] | None:
        """``(low, high)`` over every text of at most ``max_chars`` characters; None if the reward declares none."""
        if self.bounds is None:
            return None
        low, high = self.bounds
        return (low * max_chars, high * max_chars) if self.per_char else (low, high)


def reward_name(reward: Callable[[str], float]) -> str:
    return reward.name if isinstance(reward, Reward) else getattr(reward, "__name__", type(reward).__name__)


def batched(function: Callable) -> Callable:
    """Mark ``function(prompts, responses) -> scores`` as a batched reward (it is called once per batch)."""
    function.batched_reward = True
    return function


def as_reward(reward) -> Reward:
    """A ``Reward`` as it is; a callable as a per-text reward, or a batched one where it is marked ``@batched``
    (a plain callable declares no range and no prefix check)."""
    if isinstance(reward, Reward):
        return reward
    if not callable(reward):
        raise ParameterError(f"a reward is a name, a callable or a Reward, got {reward!r}")
    return Reward(reward, reward_name(reward), batched=bool(getattr(reward, "batched_reward", False)))


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
    # the final answer of a step-by-step sum (ttsample.lm.arithmetic); reads the problem from the prompt
    "arithmetic": Reward(arithmetic.verify, "arithmetic", (0.0, 1.0), batched=True),
}


REWARD_FORMS = ("a built-in name (" + ", ".join(REWARDS) + "), regex:PATTERN (1 on a full match), similarity:TEXT "
                "(MiniLM cosine similarity to TEXT), python:MODULE:FUNCTION, path/to/file.py:FUNCTION or "
                "hf:DIR[:LABEL] (a sequence-classification reward model)")


def check_reward_name(name: str) -> None:
    """Refuse a reward name that no form of ``resolve_reward`` reads, without loading any model."""
    kind, sep, rest = name.partition(":")
    if name in REWARDS or (sep and kind in ("regex", "similarity", "python", "hf") and rest) or _file_form(name):
        return
    raise ParameterError(f"unknown reward {name!r}; give {REWARD_FORMS}")


def _file_form(name: str) -> tuple[str, str] | None:
    path, sep, function = name.rpartition(":")
    return (path, function) if sep and path.endswith(".py") and function.isidentifier() else None


def resolve_reward(reward) -> Reward:
    """The ``Reward`` that ``reward`` names (``REWARD_FORMS``), or ``reward`` itself as a ``Reward`` (a callable or
    a ``Reward``). A Python function is per text unless marked ``@batched``; a module attribute that is a
    ``Reward`` is used as it is (with its range and prefix check)."""
    if not isinstance(reward, str):
        return as_reward(reward)
    check_reward_name(reward)
    if reward in REWARDS:
        return REWARDS[reward]
    kind, _, rest = reward.partition(":")
    if kind == "regex":
        try:
            return regex_reward(rest)
        except re.error as exc:
            raise ParameterError(f"regex:{rest} is not a regular expression: {exc}") from None
    if kind == "similarity":
        from .embedding import similarity_reward

        return similarity_reward(rest)
    if kind == "hf":
        from .reward_model import hf_reward

        return hf_reward(rest)
    if kind == "python":
        module_name, _, function = rest.rpartition(":")
        if not module_name or not function.isidentifier():
            raise ParameterError(f"python:MODULE:FUNCTION names a function in an importable module, got {reward!r}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ParameterError(f"cannot import {module_name!r} for the reward {reward!r}: {exc}") from None
        return _attribute(module, function, reward)
    path, function = _file_form(reward)
    if not Path(path).is_file():
        raise ParameterError(f"the reward file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"ttsample_reward_{abs(hash(str(Path(path).resolve())))}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file may fail in any way; say where
        raise ParameterError(f"loading the reward file {path!r} failed: {type(exc).__name__}: {exc}") from None
    return _attribute(module, function, reward)


def _attribute(module, function: str, name: str) -> Reward:
    if not hasattr(module, function):
        raise ParameterError(f"{module.__name__} has no {function!r} (for the reward {name!r})")
    value = getattr(module, function)
    reward = as_reward(value)
    return reward if isinstance(value, Reward) else replace(reward, name=name)


def log_tau_of(reward, beta: float | None) -> np.ndarray:
    """``log tau`` from rewards: ``r / beta`` for a tilt, ``0`` or ``-inf`` (``tau = 1{r > 0}``) for a constraint."""
    r = np.asarray(reward, dtype=np.float64)
    return np.where(r > 0, 0.0, -np.inf) if beta is None else r / beta


def checked(reward, ledger=None, bounds: tuple[float, float] | None = None) -> Callable[[list, list], np.ndarray]:
    """``(prompts, responses) -> scores`` of ``reward`` (a ``Reward`` or a callable), with its calls and texts
    counted in ``ledger`` and its failures (raising, a score that is not a finite number, the wrong number of
    scores, a score outside ``bounds``) turned into ``RewardError``."""
    reward = as_reward(reward)

    def score(prompts: list, responses: list) -> np.ndarray:
        if not responses:
            return np.zeros(0)
        if ledger is not None:
            ledger.reward_calls += 1 if reward.batched else len(responses)
            ledger.reward_texts += len(responses)
        try:
            values = reward.score(prompts, responses)
        except Exception as exc:  # a user's reward may raise anything; report it with the input
            on = repr(responses[0]) if len(responses) == 1 else f"a batch of {len(responses)}, the first {responses[0]!r}"
            raise RewardError(f"the reward raised {type(exc).__name__}: {exc} (on {on})") from exc
        if len(values) != len(responses):
            raise RewardError(f"the reward {reward.name} returned {len(values)} scores for {len(responses)} responses")
        out = np.empty(len(responses))
        for i, (value, text) in enumerate(zip(values, responses)):
            try:
                out[i] = float(value)
            except (TypeError, ValueError):
                raise RewardError(f"the reward returned {value!r}, not a number (on {text!r})") from None
            if not math.isfinite(out[i]):
                raise RewardError(f"the reward returned {out[i]} on {text!r}; rewards must be finite numbers")
            if bounds is not None and not bounds[0] <= out[i] <= bounds[1]:
                raise RewardError(f"the reward {reward.name} returned {out[i]} on {text!r}, outside the range "
                                  f"[{bounds[0]:g}, {bounds[1]:g}] it declares")
        return out

    return score
