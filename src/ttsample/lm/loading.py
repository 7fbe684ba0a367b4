"""What every backend does to load a causal LM by name: find its folder, read and check its config, parse a dtype.

No backend's engine is imported here (transformers' config reader only, once a model is named).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError, ParameterError

EMBEDDED = {name: Path(__file__).parent / "weights" / name for name in ("dyck", "text", "subword", "arithmetic")}
CAUSAL_LM_SUFFIXES = ("ForCausalLM", "LMHeadModel")  # how transformers names the causal LM classes
BACKENDS = ("hf", "vllm")


def model_folder(name_or_path) -> tuple[Path | str, bool]:
    """The folder of an embedded name or a local path, or a hub name as given; and whether it is local."""
    path = EMBEDDED.get(str(name_or_path), Path(name_or_path))
    local = Path(path).is_dir()
    if not local and (Path(path).is_absolute() or str(name_or_path).startswith((".", "~")) or Path(path).exists()):
        raise ModelLoadError(f"model folder {str(name_or_path)!r} does not exist (or is not a folder)")
    return (path if local else str(name_or_path)), local


def causal_config(name_or_path, path, **where):
    """The model's config, refused unless its architecture is a causal LM (a reward model's
    ``...ForSequenceClassification`` is not a policy)."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(path, **where)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read a model config from {str(name_or_path)!r}: {exc}") from None
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not any(a.endswith(CAUSAL_LM_SUFFIXES) for a in architectures):
        raise ModelLoadError(
            f"{str(name_or_path)!r} holds a {', '.join(architectures)}, not a causal language model "
            f"(an architecture ending in {' or '.join(CAUSAL_LM_SUFFIXES)}): ttsample samples from a causal LM's "
            "next-token law (a sequence-classification model is a reward model, not a policy)"
        )
    return config


def context_length(config) -> int:
    """The longest sequence the model reads, from its config (GPT-2's ``n_positions``, else
    ``max_position_embeddings``; 1,024 when it names neither)."""
    config = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    return int(getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None) or 1024)


def torch_dtype(dtype):
    """A torch dtype from its name (``"bfloat16"``) or itself; None stays None."""
    import torch

    if dtype is None:
        return None
    cast = getattr(torch, dtype, None) if isinstance(dtype, str) else dtype
    if not isinstance(cast, torch.dtype):
        raise ParameterError(f"dtype must be a torch dtype or its name (float32, bfloat16, ...), got {dtype!r}")
    return cast


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ParameterError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} (hf: transformers "
                             "with ttsample's KV-cache trie; vllm: a vLLM engine, the [vllm] extra)")
    return backend
