"""Process reward models as values: a verifier of partial solutions, read at the end of each step.

``--values prm:DIR`` on a step tree (``ttsample.lm.steps``). The partial
solution is laid out as the PRM expects: the prompt, then each step with the
step tag written after its text (before the step's own delimiter, so
``"37+48=85\\n"`` becomes ``"37+48=85 ки\\n"`` with the tag ``" ки"``). The tag
must be one token of the PRM's tokenizer; the PRM is read at every position
that holds it. Two conventions, told apart by the folder's architecture:

- a causal language model (Math-Shepherd style): the step's score is the
  probability of the ``good`` token against the ``bad`` one, from the logits at
  the tag (defaults ``+`` and ``-``);
- a token-classification model: with two or more labels, the probability of
  the label ``good`` (a name of ``config.id2label``, default ``good``); with
  one label, a scalar head, read as ``sigmoid(score)``.

A prefix's ``V_hat`` is its step scores aggregated (``aggregate``):
``last`` (the default), the last step's score; ``product`` or ``min`` over its
steps. ``last`` is the default because a PRM trained on Math-Shepherd's
rollout labels predicts the share of completions from the prefix that reach
the right answer, which is ``V*`` itself; ``product`` reads scores as
independent per-step correctness, ``min`` as the weakest step (the
aggregations of PRM-guided search). The root, with no step, gets 1; a step
with no text (``<eos>`` drawn right after a step end) is not scored. Each node
is scored once (cached), new nodes one batch per call; the PRM's forward
passes count as reward calls in the model ledger. Loading is offline. The
PRM trained by the project for the arithmetic task (``ttsample.lm.arithmetic``)
is embedded: ``prm:arithmetic-prm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import OracleBoundError, ParameterError
from .loading import CAUSAL_LM_SUFFIXES

AGGREGATES = ("last", "product", "min")
EMBEDDED_PRMS = {"arithmetic-prm": Path(__file__).parent / "weights" / "arithmetic-prm"}  # prm:arithmetic-prm
BATCH = 32  # partial solutions per forward pass
PREFIX = "prm:"


CAUSAL_GOOD, CAUSAL_BAD = "+", "-"  # a causal PRM's good and bad tokens by default (Math-Shepherd's)


@dataclass(frozen=True)
class PRMReading:
    """How a PRM is read: its step ``tag``, ``good`` and ``bad`` (tokens for a causal PRM; ``good`` is a label for a
    classifier), and how step scores become ``V_hat`` (``aggregate``)."""

    tag: str = " ки"
    good: str | None = None
    bad: str | None = None
    aggregate: str = "last"

    def __post_init__(self):
        if self.aggregate not in AGGREGATES:
            raise ParameterError(f"unknown PRM aggregate {self.aggregate!r}; choose {', '.join(AGGREGATES)}")
        if not isinstance(self.tag, str) or not self.tag:
            raise ParameterError(f"the PRM's step tag must be a non-empty text, got {self.tag!r}")

    def as_dict(self) -> dict:
        return {"tag": self.tag, "good": self.good, "bad": self.bad, "aggregate": self.aggregate}


def tagged(step: str, tag: str, delimiters) -> str:
    """A step's text as a PRM reads it: the tag after its text, before the delimiter that ends it (if one does)."""
    ending = next((d for d in delimiters if step.endswith(d)), "")
    return step[: len(step) - len(ending)] + tag + ending


def is_prm(kind: str) -> bool:
    return kind.startswith(PREFIX)


class ProcessRewardValues:
    """``V_hat`` of step ends from a PRM folder (the module docstring says how it is read)."""

    proves_zeros = False  # a probability from a softmax is positive; nothing proves a subtree empty
    deterministic = True  # a fixed function of the prefix
    floor = 1e-300  # the least V_hat given to a head that learns from these values (LearnedValues(labels=...))

    def __init__(self, task, folder: str, reading: PRMReading | None = None, device: str = "cpu"):
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if task.step_rule is None:
            raise ParameterError("a PRM scores steps: say where a step ends (--step-delimiter or --max-step-tokens)")
        folder = str(EMBEDDED_PRMS.get(folder, folder))
        if not Path(folder).is_dir():
            raise ParameterError(f"the PRM folder {folder!r} does not exist (embedded: {', '.join(EMBEDDED_PRMS)})")
        self.task, self.reading, self.torch, self.device = task, reading or PRMReading(), torch, device
        hf_logging.set_verbosity_error()
        try:
            config = AutoConfig.from_pretrained(folder, local_files_only=True)
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ParameterError(f"{folder!r} is not a model folder with its tokenizer: {exc}") from None
        architecture = (config.architectures or ["?"])[0]
        self.causal = architecture.endswith(CAUSAL_LM_SUFFIXES)  # GPT-2's is an LMHeadModel
        if not self.causal and not architecture.endswith("ForTokenClassification"):
            raise ParameterError(f"{folder} is a {architecture}: a PRM here is a causal LM (read at its good/bad "
                                 "tokens) or a token-classification model (read at its labels)")
        loader = AutoModelForCausalLM if self.causal else AutoModelForTokenClassification
        self.model = loader.from_pretrained(folder, local_files_only=True).to(device).eval()
        self.tag_id = self._one_token(self.reading.tag, "step tag")
        if self.causal:
            self.read = [self._one_token(self.reading.good or CAUSAL_GOOD, "good token"),
                         self._one_token(self.reading.bad or CAUSAL_BAD, "bad token")]
        elif config.num_labels == 1:
            self.read = None  # a scalar head: sigmoid of its score
        else:
            labels = {str(k): int(v) for k, v in config.label2id.items()}
            good = self.reading.good or "good"
            if good not in labels:
                raise ParameterError(f"{folder} has no label {good!r}; its labels: {', '.join(labels)} "
                                     "(--prm-good LABEL)")
            self.read = labels[good]
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.cache: dict[int, float] = {0: 0.0}  # the root: no step, V_hat = 1

    def _one_token(self, text: str, what: str) -> int:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ParameterError(f"the PRM's {what} {text!r} is {len(ids)} tokens of its tokenizer "
                                 f"({ids}); it must be exactly one")
        return int(ids[0])

    def layout(self, node: int) -> tuple[str, int]:
        """The PRM's input for a step end, and how many steps (tags) it holds."""
        tree, task = self.task.tree, self.task
        ends = [node]
        while ends[-1] != 0:
            ends.append(int(tree.parent(np.array([ends[-1]]))[0]))
        ends = ends[::-1]  # the root first
        tokens = task.tokens(np.array(ends[1:], dtype=np.int64))
        parts, before = [], ()
        for whole in tokens:
            step = task.lm.tokenizer.decode(whole[len(before):])
            before = whole
            if not step.strip():  # a step of no text (<eos> alone after a step end) is no step to score
                continue
            parts.append(tagged(step, self.reading.tag, task.step_rule.delimiters))
        if not parts and node != 0:  # the empty response (<eos> first) is one empty step: the PRM's verdict on it
            parts = [self.reading.tag]
        return task.prompt_text + "".join(parts), len(parts)

    def step_scores(self, nodes) -> list[np.ndarray]:
        """Each node's step scores in order, in batches of ``BATCH`` (each node asked anew: no cache)."""
        torch = self.torch
        layouts = [self.layout(int(v)) for v in np.asarray(nodes, dtype=np.int64)]
        out: list[np.ndarray] = []
        for i in range(0, len(layouts), BATCH):
            texts = [text for text, _ in layouts[i:i + BATCH]]
            batch = self.tokenizer(texts, padding=True, return_tensors="pt").to(self.device)
            with torch.no_grad():
                logits = self.model(**batch).logits.double()
            ledger = self.task.lm.ledger
            ledger.reward_calls += 1
            ledger.reward_texts += len(texts)
            for row, (text, steps) in enumerate(layouts[i:i + BATCH]):
                at = torch.nonzero((batch["input_ids"][row] == self.tag_id) & (batch["attention_mask"][row] > 0))[:, 0]
                if at.numel() != steps:
                    raise OracleBoundError(f"the PRM's step tag {self.reading.tag!r} appears {at.numel()} times in "
                                           f"{text!r}, which holds {steps} steps: the tag occurs in the text itself "
                                           "or the tokenizer merges it with its neighbours; choose another tag")
                out.append(self._scores(logits[row, at]))
        return out

    def _scores(self, logits) -> np.ndarray:
        torch = self.torch
        if self.causal:
            return torch.softmax(logits[:, self.read], dim=1)[:, 0].cpu().numpy()
        if self.read is None:
            return torch.sigmoid(logits[:, 0]).cpu().numpy()
        return torch.softmax(logits, dim=1)[:, self.read].cpu().numpy()

    def __call__(self, nodes) -> np.ndarray:
        nodes = np.asarray(nodes, dtype=np.int64)
        fresh = [v for v in dict.fromkeys(nodes.ravel().tolist()) if v not in self.cache]
        if fresh:
            aggregate = {"last": lambda s: s[-1], "product": np.prod, "min": np.min}[self.reading.aggregate]
            for v, scores in zip(fresh, self.step_scores(fresh)):
                with np.errstate(divide="ignore"):
                    self.cache[v] = float(np.log(aggregate(scores)))
        return np.array([self.cache[v] for v in nodes.ravel().tolist()]).reshape(nodes.shape)

    def estimate(self, nodes) -> np.ndarray:
        """``V_hat`` itself (not its log), as the labels of a head that learns from the PRM (``head:prm:DIR``)."""
        return np.exp(self(nodes))
