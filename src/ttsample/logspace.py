"""Log-space helpers that treat -inf (zero mass) correctly."""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(a))) along ``axis``; a row of all -inf gives -inf, without warnings."""
    a = np.asarray(a, dtype=np.float64)
    top = np.max(a, axis=axis, keepdims=True)
    safe_top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(a - safe_top), axis=axis, keepdims=True)) + safe_top
    return np.squeeze(out, axis=axis)


def log_of(x: np.ndarray) -> np.ndarray:
    """Elementwise log with log(0) = -inf and no warning."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(x, dtype=np.float64))


def log_normalize(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """``a - logsumexp(a)`` along ``axis``; a row of all -inf stays all -inf."""
    total = np.expand_dims(logsumexp(a, axis=axis), axis)
    with np.errstate(invalid="ignore"):
        return np.where(np.isneginf(total), -np.inf, a - total)


def normalised_weights(log_w: np.ndarray) -> np.ndarray | None:
    """Self-normalised weights ``exp(log_w) / sum`` in float64; None when every weight is zero."""
    lw = np.asarray(log_w, dtype=np.float64)
    if not np.isfinite(lw).any():
        return None
    w = np.where(np.isfinite(lw), np.exp(lw - np.max(lw[np.isfinite(lw)])), 0.0)
    return w / w.sum()


def effective_sample_size(log_w: np.ndarray) -> float:
    """Kish's ``(sum w)^2 / sum w^2`` of unnormalised log-weights; 0 when every weight is zero."""
    w = normalised_weights(log_w)
    return 0.0 if w is None else float(1.0 / np.sum(w**2))
