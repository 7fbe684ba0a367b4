"""Prompts from a file: one JSON object per line, ``{"prompt": "...", "id": ..., "answer": ...}``.

``prompt`` is required; ``id`` is optional (default: the line number); every
other field goes to the reward with the prompt: a ``Prompt`` is the prompt
text (a ``str``, so any reward reads it as one) that also carries ``id`` and
``fields``, so that a batched reward ``(prompts, responses)`` can check each
response against, say, ``prompt.fields["answer"]``. Blank lines are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ParameterError


class Prompt(str):
    """A prompt's text, with its ``id`` and the other fields of its line."""

    id: str
    fields: dict

    def __new__(cls, text: str, id: str = "", fields: dict | None = None):
        prompt = super().__new__(cls, text)
        prompt.id, prompt.fields = str(id), dict(fields or {})
        return prompt


def read_prompts(path: str | Path) -> list[Prompt]:
    """The prompts of a JSONL file; a bad line is refused with its number, an empty file or repeated ids too."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParameterError(f"cannot read the prompts file {str(path)!r}: {exc}") from None
    prompts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParameterError(f"{path}, line {number}: not JSON ({exc.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("prompt"), str):
            raise ParameterError(f'{path}, line {number}: each line is an object with a text "prompt", got {line[:80]!r}')
        fields = {k: v for k, v in record.items() if k not in ("prompt", "id")}
        prompts.append(Prompt(record["prompt"], record.get("id", number), fields))
    if not prompts:
        raise ParameterError(f"the prompts file {path} holds no prompt")
    ids = [p.id for p in prompts]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise ParameterError(f"the prompts file {path} repeats the id {repeated[0]!r}: ids must be distinct")
    return prompts
