"""A reward model from a folder: a Hugging Face sequence classifier scoring (prompt, response) pairs in batches.

``hf:DIR`` reads the scalar head of a one-label model (the usual reward
model); ``hf:DIR:LABEL`` the log-probability of the label ``LABEL`` (a name of
``config.id2label``, or its index) of a classifier; ``hf:DIR:logit:LABEL``
that label's logit. The pair is laid out by the reward tokenizer's chat
template when it has one (the prompt as the user's turn, the response as the
assistant's), and as a text pair otherwise. Loading is offline
(``local_files_only``): the folder must hold the weights and the tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ParameterError
from .rewards import Reward

BATCH = 32  # pairs per forward pass


def parse(spec: str) -> tuple[str, str | None, str]:
    """``DIR[:LABEL]`` or ``DIR:logit:LABEL`` -> (folder, label or None, what is read: head, logprob or logit)."""
    if Path(spec).is_dir():
        return spec, None, "head"
    folder, _, label = spec.rpartition(":")
    if folder.endswith(":logit"):
        return folder[: -len(":logit")], label, "logit"
    return folder, label, "logprob"


class SequenceClassifierReward:
    """``(prompts, responses) -> scores`` of a sequence-classification model, one forward pass per ``BATCH``."""

    def __init__(self, folder: str, label: str | None = None, read: str = "head", device: str = "cpu"):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        from transformers.utils import logging as hf_logging

        if not Path(folder).is_dir():
            raise ParameterError(f"the reward model folder {folder!r} does not exist")
        hf_logging.set_verbosity_error()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            self.model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, KeyError) as exc:
            raise ParameterError(f"{folder!r} is not a sequence-classification model with its tokenizer: {exc}") from None
        self.model = self.model.to(device).eval()
        self.torch, self.device, self.read = torch, device, read
        labels = {str(k): v for k, v in self.model.config.label2id.items()}
        count = self.model.config.num_labels
        if read == "head":
            if count != 1:
                raise ParameterError(f"{folder} has {count} labels ({', '.join(labels)}), not a scalar head: name the "
                                     f"label to read, hf:{folder}:LABEL (its log-probability) or hf:{folder}:logit:LABEL")
            self.index = 0
        elif label in labels:
            self.index = int(labels[label])
        elif label is not None and label.isdigit() and int(label) < count:
            self.index = int(label)
        else:
            raise ParameterError(f"{folder} has no label {label!r}; its labels: {', '.join(labels)}")
        if self.tokenizer.pad_token is None:  # decoder reward models often have none; batches need one
            self.tokenizer.pad_token = self.tokenizer.eos_token
            self.model.config.pad_token_id = self.tokenizer.pad_token_id

    def _encode(self, prompts: list[str], responses: list[str]):
        if getattr(self.tokenizer, "chat_template", None):
            texts = [self.tokenizer.apply_chat_template([{"role": "user", "content": p},
                                                         {"role": "assistant", "content": r}], tokenize=False)
                     for p, r in zip(prompts, responses)]
            return self.tokenizer(texts, padding=True, truncation=True, return_tensors="pt")
        return self.tokenizer(prompts, responses, padding=True, truncation=True, return_tensors="pt")

    def __call__(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        torch = self.torch
        out = []
        for i in range(0, len(responses), BATCH):
            batch = self._encode(prompts[i:i + BATCH], responses[i:i + BATCH]).to(self.device)
            with torch.no_grad():
                logits = self.model(**batch).logits.double()
            scores = torch.log_softmax(logits, dim=1) if self.read == "logprob" else logits
            out.append(scores[:, self.index].cpu().numpy())
        return np.concatenate(out)


def hf_reward(spec: str, device: str = "cpu") -> Reward:
    """The reward ``hf:SPEC`` names (module docstring); a log-probability declares its range, at most 0."""
    folder, label, read = parse(spec)
    model = SequenceClassifierReward(folder, label, read, device)
    bounds = (-np.inf, 0.0) if read == "logprob" else None
    return Reward(model, f"hf:{spec}", bounds, batched=True)
