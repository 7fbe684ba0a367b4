"""A generation task: a prompt, a horizon and a reward on one model, and its token trie.

The single place for what every language-model sampler shares:
- ``pi_ref``: the model's next-token law renormalised over the allowed tokens
  (every token but ``<bos>``), tempered and truncated by the task's
  ``decoding`` (``ttsample.lm.decoding``; the model's own law by default), at
  any node (``next_log_probs``) and along the path to it (``log_pi_ref``);
- ``tau``: ``exp(r / beta)`` for a reward tilt, or ``1{r > 0}`` for a 0/1
  constraint (``beta=None``), on the text of a leaf (``log_tau``);
- decoding: ``sample_suffix(nodes, rng, logits_hook)`` completes nodes to
  leaves under ``pi_ref`` (the hook reweights each step's next-token law:
  with the row of each response, so each can carry its own perturbation:
  AISP and guided decoding use it); where the law is the model's own (no
  decoding change, no hook, no stop string) and the backend has a sampler of
  its own (vLLM's), the whole draw is handed to it;
- the text of a node (``text``), with no enumeration;
- the exact ``V*`` by enumerating the trie, for horizons small enough.

Nodes are handles of ``self.tree``, a ``TokenTrie`` over the allowed tokens
(``<eos>`` ends a branch, the horizon bounds it). Each node is tied to the
backend's handle of ``prompt + response``, where the model's answers are
cached. Randomness is always passed in.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..arrays import grown
from ..errors import ParameterError, TreeShapeError
from ..trees import TokenTrie
from .decoding import Decoding
from .rewards import as_reward, checked, log_tau_of
from .steps import Steps, StepTree

# hook(rows, nodes, log_probs) -> log-weights over the allowed tokens, (m, A) torch tensors on the model's device;
# rows: which of the batch the caller passed each node is (in sample_suffix, the row of the response being
# decoded, so that each response can carry its own perturbation, as AISP's do); the task renormalises the result
LogitsHook = Callable[[np.ndarray, np.ndarray, "torch.Tensor"], "torch.Tensor"]


def generation_actions(tokenizer) -> np.ndarray:
    """The tokens the generation tree branches on: every token but <bos>, in id order.

    A tokenizer whose <bos> is its <eos> (GPT-2's) keeps it: it ends responses.
    """
    bos = tokenizer.bos_id if tokenizer.bos_id != tokenizer.eos_id else None
    return np.array([t for t in range(tokenizer.vocab_size) if t != bos])


def prompt_ids(lm, prompt: str | tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(prompt, str):
        return (lm.tokenizer.bos_id, *lm.tokenizer.encode(prompt))
    return tuple(int(t) for t in prompt)


class GenerationTask:
    def __init__(self, lm, prompt: str | tuple[int, ...], horizon: int, reward: Callable[[str], float], *,
                 beta: float | None = None, decoding: Decoding | None = None, chat: bool = False,
                 system: str | None = None, stop: tuple[str, ...] = (), step_rule: Steps | None = None):
        """``chat``: the prompt is the user's turn of the tokenizer's chat template (after ``system``'s); the
        reward still receives the prompt as given. ``stop``: strings that end a response as ``<eos>`` does: a
        response ends at the first token after which its text contains one (the text keeps it), so the trie's
        leaves, and pi*, are over stopped responses. ``step_rule``: the samplers' tree is the step tree over the
        token trie (``ttsample.lm.steps``): an action is a step, the depth counts steps; ``horizon`` still
        bounds the tokens."""
        if not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ParameterError(f"the horizon must be an integer >= 1, got {horizon!r}")
        if beta is not None and not (isinstance(beta, (int, float, np.integer, np.floating)) and 0 < beta < np.inf):
            raise ParameterError(f"beta must be a finite number > 0 (omit it for a 0/1 constraint), got {beta!r}")
        self.lm = lm
        if system is not None and not chat:
            raise ParameterError("a system prompt goes into the chat template: give chat=True (--chat) with it")
        if chat and not isinstance(prompt, str):
            raise ParameterError("chat=True lays out a prompt text, not token ids")
        self.prompt = tuple(lm.tokenizer.chat_ids(prompt, system)) if chat else prompt_ids(lm, prompt)
        if len(self.prompt) + horizon > lm.max_length:
            raise ParameterError(
                f"prompt ({len(self.prompt)} tokens) + horizon ({horizon}) exceed the model's context of {lm.max_length}"
            )
        self.horizon, self.beta = int(horizon), beta
        self.decoding = Decoding() if decoding is None else decoding
        self.actions = generation_actions(lm.tokenizer)
        contiguous = bool(np.all(np.diff(self.actions) == 1)) and self.actions[0] == 0
        self._columns = slice(0, self.actions.size) if contiguous else lm.torch_index(self.actions)  # a view when it can
        self.eos_action = int(np.flatnonzero(self.actions == lm.tokenizer.eos_id)[0])
        self.stop = tuple(stop)
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ParameterError(f"stop strings must be non-empty texts, got {stop!r}")
        self.step_rule = step_rule
        if step_rule is None:
            self.token_tree = self.tree = TokenTrie(int(self.actions.size), self.horizon, eos=self.eos_action,
                                                    stop=self._stopped if self.stop else None)
        else:
            _check_delimiters(lm.tokenizer, step_rule)
            self.tree = StepTree(step_rule, int(self.actions.size), self.horizon, self.eos_action,
                                 lambda acts: lm.tokenizer.decode([int(self.actions[a]) for a in acts]),
                                 stop=self._stopped if self.stop else None)
            self.token_tree = self.tree.tokens
        self.prompt_text = prompt if isinstance(prompt, str) else lm.tokenizer.decode(self.prompt[1:])  # after <bos>
        self.chat, self.system = bool(chat), system
        self.reward_function = as_reward(reward)  # a Reward carries its name, range and prefix check
        # the range it declares: over responses of at most horizon tokens, each adding at most max_token_chars
        self.reward_range = self.reward_function.range(self.horizon * lm.tokenizer.max_token_chars)
        self._score = checked(self.reward_function, lm.ledger, self.reward_range)
        self._known = 1  # trie nodes the arrays below describe
        self._backend = np.array([lm.handle(self.prompt)], dtype=np.int64)  # trie node -> model handle
        self._log_pi = np.zeros(1)  # log pi_ref(node | prompt); NaN until known

    # ---- the model along the trie ----

    def _grown(self) -> None:
        """Extend the per-node arrays to every node the trie has handed out."""
        trie = self.token_tree
        n = trie.num_nodes
        if n > self._known:
            self._backend, self._log_pi = grown(self._backend, n, -1), grown(self._log_pi, n, np.nan)
            new = np.arange(self._known, n)
            self._known = n
            depth = trie.depth_of(new)
            for h in np.unique(depth):  # shallowest first: a new node's parent is known, or new and done before it
                level = new[depth == h]
                tokens = self.actions[trie.action(level)]
                self._backend[level] = self.lm.extend(self._backend[trie.parent(level)], tokens)

    def model_handles(self, nodes: np.ndarray) -> np.ndarray:
        """The backend's handle of ``prompt + response`` for each node."""
        self._grown()
        return self._backend[np.asarray(nodes, dtype=np.int64)]

    def next_log_probs_tensor(self, nodes: np.ndarray, logits_hook: LogitsHook | None = None,
                              rows: np.ndarray | None = None):
        """``log pi_ref(a | node)`` over the allowed tokens, a (len(nodes), A) tensor on the model's device."""
        import torch

        nodes = np.asarray(nodes, dtype=np.int64)
        if self.tree.is_leaf(nodes).any():
            raise ParameterError("a leaf has no next token: it ended with <eos> or reached the horizon")
        q = self.decoding.apply(self.lm.next_logprobs_tensor(self.model_handles(nodes))[:, self._columns])
        if logits_hook is not None:
            q = logits_hook(np.arange(nodes.size) if rows is None else rows, nodes, q)
        return torch.log_softmax(q, dim=1)

    def next_log_probs(self, nodes: np.ndarray, logits_hook: LogitsHook | None = None) -> np.ndarray:
        """``log pi_ref(a | node)`` over the allowed tokens, shape (len(nodes), A); one batched model call."""
        return self.next_log_probs_tensor(nodes, logits_hook).cpu().numpy()

    def log_pi_ref(self, nodes: np.ndarray) -> np.ndarray:
        """``log pi_ref(response | prompt)`` for each node (one model call per depth still unknown)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        self._grown()
        unknown = np.unique(nodes[np.isnan(self._log_pi[nodes])])
        if unknown.size:
            parents = self.token_tree.parent(unknown)
            self.log_pi_ref(parents)  # ancestors first
            distinct, where = np.unique(parents, return_inverse=True)
            q = self.next_log_probs_tensor(distinct)
            picked = q[self.lm.torch_index(where), self.lm.torch_index(self.token_tree.action(unknown))].cpu().numpy()
            self._log_pi[unknown] = self._log_pi[parents] + picked
        return self._log_pi[nodes]

    def proposal_log_prob(self, nodes: np.ndarray) -> np.ndarray:
        """``log pi_ref(last action | parent)`` for non-root nodes of ``tree``: of the last token, or of the last
        step (the sum over its tokens) on a step tree (``-inf`` below a token that decoding truncates)."""
        nodes = np.asarray(nodes, dtype=np.int64)
        return self._log_prob_below(nodes, self.tree.parent(nodes))

    def _log_prob_below(self, nodes: np.ndarray, above: np.ndarray) -> np.ndarray:
        """``log pi_ref(node | above)`` for ancestors ``above`` of the nodes."""
        log_pi = self.log_pi_ref(nodes)
        with np.errstate(invalid="ignore"):
            return np.where(np.isneginf(log_pi), -np.inf, log_pi - self.log_pi_ref(above))

    def prelogits(self, nodes: np.ndarray) -> np.ndarray:
        """The model's final hidden state after each node's tokens (what its LM head reads)."""
        return self.lm.prelogits(self.model_handles(nodes))

    # ---- decoding ----

    def draw_children(self, nodes: np.ndarray, rng: np.random.Generator, logits_hook: LogitsHook | None = None,
                      rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One child per node from ``pi_ref`` (reweighted by the hook): child handles and their log-probabilities.

        Drawn on the model's device by a torch generator seeded from ``rng``;
        only the chosen tokens and their log-probabilities leave it.
        """
        return draw_children_of([self], [nodes], rng, [logits_hook], None if rows is None else [rows])[0]

    def sample_suffix(self, nodes: np.ndarray, rng: np.random.Generator,
                      logits_hook: LogitsHook | None = None) -> np.ndarray:
        """Complete each node to a leaf, one batched model call per step; returns the leaves."""
        return sample_suffixes([self], [nodes], rng, [logits_hook])[0]

    # ---- reward and text ----

    def tokens(self, nodes: np.ndarray) -> list[tuple[int, ...]]:
        """The response tokens of each node (after the prompt; ``<eos>`` included where it ended)."""
        return [tuple(int(self.actions[a]) for a in path) for path in self.token_tree.path(nodes)]

    def text(self, nodes: np.ndarray) -> list[str]:
        return [self.lm.tokenizer.decode(t) for t in self.tokens(nodes)]

    def max_log_tau(self) -> float | None:
        """A bound on ``log tau`` over every response: 0 for a constraint, ``high / beta`` for a tilt whose reward
        declares its range ``(low, high)``, None for a tilt whose reward declares none."""
        if self.beta is None:
            return 0.0
        return None if self.reward_range is None else self.reward_range[1] / self.beta

    def _stopped(self, nodes: np.ndarray) -> np.ndarray:
        return np.array([any(s in text for s in self.stop) for text in self.text(nodes)], dtype=bool)

    def score(self, texts: list[str]) -> np.ndarray:
        """The reward of each response text to this prompt: one batch (one call of a batched reward)."""
        return self._score([self.prompt_text] * len(texts), list(texts))

    def reward(self, text: str) -> float:
        return float(self.score([text])[0])

    def rewards(self, leaves: np.ndarray) -> np.ndarray:
        """The reward of each leaf's response, in one batch."""
        return self.score(self.text(leaves))

    def log_tau(self, leaves: np.ndarray) -> np.ndarray:
        """``log tau`` at leaves: ``r / beta``, or ``0 / -inf`` for a constraint."""
        return log_tau_of(self.rewards(leaves), self.beta)

    # ---- exact values, by enumeration ----

    def grow_support(self, max_nodes: int = 1 << 20) -> None:
        """Hand out every token node that ``pi_ref`` reaches (refused beyond ``max_nodes``): the whole trie under the
        model's own law; under top-k or top-p only the kept tokens' subtrees, which keeps a confident model's
        trie small enough to enumerate at horizons where the whole trie is not."""
        tree = self.token_tree
        if self.decoding.is_identity:
            tree.grow_all(max_nodes)
            return
        frontier = np.zeros(1, dtype=np.int64)
        while frontier.size:
            inner = frontier[~tree.is_leaf(frontier)]
            if not inner.size:
                return
            rows, cols = np.nonzero(np.isfinite(self.next_log_probs(inner)))
            if tree.num_nodes + rows.size > max_nodes:
                raise TreeShapeError(f"pi_ref ({self.decoding.describe()}) reaches more than {max_nodes:,} nodes, "
                                     "too many to enumerate; lower the horizon, top_k or top_p")
            frontier = tree.child(inner[rows], cols)

    def exact_log_values(self, max_nodes: int = 1 << 20, leaf_log_tau: np.ndarray | None = None) -> np.ndarray:
        """``log V*(v) = log E_{pi_ref}[tau | v]`` for every node of the trie grown over ``pi_ref``'s support
        (``grow_support``; -inf off it), refused beyond ``max_nodes``.

        ``leaf_log_tau``: ``log tau`` at ``tree.leaf_nodes()`` of the grown trie, where the caller has scored them
        already (the reward is then not called again).
        """
        tree = self.token_tree  # V* is a function of the token prefix, whatever the steps
        self.grow_support(max_nodes)
        every = np.arange(tree.num_nodes, dtype=np.int64)
        leaf = tree.is_leaf(every)
        log_v = np.full(every.size, -np.inf)
        log_v[leaf] = self.log_tau(every[leaf]) if leaf_log_tau is None else leaf_log_tau
        depth = tree.depth_of(every)
        log_q = np.zeros(every.size)
        log_q[1:] = self._log_prob_below(every[1:], tree.parent(every[1:]))  # of the token, whatever the steps
        for h in range(tree.depth, 0, -1):  # V*(v) = sum_a pi_ref(a | v) V*(child), deepest level first
            kids = every[depth == h]
            np.logaddexp.at(log_v, tree.parent(kids), log_q[kids] + log_v[kids])
        return log_v


def _check_delimiters(tokenizer, steps: Steps) -> None:
    """Refuse a delimiter that no step can end with: one the tokenizer cannot write, or whose shortest spelling we
    know (its encoding) is longer than ``max_step_tokens``."""
    for d in steps.delimiters:
        try:
            ids = tokenizer.encode(d)
        except ParameterError as exc:
            raise ParameterError(f"the step delimiter {d!r} cannot be generated by this model: {exc}") from None
        if tokenizer.decode(ids) != d:
            raise ParameterError(f"the step delimiter {d!r} cannot be generated by this model: its tokenizer "
                                 f"writes it back as {tokenizer.decode(ids)!r}")
        if steps.max_step_tokens is not None and len(ids) > steps.max_step_tokens:
            raise ParameterError(f"the step delimiter {d!r} takes {len(ids)} tokens, more than max_step_tokens = "
                                 f"{steps.max_step_tokens}: no step would ever end with it; raise --max-step-tokens")


def draw(log_probs, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One action per row of a (rows, A) log-probability tensor, by inverse transform on its device: actions and
    their log-probabilities, as arrays. The torch generator is seeded from ``rng`` (one draw of it per call)."""
    import torch

    generator = torch.Generator(device=log_probs.device).manual_seed(int(rng.integers(2**63 - 1)))
    # inverse transform: far faster than torch.multinomial on wide rows; u in (0, total] never picks a zero
    cdf = torch.cumsum(log_probs.exp(), dim=1, dtype=torch.float64)
    u = (1.0 - torch.rand((log_probs.shape[0], 1), generator=generator, device=log_probs.device,
                          dtype=torch.float64)) * cdf[:, -1:]
    actions = torch.searchsorted(cdf, u).clamp_(max=log_probs.shape[1] - 1)
    return actions[:, 0].cpu().numpy(), log_probs.gather(1, actions)[:, 0].double().cpu().numpy()


def sample_suffixes(tasks: list[GenerationTask], nodes: list[np.ndarray], rng: np.random.Generator,
                    hooks: list[LogitsHook | None] | None = None) -> list[np.ndarray]:
    """Complete the nodes of several tasks on one model (several prompts) to leaves: one model call per step
    serves every task's open rows. Returns each task's leaves.

    ``hooks[i]`` reweighs task ``i``'s rows; the rows it is told are numbered across the tasks in order (task
    ``i``'s first node is row ``len(nodes[0]) + ... + len(nodes[i - 1])``), so one table of per-row state can
    serve every task's hook.
    """
    hooks = [None] * len(tasks) if hooks is None else hooks
    out = [np.asarray(n, dtype=np.int64).copy() for n in nodes]
    if all(h is None for h in hooks) and _native(tasks, out, rng):
        return out
    offsets = np.cumsum([0] + [o.size for o in out])
    open_ = [np.flatnonzero(~t.tree.is_leaf(o)) for t, o in zip(tasks, out)]
    while any(o.size for o in open_):
        live = [i for i, o in enumerate(open_) if o.size]
        drawn = draw_children_of([tasks[i] for i in live], [out[i][open_[i]] for i in live], rng,
                                 [hooks[i] for i in live], [offsets[i] + open_[i] for i in live])
        for i, (child, _) in zip(live, drawn):
            rows = open_[i]
            out[i][rows] = child
            open_[i] = rows[~tasks[i].tree.is_leaf(child)]
    return out


def _native(tasks: list[GenerationTask], out: list[np.ndarray], rng: np.random.Generator) -> bool:
    """Complete the nodes in ``out`` (in place) by the backend's own sampler, where it has one and the law to draw
    is the model's over the allowed tokens (no decoding, no stop strings); False where it cannot."""
    lm = tasks[0].lm
    truncated = [t.step_rule is not None and t.step_rule.max_steps is not None for t in tasks]  # a stop of ours
    if any(t.lm is not lm or not t.decoding.is_identity or t.stop or cut for t, cut in zip(tasks, truncated)):
        return False
    if any(not np.array_equal(t.actions, tasks[0].actions) for t in tasks):
        return False
    open_ = [np.flatnonzero(~t.tree.is_leaf(o)) for t, o in zip(tasks, out)]
    handles = np.concatenate([t.model_handles(o[rows]) for t, o, rows in zip(tasks, out, open_)])
    limits = np.concatenate([t.horizon - t.token_tree.depth_of(o[rows]) for t, o, rows in zip(tasks, out, open_)])
    if not handles.size:
        return True
    suffixes = lm.draw_suffixes(handles, limits, tasks[0].actions, int(lm.tokenizer.eos_id), rng)
    if suffixes is None:
        return False
    action_of = np.full(lm.vocab_size, -1, dtype=np.int64)
    action_of[tasks[0].actions] = np.arange(tasks[0].actions.size)
    start = 0
    for task, o, rows in zip(tasks, out, open_):
        mine = suffixes[start:start + rows.size]
        start += rows.size
        length = np.array([len(s) for s in mine], dtype=np.int64)
        table = np.zeros((rows.size, int(length.max(initial=0))), dtype=np.int64)  # the drawn tokens, padded
        for i, suffix in enumerate(mine):
            table[i, :len(suffix)] = suffix
        if (action_of[table][np.arange(table.shape[1]) < length[:, None]] < 0).any():  # the padding aside
            raise RuntimeError("internal error: the backend's own sampler drew a token outside the allowed ones")
        node = o[rows]
        for k in range(table.shape[1]):  # down the task's trie, a token at a time, every row at once
            live = np.flatnonzero(length > k)
            node[live] = task.token_tree.child(node[live], action_of[table[live, k]])
        if not task.tree.is_leaf(node).all():
            raise RuntimeError("internal error: a draw of the backend's own sampler did not end at a leaf")
        o[rows] = node
    return True


def draw_children_of(tasks: list[GenerationTask], nodes: list[np.ndarray], rng: np.random.Generator,
                     hooks: list[LogitsHook | None] | None = None,
                     rows: list[np.ndarray] | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """One child per node from ``pi_ref`` (each task's decoding and hook applied) for several tasks on one model:
    one model call and one draw serve them all. Returns each task's (child handles, their log-probabilities).

    On a step tree the child is the next step: tokens are drawn until each row's step ends (one model call per
    token for the rows still inside a step), and its log-probability is the sum over the step's tokens.
    ``hooks[i]`` is told the rows ``rows[i]`` (default: 0, 1, ... within task ``i``).
    """
    if any(t.lm is not tasks[0].lm for t in tasks):
        raise ParameterError("tasks decoded together must share one model")
    nodes = [np.asarray(v, dtype=np.int64) for v in nodes]
    for task, v in zip(tasks, nodes):
        if task.tree.is_leaf(v).any():
            raise ParameterError("a leaf has no next token: it ended with <eos> or reached the horizon")
    rows = [np.arange(v.size) for v in nodes] if rows is None else [np.asarray(r) for r in rows]
    out = _draw_tokens_of(tasks, nodes, rng, hooks, rows)  # fresh arrays, one pair per task: updated in place
    inside = [np.flatnonzero(~t.tree.ends_step(c)) if t.step_rule is not None else np.empty(0, dtype=np.int64)
              for t, (c, _) in zip(tasks, out)]
    while any(i.size for i in inside):
        live = [k for k, i in enumerate(inside) if i.size]
        drawn = _draw_tokens_of([tasks[k] for k in live], [out[k][0][inside[k]] for k in live], rng,
                                None if hooks is None else [hooks[k] for k in live], [rows[k][inside[k]] for k in live])
        for k, (child, log_q) in zip(live, drawn):
            at = inside[k]
            out[k][0][at] = child
            out[k][1][at] += log_q
            inside[k] = at[~tasks[k].tree.ends_step(child)]
    return out


def _draw_tokens_of(tasks: list[GenerationTask], nodes: list[np.ndarray], rng: np.random.Generator,
                    hooks: list[LogitsHook | None] | None, rows: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """One token per node (``draw_children_of`` on the token tries): its child handles and log-probabilities."""
    import torch

    handles = np.concatenate([t.model_handles(v) for t, v in zip(tasks, nodes)])
    q_all = tasks[0].lm.next_logprobs_tensor(handles)[:, tasks[0]._columns]
    parts, start = [], 0
    for i, (task, v) in enumerate(zip(tasks, nodes)):
        q = task.decoding.apply(q_all[start:start + v.size])
        start += v.size
        if hooks is not None and hooks[i] is not None:
            q = hooks[i](rows[i], v, q)
        parts.append(torch.log_softmax(q, dim=1))
    actions, log_q = draw(torch.cat(parts), rng)
    out, start = [], 0
    for task, v in zip(tasks, nodes):
        out.append((task.token_tree.child(v, actions[start:start + v.size]), log_q[start:start + v.size]))
        start += v.size
    return out
