"""Tokenizers behind one small interface: ``vocab_size``, ``bos_id``, ``eos_id``, ``encode``, ``decode``.

``CharTokenizer`` is the character-level tokenizer of the project's tiny
models, saved as JSON beside the weights. ``HFTokenizer`` adapts any Hugging
Face tokenizer (a BPE trained by ``train-tiny``, or a user's model's) to the
same interface. ``load_tokenizer`` reads whichever a model folder holds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from ..errors import ModelLoadError, ParameterError


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

    @property
    def max_token_chars(self) -> int:
        """The most characters one token adds to a decoded text (its symbol's; the special tokens decode to none)."""
        return max(len(self.decode([i])) for i in range(self.vocab_size))

    def encode(self, text: str) -> list[int]:
        index = {s: i for i, s in enumerate(self.symbols)}
        try:
            return [index[c] for c in text]
        except KeyError as exc:
            raise ParameterError(f"character {exc.args[0]!r} is not in this model's vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.symbols[i] for i in ids if self.symbols[i] not in ("<bos>", "<eos>"))

    def chat_ids(self, prompt: str, system: str | None = None) -> list[int]:
        raise ParameterError("this model's character tokenizer has no chat template: drop --chat (and --system)")

    def save(self, folder: Path) -> None:
        (Path(folder) / "tokenizer.json").write_text(json.dumps({"type": "char", "symbols": list(self.symbols)}))

    @classmethod
    def load(cls, folder: Path) -> "CharTokenizer":
        data = json.loads((Path(folder) / "tokenizer.json").read_text())
        if data.get("type") != "char":
            raise ParameterError(f"{folder}/tokenizer.json is not a ttsample character tokenizer")
        return cls(tuple(data["symbols"]))


class HFTokenizer:
    """A Hugging Face tokenizer seen through the interface above.

    A model without a beginning-of-sequence token starts from its
    end-of-sequence token (as GPT-2 does).
    """

    def __init__(self, hf):
        self.hf = hf
        if hf.eos_token_id is None:
            raise ModelLoadError("the tokenizer has no end-of-sequence token; ttsample needs one to end a response")
        self.eos_id = int(hf.eos_token_id)
        self.bos_id = int(hf.bos_token_id) if hf.bos_token_id is not None else self.eos_id
        self.vocab_size = len(hf)

    @cached_property
    def max_token_chars(self) -> int:
        """A bound on the characters one token adds to a decoded text: the longest token decoded alone, plus one.

        In context a token can add one character more than alone: decoders of
        SentencePiece and WordPiece put a space before a word that is not the
        first. Byte-level pieces of one character decode alone to at least as
        many characters as together.
        """
        return 1 + max(len(self.decode([i])) for i in range(self.vocab_size))

    def encode(self, text: str) -> list[int]:
        return list(self.hf.encode(text, add_special_tokens=False))

    def decode(self, ids) -> str:
        return self.hf.decode([int(i) for i in ids], skip_special_tokens=True)

    def chat_ids(self, prompt: str, system: str | None = None) -> list[int]:
        """The prompt as the user's turn (after ``system``'s, if given) laid out by the chat template, up to where
        the assistant's reply begins."""
        if not getattr(self.hf, "chat_template", None):
            raise ParameterError("this model's tokenizer has no chat template: drop --chat (and --system), or use a "
                                 "chat model whose tokenizer_config.json carries one")
        messages = ([{"role": "system", "content": system}] if system is not None else []) + \
            [{"role": "user", "content": prompt}]
        text = self.hf.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return list(self.hf.encode(text, add_special_tokens=False))


TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "tokenizer.model",
                   "spiece.model", "merges.txt")


def load_tokenizer(path, local: bool, *, trust_remote_code: bool = False, revision: str | None = None):
    """The tokenizer beside a model: a ttsample character tokenizer, or any Hugging Face one."""
    folder = Path(path)
    if local and (folder / "tokenizer.json").exists():
        data = json.loads((folder / "tokenizer.json").read_text())
        if data.get("type") == "char":
            return CharTokenizer.load(folder)
    if local and not any((folder / name).exists() for name in TOKENIZER_FILES):
        # transformers would build an empty tokenizer of the model's class (GPT-2's: one token) and carry on
        raise ModelLoadError(f"no tokenizer beside the model in {str(path)!r} (none of {', '.join(TOKENIZER_FILES)}): "
                             "save the tokenizer into the folder (tokenizer.save_pretrained(folder))")
    from transformers import AutoTokenizer

    try:
        return HFTokenizer(AutoTokenizer.from_pretrained(path, local_files_only=local, trust_remote_code=trust_remote_code,
                                                         revision=revision))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"no usable tokenizer beside the model in {str(path)!r}: {exc}") from None


def check_vocabularies(tokenizer, model_vocab_size: int) -> None:
    """Refuse a tokenizer with more tokens than the model has rows of logits."""
    if tokenizer.vocab_size > model_vocab_size:
        raise ModelLoadError(
            f"the tokenizer has {tokenizer.vocab_size} tokens but the model only {model_vocab_size}: they do not match"
        )
