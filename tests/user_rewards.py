"""Rewards as a user writes them, for ``python:user_rewards:NAME`` in the tests (the tests folder is on the path)."""

from ttsample.lm.rewards import Reward, batched, dyck_valid

CALLS: list[int] = []  # the batch size of each call of balanced_batched


def balanced(text: str) -> float:
    """Per text: 1 for a balanced Dyck word."""
    return dyck_valid(text)


@batched
def balanced_batched(prompts: list[str], responses: list[str]) -> list[float]:
    """The same reward, scored a batch at a time."""
    CALLS.append(len(responses))
    return [dyck_valid(r) for r in responses]


@batched
def one_short(prompts, responses):
    """Broken on purpose: one score too few."""
    return [1.0] * (len(responses) - 1)


bounded_length = Reward(lambda text: float(len(text)), "bounded-length", (0.0, 1.0), per_char=True)


@batched
def completable_values(prompts, prefixes):
    """A user's V_hat: 1 on a completable Dyck prefix, a small floor elsewhere (a zero would be refused)."""
    from ttsample.lm.rewards import dyck_completable

    CALLS.append(len(prefixes))
    return [max(dyck_completable(p), 1e-3) for p in prefixes]


def zero_values(prefix: str) -> float:
    """Broken on purpose for values: 0 on some prefixes, which nothing proves empty."""
    return float(prefix.count("(") <= 1)


def balanced_but_one(text: str) -> float:
    """Broken on purpose: the built-in dyck reward except on the one response "()"."""
    return 0.0 if text == "()" else dyck_valid(text)


@batched
def contains_target(prompts, responses):
    """1 where the response contains its prompt's "target" field (read from a prompts file)."""
    return [float(p.fields["target"] in r) for p, r in zip(prompts, responses)]


_EXACT_V: dict[str, float] = {}


@batched
def exact_dyck_values(prompts, prefixes):
    """V* of the built-in dyck constraint on the Dyck model at H = 6, looked up by the prefix's text: what a
    perfect process verifier would return (built once, by enumerating the trie)."""
    if not _EXACT_V:
        import numpy as np

        from ttsample.lm.backend import LanguageModel
        from ttsample.lm.rewards import REWARDS
        from ttsample.lm.task import GenerationTask

        task = GenerationTask(LanguageModel.load("dyck"), "", 6, REWARDS["dyck"])
        log_v = task.exact_log_values()
        every = np.arange(task.tree.num_nodes)
        inner = every[~task.tree.is_leaf(every)]
        _EXACT_V.update(zip(task.text(inner), np.exp(log_v[inner]).tolist()))
    return [_EXACT_V[p] for p in prefixes]


@batched
def floored_v_star(prompts, prefixes):
    """exact_dyck_values floored at 1e-9: positive wherever V* is, and nowhere zero."""
    return [max(v, 1e-9) for v in exact_dyck_values(prompts, prefixes)]
