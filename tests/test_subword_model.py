"""The embedded subword model: a byte-level BPE (4,096 tokens) and a small GPT-2 trained on license texts."""

import hashlib
import json
import math

import numpy as np
import pytest

from extras import require

require("lm")

from ttsample.errors import ParameterError
from ttsample.lm.backend import LanguageModel
from ttsample.lm.loading import EMBEDDED
from ttsample.lm.tiny import text_documents, train_tiny
from ttsample.lm.tokenizer import HFTokenizer

FOLDER = EMBEDDED["subword"]

# License-like prose written for this test (so it is in no training file): the model has never seen it.
HELDOUT = (
    "The authors of this package give you permission to copy, modify and share the program, provided that you keep "
    "this notice and the list of conditions below in every copy that you give to other people. The program is "
    "distributed in the hope that it will be useful, but without any warranty; the authors are not liable for any "
    "damages that arise from its use, whether in an action of contract or otherwise.\n"
)


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def lm():
    return LanguageModel.load("subword")


def test_shipped_subword_model_matches_its_record(lm):
    record = json.loads((FOLDER / "training.json").read_text())
    assert sha256(FOLDER / "model.safetensors") == record["sha256"]
    assert sha256(FOLDER / "tokenizer.json") == record["tokenizer_sha256"]
    assert "train-tiny --task subword" in record["command"] and record["task"] == "subword"
    tok = lm.tokenizer
    assert isinstance(tok, HFTokenizer)
    assert lm.vocab_size == tok.vocab_size == record["vocab_size"] >= 4096
    assert lm.max_length >= 256
    assert (tok.eos_id, tok.bos_id) == (lm.vocab_size - 2, lm.vocab_size - 1)
    assert (lm.model.config.eos_token_id, lm.model.config.bos_token_id) == (tok.eos_id, tok.bos_id)
    assert tok.hf.convert_ids_to_tokens([tok.eos_id, tok.bos_id]) == ["<eos>", "<bos>"]
    assert np.isclose(np.exp(lm.next_logprobs([(tok.bos_id,)])).sum(), 1.0, atol=1e-5)


def test_subword_tokenizer_round_trips(lm):
    tok = lm.tokenizer
    text = ("This License applies to any program.\n\n  Copyright (C) 2024 Jane Doe <jane@example.org>\t"
            "All rights reserved. Ünïcödé – ok .\n")
    ids = tok.encode(text)
    assert tok.decode(ids) == text  # byte-level: spaces, tabs, newlines and any character come back
    assert tok.decode(ids + [tok.eos_id]) == text  # special tokens are dropped
    assert tok.eos_id not in ids and tok.bos_id not in ids
    assert len(tok.encode(HELDOUT)) < len(HELDOUT) / 3  # real subwords, not bytes: ~4+ characters a token


def test_subword_training_is_reproducible(tmp_path):
    try:
        text_documents(1)
    except ParameterError:
        pytest.skip("no local license texts to train on")
    small = dict(steps=3, seed=5, corpus_chars=60_000, vocab_size=512, width=32, layers=1, batch=4)
    a = train_tiny("subword", tmp_path / "a", **small)
    b = train_tiny("subword", tmp_path / "b", **small)
    assert a["sha256"] == b["sha256"] == sha256(tmp_path / "a" / "model.safetensors")
    assert a["tokenizer_sha256"] == b["tokenizer_sha256"] == sha256(tmp_path / "b" / "tokenizer.json")
    assert a["corpus_chars"] == 60_000 and a["command"].startswith("ttsample train-tiny --task subword")
    model = LanguageModel.load(tmp_path / "a")
    assert model.vocab_size == a["vocab_size"] <= 512 and model.max_length == 256
    assert model.tokenizer.decode(model.tokenizer.encode("a license\n  text")) == "a license\n  text"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left behind


def test_subword_model_beats_a_uniform_guess_on_heldout_text(lm):
    """Mean next-token loss on unseen license prose, against log(4096) = 8.32 nats for a uniform guess.

    The threshold, 5.0 nats, is more than 3 nats (a factor 20 in perplexity) below uniform and 1.4 nats below
    a unigram model of the training corpus (6.41 nats on this text), so an untrained or broken model (8.3 or
    more) fails it, and passing needs the context to be used. The shipped model scores 4.51; the same model
    after 30 training steps scores 7.22 and would fail.
    """
    tok = lm.tokenizer
    ids = (tok.bos_id, *tok.encode(HELDOUT))
    logp = lm.next_logprobs([ids[:i] for i in range(1, len(ids))])  # one forward pass fills every prefix
    loss = -float(np.mean(logp[np.arange(len(ids) - 1), ids[1:]]))
    assert loss < 5.0 < math.log(lm.vocab_size) - 3
