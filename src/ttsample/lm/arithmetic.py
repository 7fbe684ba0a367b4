"""Multi-step arithmetic, the reasoning task the project trains and checks on: problems, solutions, the verifier.

A problem adds two to five one-digit numbers; its difficulty is its number of
steps (numbers - 1). A solution writes one line per step, each adding the
next number to the running total, then the answer::

    7+5+8=          (the prompt)
    7+5=12
    12+8=20
    answer 20       (then <eos>)

The training solutions err on purpose: each step's result is off (by 1, 2 or
10, either way) with probability ``STEP_ERROR`` and later steps carry on from
the written total, so a model trained on them errs too, and searching among its
solutions matters. The step delimiter is ``"\\n"``.

``verify`` is the verifier of the final answer (the reward ``arithmetic``): 1
when the response's last line is ``answer N`` with N the problem's sum, else
0; it reads the problem from the prompt, so it is a batched reward.
``solution`` also gives each step's label for the process reward model: good
while every step so far is right (true step correctness, not rollout labels).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

STEP_ERROR = 0.2  # the share of wrong steps in the training solutions
SLIPS = (-10, -2, -1, 1, 2, 10)  # how a wrong step's result is off
DIFFICULTIES = (1, 2, 3, 4)  # steps per problem in training
SYMBOLS = tuple("0123456789+= \nanswer") + ("<eos>", "<bos>")
DELIMITER = "\n"
LINE = 8  # the longest step line of a solution: "36+9=45\n"
MAX_STEP_TOKENS = 10  # the longest answer line and its <eos>: "answer 45<eos>"
ANSWER = "answer "


@dataclass(frozen=True)
class Problem:
    numbers: tuple[int, ...]

    @property
    def prompt(self) -> str:
        return "+".join(map(str, self.numbers)) + "="

    @property
    def steps(self) -> int:
        return len(self.numbers) - 1

    @property
    def answer(self) -> int:
        return sum(self.numbers)

    def horizon(self) -> int:
        """Tokens that hold any solution of this problem (every line at its longest) and its <eos>."""
        return self.steps * LINE + MAX_STEP_TOKENS

    @property
    def held_out(self) -> bool:
        """About a fifth of all problems, never trained on: the ones the reproduction evaluates on."""
        return zlib.crc32(self.prompt.encode()) % 5 == 0


def problems(steps: int, count: int, seed: int, *, held_out: bool) -> list[Problem]:
    """``count`` distinct random problems of ``steps`` steps, held out from training or not (fewer where there are
    not that many)."""
    rng = np.random.default_rng(seed)
    out: dict[Problem, None] = {}
    for _ in range(50 * count):
        problem = Problem(tuple(int(x) for x in rng.integers(1, 10, steps + 1)))
        if problem.held_out == held_out:
            out.setdefault(problem, None)
        if len(out) == count:
            break
    return list(out)


def solution(problem: Problem, rng: np.random.Generator, step_error: float = STEP_ERROR) -> tuple[str, list[bool]]:
    """A solution with wrong steps at rate ``step_error``, and after each line whether every step so far is right
    (the answer line: whether the answer is the sum)."""
    lines, labels, total, right = [], [], problem.numbers[0], True
    for x in problem.numbers[1:]:
        result = total + x
        if rng.random() < step_error:
            result = max(0, result + int(rng.choice(SLIPS)))
        right = right and result == total + x
        lines.append(f"{total}+{x}={result}{DELIMITER}")
        labels.append(right)
        total = result
    lines.append(f"{ANSWER}{total}")
    labels.append(total == problem.answer)
    return "".join(lines), labels


_PROBLEM = re.compile(r"(\d+(?:\+\d+)+)=\s*$")
_ANSWER = re.compile(r"(?:^|\n)answer (\d+)\s*$")


def problem_of(prompt: str) -> Problem:
    match = _PROBLEM.search(prompt)
    if match is None:
        raise ValueError(f"the arithmetic verifier reads a problem such as '7+5+8=' at the end of the prompt; "
                         f"got {prompt!r}")
    return Problem(tuple(int(x) for x in match.group(1).split("+")))


def verify(prompts, responses) -> list[float]:
    """1.0 where the response's last line is ``answer N`` with N the sum in its prompt, else 0.0."""
    out = []
    for prompt, response in zip(prompts, responses):
        match = _ANSWER.search(response)
        out.append(float(match is not None and int(match.group(1)) == problem_of(prompt).answer))
    return out


def base_accuracy(lm, steps: int, count: int, draws: int, seed: int) -> float:
    """The share of ``pi_ref``'s responses that the verifier accepts, over ``count`` held-out problems of ``steps``
    steps, ``draws`` responses each."""
    from .rewards import REWARDS
    from .task import GenerationTask

    rng = np.random.default_rng(seed)
    hits = []
    for problem in problems(steps, count, seed, held_out=True):
        task = GenerationTask(lm, problem.prompt, problem.horizon(), REWARDS["arithmetic"])
        hits.append(float(task.rewards(task.sample_suffix(np.zeros(draws, dtype=np.int64), rng)).mean()))
    return float(np.mean(hits))
