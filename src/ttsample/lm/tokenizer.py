"""A character-level tokenizer for the project's tiny models, saved as JSON beside the weights."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError


@dataclass(frozen=True)
class CharTokenizer:
    symbols: tuple[str, ...]  # one per token id; special tokens are "<bos>" and "<eos>"

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    @property
    def bos_id(self) -> int:
        return self.symbols.index("<bos>")

    @property
    def eos_id(self) -> int:
        return self.symbols.index("<eos>")

    def encode(self, text: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.symbols)}
        try:
            return [index[c] for c in text]
        except KeyError as exc:
            raise ParameterError(f"character {exc.args[0]!r} is not in this model's vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.symbols[i] for i in ids if self.symbols[i] not in ("<bos>", "<eos>"))

    def save(self, folder: Path) -> None:
        (Path(folder) / "tokenizer.json").write_text(json.dumps({"type": "char", "symbols": list(self.symbols)}))

    @classmethod
    def load(cls, folder: Path) -> "CharTokenizer":
        data = json.loads((Path(folder) / "tokenizer.json").read_text())
        if data.get("type") != "char":
            raise ParameterError(f"{folder}/tokenizer.json is not a ttsample character tokenizer")
        return cls(tuple(data["symbols"]))
