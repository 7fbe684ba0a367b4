"""A causal language model behind a KV cache on a prefix trie, with every call recorded in a ledger.

Token sequences are nodes of a trie named by int64 handles: handle 0 is the
empty sequence, ``extend(handles, tokens)`` gives the children (allocated on
first sight, without a model call; the same parent and token always give the
same handle), ``handle(seq)``, ``tokens(handle)`` and ``depth(handles)`` go
between handles and tokens. Handles stay valid for the model's lifetime: the
trie itself is small and never evicted, only the tensors are.

Cached per node, in one slot of a pool on the model's device: the keys and
values of every layer at the node's last position, the next-token log-probs
(full vocabulary, float32) and the final hidden state (what the LM head maps
to logits). A node's past is gathered from the pool in one indexing operation,
from the slots of its ancestors, read off the trie by climbing it (so what a
node costs does not grow with the model's context). A node whose
parent is cached costs one token: only its last token is fed, on its
ancestors' keys and values. Nodes are computed in batches of up to
``batch_size`` rows per forward pass: each row's past is left-padded to a
common length, its new tokens (one, or the chain down from its deepest cached
ancestor: a prompt is prefilled so, with an empty past) are right-padded, and
the model gets the 2D attention mask and the true ``position_ids``. Requested
nodes that share an uncomputed ancestor are computed in successive passes, so
the ancestor is fed once. Full-attention models only (no sliding windows).

The pool holds at most ``cache_bytes`` bytes: it grows by doubling up to that
(while it grows, the old and the new pool briefly coexist; a forward pass
also needs working memory for the gathered past, beyond the bound). When it
is full, the least recently used nodes are evicted, down to 7/8 of the bound
so that eviction is not paid on every call, and recomputed transparently when
needed again. A node counts as used when it is asked for or computed, and as
recent as its most recently used cached descendant; among equally recent
nodes the deeper goes first. So eviction never removes an ancestor before its
descendants, and the cached set stays closed under ancestors, which is what a
row's past needs. Answers are taken from the forward pass itself, so any
bound works, 0 (no caching) included.

``next_logprobs`` and ``prelogits`` take handles (an int64 array) or token
tuples and return numpy; ``next_logprobs_tensor`` returns a tensor on the
model's device for callers that stay there (``device="cuda"`` puts model and
pool on a GPU). ``head()`` gives the LM head's weight and bias, and
``uncached_next_logprobs`` a fresh forward pass per prefix, for checking.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import torch
from transformers.cache_utils import Cache, DynamicLayer

from ..arrays import grown
from ..errors import ModelLoadError, ParameterError
from ..ledger import Ledger
from .loading import check_backend, causal_config, context_length, model_folder, torch_dtype
from .prefix_trie import PrefixTrie
from .tokenizer import check_vocabularies, load_tokenizer


class LanguageModel(PrefixTrie):
    """A Hugging Face causal LM ``model`` and its ``tokenizer`` behind the trie cache.

    ``cache_bytes`` bounds the pool (``node_bytes`` is what one cached node takes), ``batch_size`` the rows of
    a forward pass, ``device`` is where the model and the pool live; ``ledger`` tallies what the answers cost.
    """

    def __init__(self, model, tokenizer, *, cache_bytes: int = 2 * 2**30, batch_size: int = 512,
                 device: str = "cpu", ledger: Ledger | None = None):
        if not isinstance(cache_bytes, (int, np.integer)) or cache_bytes < 0:
            raise ParameterError(f"cache_bytes must be a whole number of bytes >= 0, not {cache_bytes!r}")
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ParameterError(f"batch_size must be a whole number >= 1, not {batch_size!r}")
        super().__init__(int(model.config.vocab_size), context_length(model.config))
        self.device = _device(device)
        self.model = model.eval().to(self.device)
        self.tokenizer = tokenizer
        self.hidden_size = int(model.get_output_embeddings().weight.shape[1])
        self.cache_bytes = int(cache_bytes)
        self.batch_size = int(batch_size)
        self.ledger = ledger if ledger is not None else Ledger()
        # beside the trie, per handle: its slot in the pool (-1: not cached) and last use
        self._slot = np.full(self._parent.size, -1, dtype=np.int64)
        self._used = np.zeros(self._parent.size, dtype=np.int64)
        self._clock = 0
        # the pool: per slot a node's keys and values (layer, key/value, head, head_dim), log-probs and hidden
        # state on the device, and on the host its handle
        self._cache_argument = _cache_argument(model)
        self._kv_shape = _kv_shape(model.config)
        self._kv = torch.empty((0, *self._kv_shape), dtype=model.dtype, device=self.device)
        self._logp = torch.empty((0, self.vocab_size), dtype=torch.float32, device=self.device)
        self._hidden = torch.empty((0, self.hidden_size), dtype=torch.float32, device=self.device)
        self._owner = np.zeros(0, dtype=np.int64)  # -1 when free
        self._free = np.zeros(0, dtype=np.int64)  # a stack of free slots: its first _free_count entries
        self._free_count = 0
        self.node_bytes = (int(np.prod(self._kv_shape)) * self._kv.element_size()  # what one cached node takes
                           + 4 * (self.vocab_size + self.hidden_size))
        self._max_slots = self.cache_bytes // self.node_bytes
        self.peak_cached_bytes = 0

    @classmethod
    def load(cls, name_or_path: str | Path, *, dtype: str | torch.dtype | None = None, trust_remote_code: bool = False,
             revision: str | None = None, backend: str = "hf", **kwargs):
        """Load a causal LM: ``"dyck"``, ``"text"`` or ``"subword"`` (embedded), a local folder, or a hub name (needs network).

        ``dtype`` (e.g. ``"bfloat16"``) casts the weights; ``trust_remote_code`` and ``revision`` go to
        transformers. ``kwargs`` (``device``, ``cache_bytes``, ``batch_size``, ``ledger``) go to the constructor.
        ``backend="vllm"`` returns a ``VLLMBackend`` on a vLLM engine instead (its own ``kwargs``: engine
        options such as ``tensor_parallel_size``; ``ttsample.lm.vllm_backend``).
        A folder whose architecture is not a causal LM (a reward model's ``...ForSequenceClassification``) is
        refused, and so is a checkpoint that lacks weights the model needs: transformers would initialise them
        at random, and the samples would come from noise.
        """
        if check_backend(backend) == "vllm":
            from .vllm_backend import VLLMBackend

            return VLLMBackend.load(name_or_path, dtype=dtype, trust_remote_code=trust_remote_code, revision=revision,
                                    **kwargs)
        from transformers import AutoModelForCausalLM
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()  # what matters in its warnings is checked below, from the loading info
        hf_logging.disable_progress_bar()
        path, local = model_folder(name_or_path)
        where = dict(local_files_only=local, trust_remote_code=trust_remote_code, revision=revision)
        config = causal_config(name_or_path, path, **where)
        try:
            model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True, **where)
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"{str(name_or_path)!r} ({config.model_type}) is not a causal language model: {exc}") from None
        fresh = [*info.get("missing_keys", []), *(str(k[0]) if isinstance(k, tuple) else str(k)
                                                  for k in info.get("mismatched_keys", []))]
        if fresh:
            raise ModelLoadError(
                f"{str(name_or_path)!r}: the checkpoint lacks (or has the wrong shape for) {len(fresh)} weights the "
                f"model needs ({', '.join(sorted(fresh)[:5])}{', ...' if len(fresh) > 5 else ''}); transformers would "
                "initialise them at random"
            )
        cast = torch_dtype(dtype)
        if cast is not None:
            model = model.to(cast)
        tokenizer = load_tokenizer(path, local, trust_remote_code=trust_remote_code, revision=revision)
        check_vocabularies(tokenizer, model.config.vocab_size)
        return cls(model, tokenizer, **kwargs)

    # ---- queries ----

    def next_logprobs(self, prefixes) -> np.ndarray:
        """``log pi_ref(a | prefix)`` for every token ``a``, shape (len(prefixes), vocab); handles or token tuples."""
        return self.next_logprobs_tensor(prefixes).cpu().numpy()

    def torch_index(self, values: np.ndarray) -> torch.Tensor:
        """An int64 index tensor on the model's device."""
        return torch.as_tensor(np.asarray(values, dtype=np.int64), device=self.device)

    def next_logprobs_tensor(self, prefixes) -> torch.Tensor:
        """The same as ``next_logprobs``, as a float32 tensor left on the model's device."""
        return self._answers(prefixes)[0]

    def prelogits(self, prefixes) -> np.ndarray:
        """Final hidden state at the last position of each prefix (what the LM head maps to logits)."""
        return self._answers(prefixes)[1].cpu().numpy()

    def head(self) -> tuple[np.ndarray, np.ndarray]:
        """The LM head's weight (vocab, hidden) and bias (vocab,), zeros when it has none."""
        layer = self.model.get_output_embeddings()
        weight = layer.weight.detach().float().cpu().numpy().copy()
        bias = getattr(layer, "bias", None)
        bias = bias.detach().float().cpu().numpy().copy() if bias is not None else np.zeros(weight.shape[0])
        return weight, bias

    def draw_suffixes(self, handles, limits, allowed, eos, rng):
        """None: this backend has no sampler of its own; the task decodes token by token from the cached rows."""
        return None

    def uncached_next_logprobs(self, prefixes) -> np.ndarray:
        """The same answers computed afresh, one prefix per forward pass (for checking the cache)."""
        rows = []
        for h in self._prefix_handles(prefixes).tolist():
            seq = self.tokens(h)
            with torch.no_grad():
                logits = self.model(input_ids=torch.tensor([seq], device=self.device), use_cache=False).logits
            rows.append(torch.log_softmax(logits[0, -1].float(), dim=-1))
            self.ledger.forward_passes += 1
            self.ledger.tokens += len(seq)
        return torch.stack(rows).cpu().numpy() if rows else np.zeros((0, self.vocab_size), dtype=np.float32)

    @property
    def cached_bytes(self) -> int:
        """Bytes the pool holds now (its allocated slots, used or free)."""
        return self._owner.size * self.node_bytes

    # ---- answering ----

    def _answers(self, prefixes) -> tuple[torch.Tensor, torch.Tensor]:
        handles = self._prefix_handles(prefixes)
        unique, inverse = np.unique(handles, return_inverse=True)
        logp = torch.empty((unique.size, self.vocab_size), dtype=torch.float32, device=self.device)
        hidden = torch.empty((unique.size, self.hidden_size), dtype=torch.float32, device=self.device)
        slots = self._slot[unique]
        hit = slots >= 0
        self._clock += 1
        if hit.any():
            at, source = self._tensor(np.flatnonzero(hit)), self._tensor(slots[hit])
            logp.index_copy_(0, at, self._logp.index_select(0, source))
            hidden.index_copy_(0, at, self._hidden.index_select(0, source))
            self._used[unique[hit]] = self._clock
        waiting, at = unique[~hit], np.flatnonzero(~hit)
        self.ledger.cache_misses += waiting.size
        self.ledger.cache_hits += handles.size - waiting.size
        while waiting.size:
            leaves, count = self._plan(waiting)
            computed, logp_new, hidden_new = self._run(leaves[: self.batch_size], count[: self.batch_size])
            order = np.argsort(computed)
            pos = order[np.minimum(np.searchsorted(computed, waiting, sorter=order), computed.size - 1)]
            done = computed[pos] == waiting
            source, to = self._tensor(pos[done]), self._tensor(at[done])
            logp.index_copy_(0, to, logp_new.index_select(0, source))
            hidden.index_copy_(0, to, hidden_new.index_select(0, source))
            waiting, at = waiting[~done], at[~done]
        back = self._tensor(inverse.ravel())
        return logp.index_select(0, back), hidden.index_select(0, back)

    def _plan(self, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows runnable now for uncached ``targets``: each row's deepest node and its count of new tokens.

        Walking up level by level from the deepest targets, a row claims the uncached nodes above it until
        it meets a cached node (or the root): then its past is cached and it can run. Where rows meet on an
        uncached node, the row that started deepest claims it and the others wait for a later pass (their
        past will then include it); a target reached by a deeper row is computed by that row.
        """
        targets = targets[np.argsort(-self._depth[targets], kind="stable")]
        start = self._depth[targets]
        ready = np.zeros(targets.size, dtype=bool)
        top = start + 1  # depth of each row's topmost claimed node (none yet)
        rows = nodes = np.zeros(0, dtype=np.int64)  # rows still climbing, and the node each is at
        level = following = 0
        while rows.size or following < targets.size:
            if not rows.size:
                level = int(start[following])
            starting = following + np.flatnonzero(start[following:] == level)
            following += starting.size
            rows, nodes = np.concatenate([rows, starting]), np.concatenate([nodes, targets[starting]])
            cached = self._slot[nodes] >= 0
            ready[rows[cached]] = True
            rows, nodes = rows[~cached], nodes[~cached]
            order = np.lexsort((rows, nodes))
            rows, nodes = rows[order], nodes[order]
            first = np.ones(rows.size, dtype=bool)
            first[1:] = nodes[1:] != nodes[:-1]
            top[rows[first]] = level
            rows, nodes = rows[first], self._parent[nodes[first]]
            level -= 1
            if level == 0:
                ready[rows] = True
                rows, nodes = rows[:0], nodes[:0]
        return targets[ready], (start - top + 1)[ready]

    def _run(self, leaves: np.ndarray, count: np.ndarray):
        """One forward pass for rows ending at ``leaves`` with ``count`` new tokens each; stores what fits.

        Arrays are laid out by position, then row, as the buffer of keys and values is.
        """
        rows, fresh = leaves.size, int(count.max())
        new = np.zeros((fresh, rows), dtype=np.int64)  # right-padded new tokens
        anchor = leaves.copy()  # ends at each row's deepest cached ancestor (0: none)
        for k in range(fresh):
            live = np.flatnonzero(count > k)
            new[count[live] - 1 - k, live] = anchor[live]
            anchor[live] = self._parent[anchor[live]]
        new_mask = np.arange(fresh)[:, None] < count
        past_length = self._depth[anchor]
        width = int(past_length.max())
        paths = self._ancestor_slots(anchor, width)
        offset = np.arange(width)[:, None] - (width - past_length)  # left-padded past
        past_mask = offset >= 0
        past = np.where(past_mask, paths[np.arange(rows), np.maximum(offset, 0)], 0)
        positions = np.minimum(past_length + np.arange(fresh)[:, None], self.max_length - 1)
        mask = np.concatenate([past_mask, new_mask]).astype(np.int64)
        buffer, cache = self._past(past, width + fresh)
        out = self._feed(self._tensor(self._token[new].T), self._tensor(mask.T), self._tensor(positions.T), cache)
        self.ledger.forward_passes += 1
        self.ledger.tokens += int(count.sum())
        kv = buffer[width:].flatten(0, 1)  # (new position and row, layer, key/value, head, head_dim)
        logits = out.logits.transpose(0, 1).flatten(0, 1)
        hidden = out.hidden_states[-1].transpose(0, 1).flatten(0, 1)
        if not new_mask.all():
            real = self._tensor(np.flatnonzero(new_mask))
            kv, logits, hidden = (x.index_select(0, real) for x in (kv, logits, hidden))
        logp, hidden = torch.log_softmax(logits.float(), dim=-1), hidden.float()
        computed = new[new_mask]
        self._clock += 1
        self._used[computed] = self._clock
        self._store(computed, kv, logp, hidden)
        return computed, logp, hidden

    def _ancestor_slots(self, nodes: np.ndarray, width: int) -> np.ndarray:
        """(len(nodes), width): column d - 1 holds the pool slot of each node's ancestor at depth d (the node
        itself at its own depth), up to the node's depth; 0 beyond. Every one is cached: the cached set is closed
        under ancestors."""
        out = np.zeros((nodes.size, width), dtype=np.int64)
        node, depth = nodes.copy(), self._depth[nodes]
        for d in range(width, 0, -1):  # climb: a row joins when the climb reaches its own depth
            at = np.flatnonzero(depth >= d)
            out[at, d - 1] = self._slot[node[at]]
            node[at] = self._parent[node[at]]
        if (out < 0).any():
            raise RuntimeError("internal error: a cached node's ancestor is not cached")
        return out

    def _feed(self, ids, mask, positions, cache):
        """The model call: new tokens on a past, with the padding mask and the true positions."""
        with torch.no_grad():
            return self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                              output_hidden_states=True, **{self._cache_argument: cache})

    def _past(self, slots: np.ndarray, length: int):
        """A buffer (position, row, layer, key/value, head, head_dim) of ``length`` positions starting with the
        past in ``slots`` (position, row), and a cache over it that the model writes the new positions into."""
        width, rows = slots.shape
        buffer = torch.empty((length, rows, *self._kv_shape), dtype=self._kv.dtype, device=self.device)
        if width:
            torch.index_select(self._kv, 0, self._tensor(slots.ravel()), out=buffer[:width].view(-1, *self._kv_shape))
        return buffer, Cache(layers=[_PastLayer(buffer[:, :, layer], width) for layer in range(self._kv_shape[0])])

    # ---- the pool ----

    def _store(self, handles: np.ndarray, kv, logp, hidden) -> None:
        """Put computed nodes in the pool, evicting when it is full (a node that misses out stays uncached)."""
        need = handles.size - self._free_count
        if need > 0 and self._owner.size < self._max_slots:
            self._grow(min(self._max_slots, max(2 * self._owner.size, self._owner.size + need, 256)))
        keep = self._evict(handles) if handles.size > self._free_count else np.ones(handles.size, dtype=bool)
        take = self._free[self._free_count - int(keep.sum()) : self._free_count]
        self._free_count -= take.size
        if take.size:
            self._slot[handles[keep]] = take
            self._owner[take] = handles[keep]
            if not keep.all():
                source = self._tensor(np.flatnonzero(keep))
                kv, logp, hidden = (x.index_select(0, source) for x in (kv, logp, hidden))
            to = self._tensor(take)
            self._kv.index_copy_(0, to, kv)
            self._logp.index_copy_(0, to, logp)
            self._hidden.index_copy_(0, to, hidden)

    def _evict(self, incoming: np.ndarray) -> np.ndarray:
        """Keep the most recent 7/8 of the pool among the cached and the incoming nodes; which incoming to store.

        A node's recency is its last use or a cached (or incoming) descendant's, whichever is later, with the
        deeper of two equally recent nodes older: so a kept node's ancestors are kept.
        """
        used = np.flatnonzero(self._owner >= 0)
        nodes = np.concatenate([self._owner[used], incoming])
        recency, depth = self._used[nodes], self._depth[nodes]
        order = np.argsort(nodes)
        parent = order[np.minimum(np.searchsorted(nodes, self._parent[nodes], sorter=order), nodes.size - 1)]
        by_depth = np.argsort(-depth, kind="stable")
        ends = np.flatnonzero(np.diff(depth[by_depth])) + 1
        for level in np.split(by_depth, ends):  # deepest first; the ancestors of a node are among the nodes
            if depth[level[0]] > 1:
                np.maximum.at(recency, parent[level], recency[level])
        span = self.max_length + 1
        key = recency * span + (span - depth)
        target = self._max_slots - self._max_slots // 8
        kept = np.zeros(nodes.size, dtype=bool)
        if nodes.size <= target:
            kept[:] = True
        elif target > 0:
            kept[np.argpartition(key, nodes.size - target)[nodes.size - target :]] = True
        gone = used[~kept[: used.size]]
        self._slot[self._owner[gone]] = -1
        self._owner[gone] = -1
        self._free[self._free_count : self._free_count + gone.size] = gone
        self._free_count += gone.size
        return kept[used.size :]

    def _grow(self, capacity: int) -> None:
        old = self._owner.size
        for name in ("_kv", "_logp", "_hidden"):
            before = getattr(self, name)
            grown = torch.empty((capacity, *before.shape[1:]), dtype=before.dtype, device=self.device)
            grown[:old] = before
            setattr(self, name, grown)
        self._owner = np.concatenate([self._owner, np.full(capacity - old, -1, dtype=np.int64)])
        free = np.concatenate([self._free[: self._free_count], np.arange(capacity - 1, old - 1, -1)])
        self._free = np.concatenate([free, np.zeros(capacity - free.size, dtype=np.int64)])
        self._free_count = free.size
        self.peak_cached_bytes = max(self.peak_cached_bytes, self.cached_bytes)

    # ---- helpers ----

    def _allocate(self, parents: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        ids = super()._allocate(parents, tokens)
        self._used = grown(self._used, self._size, 0)
        self._slot = grown(self._slot, self._size, -1)  # -1: not cached
        return ids

    def _tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)


def _device(name: str) -> torch.device:
    """``torch.device(name)`` after checking that it can hold a tensor here."""
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError, TypeError) as exc:
        raise ParameterError(
            f"device {name!r} is not available here ({exc}); use device='cpu', or 'cuda' on a machine with a GPU"
        ) from None
    return device


def _cache_argument(model) -> str:
    """The name under which the model's forward takes a past: ``cache`` in recent transformers,
    ``past_key_values`` before (up to 5.19 at least). Passed under the wrong name it lands in ``**kwargs`` and
    is ignored: every row would be computed without its past."""
    parameters = inspect.signature(model.forward).parameters
    for name in ("cache", "past_key_values"):
        if name in parameters:
            return name
    raise ModelLoadError(f"{type(model).__name__}.forward takes no cache (neither `cache` nor `past_key_values`): "
                         "ttsample's backend feeds each node on its ancestors' keys and values, and needs one")


def _kv_shape(config) -> tuple[int, int, int, int]:
    """(layer, key/value, head, head_dim) of one position's keys and values, from a (decoder) config."""
    config = config.get_text_config(decoder=True)
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return (config.num_hidden_layers, 2, kv_heads, head_dim)


class _PastLayer(DynamicLayer):
    """One layer's keys and values over a buffer with room for the new positions.

    The model's update writes the new positions in place where ``DynamicLayer`` concatenates, so a forward
    pass copies the past once (gathering it from the pool), and the new keys and values land in the buffer.
    """

    def __init__(self, kv: torch.Tensor, width: int):
        super().__init__()
        # (row, head, position, head_dim) views of the buffer's (position, row, key/value, head, head_dim)
        self.keys, self.values = kv[:, :, 0].permute(1, 2, 0, 3), kv[:, :, 1].permute(1, 2, 0, 3)
        self.length, self.device, self.is_initialized = width, kv.device, True

    def update(self, key_states, value_states, *args, **kwargs):
        end = self.length + key_states.shape[-2]
        self.keys[:, :, self.length : end] = key_states
        self.values[:, :, self.length : end] = value_states
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]

    def get_seq_length(self) -> int:
        return self.length
