"""Tiny GPT-2-style models trained by the project on CPU: Dyck words, characters or subwords of local text.

``ttsample train-tiny --task dyck --out DIR`` trains in about a minute and
writes ``config.json``, ``model.safetensors``, ``tokenizer.json`` and
``training.json`` (the command, seed, steps, final loss and the weights'
SHA-256). The models that ship inside the package were made this way.

``--task subword`` trains a byte-level BPE tokenizer (4,096 tokens, with
``<eos>`` and ``<bos>``) on a few MB of the operating system's license texts
and a GPT-2 with a context of 256 tokens on them (a few minutes on two
cores); its tokenizer is saved the Hugging Face way (``tokenizer.json`` and
``tokenizer_config.json``) and loads through ``AutoTokenizer``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from ..staging import staged_folder
from .tokenizer import CharTokenizer, HFTokenizer

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


def text_documents(max_chars: int = 400_000, *, lower: bool = True) -> list[str]:
    """Local texts that ship with the operating system (license texts), in sorted file order.

    One string per file, at most ``max_chars`` characters in all (the last one cut short).
    """
    roots = [Path("/usr/share/common-licenses"), Path("/usr/share/doc")]
    docs, total = [], 0
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            if path.is_file() and path.stat().st_size < 200_000 and (root.name == "common-licenses" or path.name == "copyright"):
                try:
                    text = path.read_text(errors="ignore")
                except OSError:
                    continue
                text = text.lower() if lower else text
                if total + len(text) >= max_chars:
                    docs.append(text[: max_chars - total])
                    return docs
                docs.append(text)
                total += len(text)
    if not docs:
        raise ParameterError("no local text found under /usr/share/common-licenses or /usr/share/doc")
    return docs


def text_corpus(max_chars: int = 400_000) -> str:
    """Local text that ships with the operating system (license texts), lower-cased."""
    return "".join(text_documents(max_chars, lower=True))


def _config(vocab: int, n_positions: int, width: int, layers: int):
    from transformers import GPT2Config

    return GPT2Config(vocab_size=vocab, n_positions=n_positions, n_embd=width, n_layer=layers, n_head=4,
                      bos_token_id=vocab - 1, eos_token_id=vocab - 2, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


DEFAULT_STEPS = {"dyck": 1500, "text": 1500, "subword": 1000, "arithmetic": 3000, "arithmetic-prm": 1500}
# the subword model: corpus, tokenizer, model and optimiser settings (the shipped model was made with these)
SUBWORD = {"corpus_chars": 4_000_000, "vocab_size": 4096, "context": 256, "width": 96, "layers": 3, "batch": 16,
           "lr": 3e-3, "warmup": 50, "heldout_fraction": 0.02}


def bpe_tokenizer(docs: list[str], vocab_size: int, context: int):
    """A byte-level BPE trained on ``docs``: ``vocab_size`` tokens, the last two ``<eos>`` and ``<bos>``.

    Returns the ``HFTokenizer`` (whose ``hf.save_pretrained`` writes ``tokenizer.json`` and
    ``tokenizer_config.json``, loaded back by ``load_tokenizer``) and the raw ``tokenizers.Tokenizer``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if vocab_size < 260:
        raise ParameterError(f"a byte-level BPE needs at least 260 tokens (256 bytes, merges, <eos>, <bos>); "
                             f"got {vocab_size}")
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 2, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=[], show_progress=False)
    raw.train_from_iterator(docs, trainer=trainer)
    raw.add_special_tokens(["<eos>", "<bos>"])
    hf = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>",
                                 clean_up_tokenization_spaces=False, model_max_length=context)
    return HFTokenizer(hf), raw


def _train_chars(task: str, steps: int, seed: int, width: int, layers: int, batch: int, progress):
    """The dyck and text models (character tokenizers, context 32)."""
    import torch
    from transformers import GPT2LMHeadModel

    torch.manual_seed(seed)
    corpus = {}
    if task == "dyck":
        tokenizer = CharTokenizer(DYCK_SYMBOLS)
        words = dyck_corpus(20_000, 16, noise=0.1, seed=seed)
        seqs = [[tokenizer.bos_id] + tokenizer.encode(w) + [tokenizer.eos_id] for w in words]
        length = 18
    else:
        text = text_corpus()
        corpus = {"corpus_chars": len(text), "corpus_sha256": hashlib.sha256(text.encode()).hexdigest()}
        symbols = tuple(sorted(set(text) - {"\r"})) + ("<eos>", "<bos>")
        tokenizer = CharTokenizer(symbols)
        ids = tokenizer.encode(text.replace("\r", ""))
        length = 32
        seqs = [[tokenizer.bos_id] + ids[i : i + length - 1] for i in range(0, len(ids) - length, length // 2)]
    data, mask = _padded(seqs, length, tokenizer.eos_id)
    model = GPT2LMHeadModel(_config(tokenizer.vocab_size, 32, width, layers))
    start = time.perf_counter()
    loss = _fit(model, data, mask, data.masked_fill(~mask, -100), steps, batch, seed, progress)
    return model, tokenizer, loss, start, corpus


def _fit(model, data, mask, labels, steps: int, batch: int, seed: int, progress, lr: float = 3e-3):
    """AdamW on random batches of rows of ``data`` (attention ``mask``; ``labels`` -100 where no loss is taken);
    returns the last batch's loss. The one training loop of the character models and the PRM."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    loss = None
    for step in range(steps):
        idx = torch.randint(len(data), (batch,), generator=gen)
        loss = model(input_ids=data[idx], attention_mask=mask[idx].long(), labels=labels[idx]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    return loss


def _padded(seqs: list[list[int]], length: int, pad: int):
    """Rows of token ids padded with ``pad`` to ``length``, and the mask of real tokens."""
    import torch

    data = torch.full((len(seqs), length), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.bool)
    for i, s in enumerate(seqs):
        s = s[:length]
        data[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = True
    return data, mask


ARITHMETIC = {"solutions": 30_000, "context": 64, "width": 96, "layers": 3, "batch": 64,
              "prm_step_error": 0.35, "prm_width": 128, "eval_problems": 100}


def _arithmetic_corpus(count: int, step_error: float, seed: int):
    """(problem, solution, labels) for ``count`` training problems (never a held-out one), difficulties uniform."""
    from . import arithmetic

    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        steps = int(rng.choice(arithmetic.DIFFICULTIES))
        problem = arithmetic.Problem(tuple(int(x) for x in rng.integers(1, 10, steps + 1)))
        if not problem.held_out:
            out.append((problem, *arithmetic.solution(problem, rng, step_error)))
    return out


def _train_arithmetic(steps: int, seed: int, width: int, layers: int, batch: int, progress):
    """The policy: a character GPT-2 on solutions with wrong steps (``arithmetic.STEP_ERROR``); the loss is taken on
    the solution and its <eos>, not on the prompt."""
    import torch
    from transformers import GPT2LMHeadModel

    from . import arithmetic

    torch.manual_seed(seed)
    tokenizer = CharTokenizer(arithmetic.SYMBOLS)
    corpus = _arithmetic_corpus(ARITHMETIC["solutions"], arithmetic.STEP_ERROR, seed)
    seqs, starts = [], []
    for problem, text, _ in corpus:
        seqs.append([tokenizer.bos_id] + tokenizer.encode(problem.prompt + text) + [tokenizer.eos_id])
        starts.append(1 + len(problem.prompt))
    data, mask = _padded(seqs, ARITHMETIC["context"], tokenizer.eos_id)
    labels = data.masked_fill(~mask, -100)
    for i, first in enumerate(starts):
        labels[i, :first] = -100  # the model predicts the solution from the prompt, not the prompt
    model = GPT2LMHeadModel(_config(tokenizer.vocab_size, ARITHMETIC["context"], width, layers))
    start = time.perf_counter()
    loss = _fit(model, data, mask, labels, steps, batch, seed, progress)
    record = {"solutions": len(corpus), "step_error": arithmetic.STEP_ERROR, "width": width, "layers": layers,
              "batch": batch, "labels": "the solution's tokens (not the prompt's)"}
    return model, tokenizer, loss, start, record


def _base_accuracy(folder: Path, seed: int) -> dict:
    """The trained policy's accuracy per difficulty on held-out problems (``arithmetic.base_accuracy``)."""
    from . import arithmetic
    from .backend import LanguageModel

    lm = LanguageModel.load(folder)
    count, draws = ARITHMETIC["eval_problems"], 8
    return {"problems": count, "draws": draws,
            **{str(k): arithmetic.base_accuracy(lm, k, count, draws, seed) for k in arithmetic.DIFFICULTIES}}


def _tagged_batch(tokenizer, corpus, tag: str):
    """The PRM's inputs for (problem, solution, labels) rows, padded, and each row's step labels at its tags (1 good,
    0 bad; -100 elsewhere)."""
    import torch

    from . import arithmetic
    from .prm import tagged

    tag_id = tokenizer.convert_tokens_to_ids(tag)
    seqs = []
    for problem, text, _ in corpus:
        lines = text.split(arithmetic.DELIMITER)
        steps_text = [line + arithmetic.DELIMITER for line in lines[:-1]] + [lines[-1]]
        seqs.append(tokenizer.encode(problem.prompt + "".join(tagged(s, tag, (arithmetic.DELIMITER,))
                                                              for s in steps_text), add_special_tokens=False))
    data, mask = _padded(seqs, 2 * ARITHMETIC["context"], tokenizer.eos_token_id)
    labels = torch.full_like(data, -100)
    for i, (_, _, good) in enumerate(corpus):
        labels[i, torch.nonzero(data[i] == tag_id).ravel()] = torch.tensor([int(g) for g in good])
    return data, mask, labels


def _prm_targets(tokenizer, data, mask, step_labels):
    """A causal PRM's targets (Math-Shepherd's convention): the next token everywhere, except that at each tag the
    next token is the good (``+``) or bad (``-``) one instead of the delimiter. The model shifts targets by one, so
    the token predicted at the tag sits one position after it."""
    import torch

    from .prm import CAUSAL_BAD, CAUSAL_GOOD

    good, bad = tokenizer.convert_tokens_to_ids(CAUSAL_GOOD), tokenizer.convert_tokens_to_ids(CAUSAL_BAD)
    targets = torch.where(mask, data, torch.full_like(data, -100))
    for i, j in torch.nonzero(step_labels >= 0).tolist():
        targets[i, j + 1] = good if step_labels[i, j] == 1 else bad
    return targets


def _step_accuracy(model, tokenizer, seed: int) -> dict:
    """The PRM's accuracy (good read as P(+) > P(-), against the true label) at the tags of held-out solutions with
    wrong steps at ``arithmetic.STEP_ERROR``: every tag, and the wrong steps' alone."""
    import torch

    from . import arithmetic
    from .prm import CAUSAL_BAD, CAUSAL_GOOD, PRMReading

    rng = np.random.default_rng(seed + 2)
    corpus = [(p, *arithmetic.solution(p, rng)) for k in arithmetic.DIFFICULTIES
              for p in arithmetic.problems(k, ARITHMETIC["eval_problems"], seed + 2, held_out=True)]
    data, mask, labels = _tagged_batch(tokenizer, corpus, PRMReading().tag)
    plus, minus = tokenizer.convert_tokens_to_ids(CAUSAL_GOOD), tokenizer.convert_tokens_to_ids(CAUSAL_BAD)
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=data, attention_mask=mask.long()).logits
    guess = (logits[..., plus] > logits[..., minus]).long()  # as the values read it: P(+) against P(-) at the tag
    at = labels >= 0
    bad = labels == 0
    return {"solutions": len(corpus), "tags": int(at.sum()), "accuracy": float((guess[at] == labels[at]).float().mean()),
            "bad_tags": int(bad.sum()), "bad_accuracy": float((guess[bad] == 0).float().mean())}


def prm_tokenizer(tag: str):
    """A Hugging Face tokenizer of the arithmetic characters and the PRM's bad token ``-``, one token each, with the
    PRM's step ``tag`` one token."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from . import arithmetic
    from .prm import CAUSAL_BAD

    chars = [c for c in arithmetic.SYMBOLS if c not in ("<eos>", "<bos>")] + [CAUSAL_BAD]  # "+" is a symbol
    vocab = {c: i for i, c in enumerate(chars)} | {"<unk>": len(chars)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    raw.add_special_tokens(["<eos>", "<bos>"])
    raw.add_tokens([tag])
    return PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>",
                                   pad_token="<eos>", clean_up_tokenization_spaces=False,
                                   model_max_length=ARITHMETIC["context"] * 2)


def _train_arithmetic_prm(steps: int, seed: int, width: int, layers: int, batch: int, progress):
    """The PRM: a causal GPT-2 read at the step tag after each step (``+`` good, ``-`` bad), trained on true step
    correctness (``arithmetic.solution``'s labels) of solutions with wrong steps at ``prm_step_error``, with the
    language-model loss on every other token: that loss teaches it part of the adding, which a classifier trained
    on one bit per step did not learn (docs/lm.md)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from .prm import PRMReading

    torch.manual_seed(seed)
    tag = PRMReading().tag
    tokenizer = prm_tokenizer(tag)
    corpus = _arithmetic_corpus(ARITHMETIC["solutions"], ARITHMETIC["prm_step_error"], seed + 1)
    data, mask, step_labels = _tagged_batch(tokenizer, corpus, tag)
    config = GPT2Config(vocab_size=len(tokenizer), n_positions=data.shape[1], n_embd=width, n_layer=layers, n_head=4,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                        pad_token_id=tokenizer.eos_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config)
    start = time.perf_counter()
    loss = _fit(model, data, mask, _prm_targets(tokenizer, data, mask, step_labels), steps, batch, seed, progress)
    good = float(np.mean([g for _, _, labels_ in corpus for g in labels_]))  # at the tags
    record = {"solutions": len(corpus), "step_error": ARITHMETIC["prm_step_error"], "tag": tag,
              "labels": "true step correctness: good while every step so far is right (the answer line: the answer "
                        "is the sum), as the token after each tag (+ good, - bad); the language-model loss on every "
                        "other token", "good_share": good, "width": width, "layers": layers, "batch": batch}
    return model, tokenizer, loss, start, record


def _train_subword(steps: int, seed: int, width: int, layers: int, batch: int, progress, corpus_chars: int,
                   vocab_size: int):
    """A byte-level BPE, and a GPT-2 trained on windows ``<bos>`` + 255 tokens of the token stream.

    Every document ends in ``<eos>``; a window starts anywhere, so ``<bos>`` means "start of a window".

    The last ``heldout_fraction`` of the stream is never trained on; the record gives the loss there.
    """
    import math

    import torch
    from transformers import GPT2LMHeadModel

    start = time.perf_counter()
    torch.manual_seed(seed)
    context, lr, warmup = SUBWORD["context"], SUBWORD["lr"], SUBWORD["warmup"]
    docs = [d.replace("\r", "") for d in text_documents(corpus_chars, lower=False)]
    text = "".join(docs)
    tokenizer, raw = bpe_tokenizer(docs, vocab_size, context)
    eos, bos = tokenizer.eos_id, tokenizer.bos_id
    assert (eos, bos) == (tokenizer.vocab_size - 2, tokenizer.vocab_size - 1)  # what _config declares
    stream = torch.tensor([t for enc in raw.encode_batch(docs, add_special_tokens=False) for t in enc.ids + [eos]],
                          dtype=torch.long)
    held = max(context, int(len(stream) * SUBWORD["heldout_fraction"]))
    train, heldout = stream[:-held], stream[-held:]
    if len(train) < 4 * context:
        raise ParameterError(f"the corpus gives only {len(stream)} tokens; too few for windows of {context}")
    model = GPT2LMHeadModel(_config(tokenizer.vocab_size, context, width, layers))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    gen = torch.Generator().manual_seed(seed)
    window = torch.arange(context - 1)
    starts = torch.full((batch, 1), bos, dtype=torch.long)
    loss = None
    for step in range(steps):
        # linear warm-up, then cosine decay to a tenth of the peak rate
        rate = lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.45 * (1 + math.cos(math.pi * step / steps)))
        for group in opt.param_groups:
            group["lr"] = rate
        offsets = torch.randint(len(train) - context + 2, (batch, 1), generator=gen)
        x = torch.cat([starts, train[offsets + window]], dim=1)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if progress is not None:
            progress(step + 1, steps)
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        pieces = [heldout[i : i + context - 1] for i in range(0, len(heldout) - 1, context - 1)]
        pieces = [p for p in pieces if len(p) > 1]
        for p in pieces:
            x = torch.cat([torch.tensor([bos]), p])[None]
            n = len(p)  # targets: every token of the piece (the model predicts p[0] from <bos>)
            total += float(model(input_ids=x, labels=x).loss) * n
            count += n
    record = {"corpus_chars": len(text), "corpus_sha256": hashlib.sha256(text.encode()).hexdigest(),
              "corpus_documents": len(docs), "corpus_tokens": len(stream), "vocab_size": tokenizer.vocab_size,
              "context": context, "width": width, "layers": layers, "batch": batch, "lr": lr, "warmup": warmup,
              "heldout_tokens": count, "heldout_loss": total / count}
    return model, tokenizer, loss, start, record


def train_tiny(task: str, out: Path, *, steps: int | None = None, seed: int = 0, width: int | None = None,
               layers: int | None = None, batch: int | None = None, progress=None, corpus_chars: int | None = None,
               vocab_size: int | None = None) -> dict:
    """Train a tiny model for ``task`` (dyck, text or subword) and save it to ``out``; returns the training record.

    ``steps``, ``width``, ``layers`` and ``batch`` default per task (``DEFAULT_STEPS``; 64, 2, 64 for dyck and
    text; ``SUBWORD`` for subword). ``corpus_chars`` and ``vocab_size`` apply to subword only (for quick tests;
    the shipped model uses the defaults in ``SUBWORD``).
    """
    if task not in DEFAULT_STEPS:
        raise ParameterError(f"unknown task {task!r}; choose {', '.join(DEFAULT_STEPS)}")
    steps = DEFAULT_STEPS[task] if steps is None else steps
    if steps < 1:
        raise ParameterError("steps must be >= 1")
    if task == "subword":
        model, tokenizer, loss, start, corpus = _train_subword(
            steps, seed, SUBWORD["width"] if width is None else width, SUBWORD["layers"] if layers is None else layers,
            SUBWORD["batch"] if batch is None else batch, progress,
            SUBWORD["corpus_chars"] if corpus_chars is None else corpus_chars,
            SUBWORD["vocab_size"] if vocab_size is None else vocab_size)
    else:
        if corpus_chars is not None or vocab_size is not None:
            raise ParameterError("corpus_chars and vocab_size apply to the subword task only")
        small = task in ("dyck", "text")
        train = _train_chars if small else (_train_arithmetic if task == "arithmetic" else _train_arithmetic_prm)
        default_width = 64 if small else ARITHMETIC["prm_width" if task == "arithmetic-prm" else "width"]
        sizes = (default_width if width is None else width,
                 (2 if small else ARITHMETIC["layers"]) if layers is None else layers,
                 (64 if small else ARITHMETIC["batch"]) if batch is None else batch)
        model, tokenizer, loss, start, corpus = (train(task, steps, seed, *sizes, progress) if small
                                                 else train(steps, seed, *sizes, progress))
    with staged_folder(Path(out), replace_folder=True) as tmp:  # nothing half-written at ``out``
        model.save_pretrained(tmp, safe_serialization=True)
        if not isinstance(tokenizer, (CharTokenizer, HFTokenizer)):  # the PRM's PreTrainedTokenizerFast
            tokenizer.save_pretrained(tmp)
            corpus["tokenizer_sha256"] = hashlib.sha256((tmp / "tokenizer.json").read_bytes()).hexdigest()
        elif isinstance(tokenizer, HFTokenizer):
            tokenizer.hf.save_pretrained(tmp)
            corpus["tokenizer_sha256"] = hashlib.sha256((tmp / "tokenizer.json").read_bytes()).hexdigest()
        else:
            tokenizer.save(tmp)
        if task == "arithmetic":
            corpus["base_accuracy"] = _base_accuracy(tmp, seed)
        elif task == "arithmetic-prm":
            corpus["heldout_step_accuracy"] = _step_accuracy(model, tokenizer, seed)
        digest = hashlib.sha256((tmp / "model.safetensors").read_bytes()).hexdigest()
        record = {"command": f"ttsample train-tiny --task {task} --out DIR --steps {steps} --seed {seed}",
                  "task": task, "seed": seed, "steps": steps, "final_loss": float(loss.detach()),
                  "seconds": time.perf_counter() - start, "parameters": sum(p.numel() for p in model.parameters()),
                  "sha256": digest, **corpus}
        (tmp / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
