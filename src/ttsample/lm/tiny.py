"""Tiny GPT-2-style models trained by the project on CPU: Dyck words, or characters of local text.

``ttsample train-tiny --task dyck --out DIR`` trains in about a minute and
writes ``config.json``, ``model.safetensors``, ``tokenizer.json`` and
``training.json`` (the command, seed, steps, final loss and the weights'
SHA-256). The Dyck model that ships inside the package was made this way.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from .tokenizer import CharTokenizer

DYCK_SYMBOLS = ("(", ")", "[", "]", "<eos>", "<bos>")
PAIRS = {"(": ")", "[": "]"}


def dyck_word(rng: np.random.Generator, max_len: int) -> str:
    """A random Dyck word over two bracket types, at most ``max_len`` long (even)."""
    out, stack = [], []
    while True:
        room = max_len - len(out)
        if stack and (room <= len(stack) or rng.random() < 0.45):
            out.append(PAIRS[stack.pop()])
        elif not stack and (room < 2 or (out and rng.random() < 0.3)):
            return "".join(out)
        else:
            stack.append("(["[int(rng.integers(2))])
            out.append(stack[-1])


def dyck_corpus(n: int, max_len: int, noise: float, seed: int) -> list[str]:
    """Dyck words; a fraction ``noise`` get one symbol replaced at random, so the model is imperfect."""
    rng = np.random.default_rng(seed)
    words = []
    for _ in range(n):
        w = dyck_word(rng, max_len)
        if w and rng.random() < noise:
            i = int(rng.integers(len(w)))
            w = w[:i] + "()[]"[int(rng.integers(4))] + w[i + 1 :]
        words.append(w)
    return words


def text_corpus(max_chars: int = 400_000) -> str:
    """Local text that ships with the operating system (license texts), lower-cased."""
    roots = [Path("/usr/share/common-licenses"), Path("/usr/share/doc")]
    chunks, total = [], 0
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and path.stat().st_size < 200_000 and (root.name == "common-licenses" or path.name == "copyright"):
                try:
                    text = path.read_text(errors="ignore").lower()
                except OSError:
                    continue
                chunks.append(text)
                total += len(text)
                if total >= max_chars:
                    return "".join(chunks)[:max_chars]
    if not chunks:
        raise ParameterError("no local text found under /usr/share/common-licenses or /usr/share/doc")
    return "".join(chunks)


def _config(vocab: int, n_positions: int, width: int, layers: int):
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab, n_positions=n_positions, n_embd=width, n_layer=layers, n_head=4,
                      bos_token_id=vocab - 1, eos_token_id=vocab - 2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def train_tiny(task: str, out: Path, *, steps: int = 1500, seed: int = 0, width: int = 64, layers: int = 2,
               batch: int = 64, progress=None) -> dict:
    """Train a tiny model for ``task`` (dyck or text) and save it to ``out``; returns the training record."""
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    corpus = {}
    if task == "dyck":
        tokenizer = CharTokenizer(DYCK_SYMBOLS)
        words = dyck_corpus(20_000, 16, noise=0.1, seed=seed)
        seqs = [[tokenizer.bos_id] + tokenizer.encode(w) + [tokenizer.eos_id] for w in words]
        length = 18
    elif task == "text":
        text = text_corpus()
        corpus = {"corpus_chars": len(text), "corpus_sha256": hashlib.sha256(text.encode()).hexdigest()}
        symbols = tuple(sorted(set(text) - {"\r"})) + ("<eos>", "<bos>")
        tokenizer = CharTokenizer(symbols)
        ids = tokenizer.encode(text.replace("\r", ""))
        length = 32
        seqs = [[tokenizer.bos_id] + ids[i : i + length - 1] for i in range(0, len(ids) - length, length // 2)]
    else:
        raise ParameterError(f"unknown task {task!r}; choose dyck or text")
    pad = tokenizer.eos_id
    data = torch.full((len(seqs), length), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.bool)
    for i, s in enumerate(seqs):
        s = s[:length]
        data[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = True
    model = GPT2LMHeadModel(_config(tokenizer.vocab_size, 32, width, layers))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    start, loss = time.perf_counter(), None
    for step in range(steps):
        idx = torch.randint(len(seqs), (batch,), generator=gen)
        x, m = data[idx], mask[idx]
        labels = x.masked_fill(~m, -100)
        loss = model(input_ids=x, attention_mask=m.long(), labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # nothing half-written at ``out``
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save(tmp)
    digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
    record = {"command": f"ttsample train-tiny --task {task} --out DIR --steps {steps} --seed {seed}",
              "task": task, "seed": seed, "steps": steps, "final_loss": float(loss.detach()), "seconds": time.perf_counter() - start,
              "parameters": sum(p.numel() for p in model.parameters()), "sha256": digest, **corpus}
    (tmp / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return record
