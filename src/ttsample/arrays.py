"""Arrays that grow with a tree: capacity doubles, so growing one entry at a time stays linear overall."""

from __future__ import annotations

import numpy as np


def grown(array: np.ndarray, size: int, fill) -> np.ndarray:
    """``array`` itself if it holds ``size`` entries; else a copy with room for ``max(size, 2 * len(array))``, the
    new entries set to ``fill``."""
    if size <= array.size:
        return array
    out = np.full(max(int(size), 2 * array.size), fill, dtype=array.dtype)
    out[: array.size] = array
    return out
