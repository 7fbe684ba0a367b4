"""JSON that strict parsers accept: numpy scalars and arrays unpacked, NaN and infinities written as ``null``.

Python's ``json`` writes ``NaN`` and ``Infinity`` by default, which JSON
does not have; every file ttsample writes goes through ``dumps`` instead.
"""

from __future__ import annotations

import json
import math

import numpy as np


def jsonable(value):
    """``value`` as plain Python that strict JSON holds (e.g. the log-weight of a particle of weight zero -> None)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(value, **options) -> str:
    return json.dumps(jsonable(value), allow_nan=False, **options)
