"""AISP: adaptive importance sampling on pre-logits (Kanai et al., arXiv 2510.26219), on a generation task.

A test-time aligner, not an exact sampler of ``pi*`` (ALGORITHMS.md §7). For
the first ``window`` generated positions it adds a Gaussian perturbation
``v_t ~ N(u_t, sigma^2 I)`` to the pre-logits ``z_t`` (the final hidden state
the LM head reads) and decodes from ``softmax(W (z_t + v_t) + b)``, that is,
the model's logits plus ``W v_t``; later positions decode normally. The means
``U = (u_1 .. u_window)`` adapt over ``iterations`` rounds of ``candidates``
responses: with rewards ``r_i``,

    s_i = r_i / lambda - ((1 - alpha) / sigma^2) sum_t <u_t, v_{i,t}>,   w = softmax(s),   U <- sum_i w_i V_i,

and the best-reward response over all rounds is kept. ``decode="sample"``
draws each token from the perturbed law (the candidates differ by their
perturbation and their draws); ``decode="argmax"`` takes its most likely
token (the candidates differ by their perturbation only, as in the paper's
greedy variant). As ``lambda -> 0`` the weights put all their mass on the best
candidate of each round: best-of-n with a moving proposal.

Every round's candidates of every chain are decoded in one batch through the
task's decoding hook (no second decoding loop); ``n`` chains (independent
AISP runs on the same prompt) run side by side, and ``sample_aisp_prompts``
runs them for several prompts at once (one model call per token position for
all prompts).
"""

from __future__ import annotations

import numpy as np

from ...errors import ParameterError
from ...logspace import effective_sample_size, logsumexp
from ...samplers.base import Progress, SampleResult, check_sample_count
from ..task import sample_suffixes
from .base import Budget, Interrupted, lm_run

DECODE = ("sample", "argmax")


def aisp_update(u: np.ndarray, v: np.ndarray, rewards: np.ndarray, sigma: float, lam: float, alpha: float):
    """One mean update: ``u`` (window, d), ``v`` (n, window, d), rewards (n,) -> new ``u`` and the log-weights."""
    s = np.asarray(rewards, dtype=np.float64) / lam - ((1.0 - alpha) / sigma**2) * np.einsum("td,ntd->n", u, v)
    log_w = s - logsumexp(s)  # a softmax that survives rewards of any scale
    return np.einsum("n,ntd->td", np.exp(log_w), v), log_w


def perturbation_hook(task, perturbations: np.ndarray, decode: str = "sample", kl: np.ndarray | None = None):
    """A decoding hook adding ``W v`` to the logits of row ``r`` at position ``t < window`` (``perturbations`` (rows, window, d)).

    With ``decode="argmax"`` the hook leaves only each row's most likely token.
    ``kl``: per-row running sum of the token-level KL(perturbed || base), updated in place.
    """
    import torch

    weight, _ = task.lm.head()
    device = task.lm.device
    w_allowed = torch.as_tensor(weight[task.actions], device=device)  # (A, d): the head's rows for the allowed tokens
    pert = torch.as_tensor(perturbations, dtype=w_allowed.dtype, device=device)
    window = perturbations.shape[1]

    def hook(rows, nodes, log_probs):
        depth = task.token_tree.depth_of(nodes)  # the perturbation is per token position, whatever the steps
        out = log_probs.clone()
        inside = np.flatnonzero(depth < window)
        if inside.size:
            shift = torch.einsum("rd,ad->ra", pert[rows[inside], depth[inside]], w_allowed)
            out[inside] = log_probs[inside] + shift.to(log_probs.dtype)
        if kl is not None:
            new = torch.log_softmax(out, dim=1)
            kl[rows] += (new.exp() * (new - torch.log_softmax(log_probs, dim=1))).sum(dim=1).double().cpu().numpy()
        if decode == "argmax":
            best = out.argmax(dim=1, keepdim=True)
            out = torch.full_like(out, -np.inf).scatter_(1, best, 0.0)
        return out

    return hook


def sample_aisp(task, oracle, n: int, rng: np.random.Generator, *, window: int = 8, candidates: int = 8,
                iterations: int = 8, sigma: float = float(np.sqrt(0.5)), lam: float = 0.3, alpha: float = 0.999,
                decode: str = "sample", budget: Budget | None = None, progress: Progress | None = None) -> SampleResult:
    """``n`` independent AISP chains on one prompt; each returns its best response. ``oracle`` is not used
    (rewards only)."""
    try:
        return sample_aisp_prompts([task], n, rng, window=window, candidates=candidates, iterations=iterations,
                                   sigma=sigma, lam=lam, alpha=alpha, decode=decode, budget=budget,
                                   progress=progress)[0]
    except Interrupted as exc:
        raise Interrupted(exc.partial[0]) from None


def sample_aisp_prompts(tasks: list, n: int, rng: np.random.Generator, *, window: int = 8, candidates: int = 8,
                        iterations: int = 8, sigma: float = float(np.sqrt(0.5)), lam: float = 0.3,
                        alpha: float = 0.999, decode: str = "sample", budget: Budget | None = None,
                        progress: Progress | None = None) -> list[SampleResult]:
    """``n`` AISP chains for each of several prompts (generation tasks on one model), run side by side.

    Every round decodes all prompts' candidates in one batch (``sample_suffixes``: one model call per token
    position for all of them). Returns one result per task, in order; they share one ledger, the batch's
    (its costs are for all prompts together, not each). A run stopped by the budget or Ctrl-C returns, from
    each chain, the best response of the rounds it completed (``iterations_done``; none before the first).
    """
    n = check_sample_count(n)
    if not tasks:
        raise ParameterError("AISP needs at least one generation task (prompt)")
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ParameterError(f"the control window tau must be an integer >= 1, got {window!r}")
    if not isinstance(candidates, (int, np.integer)) or candidates < 2:
        raise ParameterError(f"AISP needs at least 2 candidates per iteration to weigh, got {candidates!r}")
    if not isinstance(iterations, (int, np.integer)) or iterations < 1:
        raise ParameterError(f"iterations must be an integer >= 1, got {iterations!r}")
    if not sigma > 0 or not np.isfinite(sigma):
        raise ParameterError(f"sigma must be a finite number > 0, got {sigma!r}")
    if not lam > 0 or not np.isfinite(lam):
        raise ParameterError(f"lambda must be a finite number > 0, got {lam!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ParameterError(f"alpha must be in [0, 1], got {alpha!r}")
    if decode not in DECODE:
        raise ParameterError(f"decode must be one of {', '.join(DECODE)}, got {decode!r}")
    lm = tasks[0].lm
    window = min(int(window), min(t.horizon for t in tasks))
    prompts, d, m = len(tasks), lm.head()[0].shape[1], int(candidates)  # d: the width of the pre-logits
    u = np.zeros((prompts, n, window, d))
    best_leaf = np.zeros((prompts, n), dtype=np.int64)
    best_reward = np.full((prompts, n), -np.inf)
    history = [{"mean_reward": [], "best_reward": [], "ess": [], "u_norm": [], "kl": []} for _ in tasks]
    tried: list[list[list[tuple[int, float, float]]]] = [[[] for _ in range(n)] for _ in tasks]
    done, done_leaf, done_reward, done_u = 0, best_leaf[:, :0], best_reward[:, :0], u.copy()  # rounds completed
    with lm_run(tasks[0], None, budget, progress) as run:
        ledger = run.ledger
        for k in range(iterations):
            v = u[:, :, None] + sigma * rng.standard_normal((prompts, n, m, window, d))  # per prompt, chain, candidate
            rows = v.reshape(prompts * n * m, window, d)
            kl = np.zeros(rows.shape[0])
            hooks = [perturbation_hook(t, rows, decode, kl) for t in tasks]
            roots = [np.zeros(n * m, dtype=np.int64) for _ in tasks]
            leaves = sample_suffixes(tasks, roots, rng, hooks)
            kl = kl.reshape(prompts, n * m)
            for p, task in enumerate(tasks):
                rewards = task.rewards(leaves[p]).reshape(n, m)
                ledger.steps += int(task.tree.depth_of(leaves[p]).sum())
                mine = leaves[p].reshape(n, m)
                ess = np.zeros(n)
                for c in range(n):
                    u[p, c], log_w = aisp_update(u[p, c], v[p, c], rewards[c], sigma, lam, alpha)
                    ess[c] = effective_sample_size(log_w)
                    tried[p][c] += [(int(x), float(r), float(lw)) for x, r, lw in zip(mine[c], rewards[c], log_w)]
                    top = int(np.argmax(rewards[c]))
                    if rewards[c, top] > best_reward[p, c]:
                        best_reward[p, c], best_leaf[p, c] = rewards[c, top], mine[c, top]
                diag = history[p]
                diag["mean_reward"].append(float(rewards.mean()))
                diag["best_reward"].append(float(best_reward[p].mean()))
                diag["ess"].append(float(ess.mean()))
                diag["u_norm"].append(float(np.linalg.norm(u[p], axis=(1, 2)).mean()))
                diag["kl"].append(float(kl[p].mean()))
            ledger.record_tries(prompts * n * m, prompts * n * m, prompts * n * m)
            done, done_leaf, done_reward, done_u = k + 1, best_leaf.copy(), best_reward.copy(), u.copy()
            run.progress(n * done / iterations, n)
    params = {"window": window, "candidates": m, "iterations": int(iterations), "sigma": float(sigma),
              "lambda": float(lam), "alpha": float(alpha), "decode": decode, "prompts": prompts}
    # a round cut short may have updated some chains and prompts: keep what the completed rounds left
    history = [{key: trace[:done] for key, trace in diag.items()} for diag in history]
    tried = [[chain[:done * m] for chain in chains] for chains in tried]
    results = [SampleResult(done_leaf[p], ledger, params, {"iterations_done": done, "rounds": history[p],
                                                           "best_reward": done_reward[p], "tried": tried[p],
                                                           "u": done_u[p]}, stopped=run.stopped)
               for p in range(prompts)]
    if run.stopped == "interrupted":
        raise Interrupted(results)
    return results
