"""The alignment comparison: reward against budget for aligners and samplers of pi*, and where AISP wins.

A method's *budget* is the number of responses it decodes per answer (the
``responses`` metric of ``ttsample.experiments.lm_runs``): best-of-k decodes
k, AISP candidates x iterations, MH one start and one regenerated suffix per
step, SMC one per particle (its weighted set is one answer). Methods are
compared at equal budgets by paired differences over (prompt, seed)
(``ttsample.eval.scaling.Pairing``); VGB decodes token by token, so it has no
budget in responses and is shown against reward texts and seconds only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .scaling import Pairing

METHOD_OPTIONS = ("lam",)  # options that make a different method, not a different budget


def budget(row: dict) -> int | None:
    """Responses decoded per answer, as an integer (None for token-by-token samplers)."""
    responses = row.get("responses")
    return None if responses is None else int(round(responses))


def method(f: dict) -> str:
    """A method's label: the sampler, and the options that change the method rather than its budget."""
    options = f["options"] if isinstance(f["options"], dict) else json.loads(f["options"] or "{}")
    extra = ", ".join(f"{'lambda' if k == 'lam' else k} {options[k]:g}" for k in METHOD_OPTIONS if k in options)
    return f["sampler"] + (f" ({extra})" if extra else "")


def _is(label: str):
    return lambda row: row.get("kind") == "lm" and method(row) == label


def pairings(aisp: str, baselines: tuple[str, ...], limit: str | None = None) -> list[Pairing]:
    """AISP (``aisp``: its method label) against each baseline on mean reward at equal budgets; and the
    ``limit`` method (AISP with lambda -> 0) against best-of-n."""
    out = [Pairing(f"{aisp} - {b}", _is(aisp), _is(b), "mean_reward", budget) for b in baselines]
    if limit is not None:
        out.append(Pairing(f"{limit} - best-of-n", _is(limit), _is("best-of-n"), "mean_reward", budget))
    return out


def _cell(m: dict, digits: int = 3, interval: bool = False) -> str:
    if m["mean"] is None:
        return "–"
    text = f"{m['mean']:.{digits}g}" if abs(m["mean"]) < 1000 else f"{m['mean']:,.0f}"
    if interval and m["mean_ci95"] is not None:
        lo, hi = m["mean_ci95"]
        text += f" [{lo:.{digits}g}, {hi:.{digits}g}]"
    return text


def _kl(p: dict) -> str:
    for metric, kind in (("kl_base", "identity"), ("kl_bound", "bound"), ("kl_drift", "drift")):
        if p[metric]["mean"] is not None:
            return f"{_cell(p[metric])} ({kind})"
    return "–"


def _sorted(points: list[dict]) -> list[dict]:
    return sorted(points, key=lambda p: (method(p), p["responses"]["mean"] or 0.0, p["samples"]))


def section(rows: list[dict], points: list[dict], paired: list[dict], out: Path) -> tuple[list[str], list[str]]:
    """The report's alignment part: a reward-against-budget table and plot per task, and AISP's wins and losses."""
    lines = ["## Reward against budget", "",
             "Per method and budget, pooled over prompts and seeds: responses decoded per answer (the budget), reward "
             "calls and seconds per answer, the answer's mean reward and its gain over the base model's mean reward "
             "(95% t interval over prompt x seed runs), KL to the base model — *identity*: E[log tau] - log Z_hat, "
             "for samplers of pi\\*; *bound*: best-of-k's closed form log k - (k - 1)/k; *drift*: AISP's token-level "
             "KL(perturbed || base) per response, averaged over its candidates — and diversity (distinct responses "
             "/ n, distinct bigrams / bigrams). The three KL kinds measure different things and are not comparable "
             "with each other.", ""]
    plots = []
    for task in dict.fromkeys(p["lm_task"] for p in points):
        mine = _sorted([p for p in points if p["lm_task"] == task])
        first = mine[0]
        lines += [f"### {task}: {first['reward']} reward, tau = exp(r / {first['beta']:g}), prompts "
                  f"{', '.join(repr(x) for x in first['prompts'])}", "",
                  f"Base model's mean reward {first['base_reward']:.3f}; pi\\*'s (importance-weighted estimate) "
                  f"{first['pistar_reward']:.3f}.", "",
                  "| method | responses / answer | reward texts / answer | seconds / answer | reward | gain over base "
                  "[95% CI] | KL to base | distinct | distinct-2 | runs |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for p in mine:
            lines.append(f"| {method(p)} | {_cell(p['responses'])} | {_cell(p['answer_reward_texts'])} | "
                         f"{_cell(p['answer_seconds'], 2)} | {_cell(p['mean_reward'])} | "
                         f"{_cell(p['reward_gain'], 2, interval=True)} | {_kl(p)} | {_cell(p['distinct_share'], 2)} | "
                         f"{_cell(p['distinct_2'], 2)} | {p['seeds_ok']} ok, {p['seeds_failed']} failed |")
        lines.append("")
        name = f"alignment_{''.join(c if c.isalnum() or c in '-_' else '_' for c in task)}.png"
        plot_task(mine, out / name)
        plots.append(name)
        lines += [f"![{name}]({name})", ""]
    lines += wins_and_losses(points, paired)
    return lines, plots


def wins_and_losses(points: list[dict], paired: list[dict]) -> list[str]:
    """Sentences from the paired differences: higher, lower, or no difference at 95%, with the seconds ratio."""
    lines = ["## Where AISP wins and where it loses", "",
             "Paired differences of the answers' mean reward at equal budget (responses per answer), over the same "
             "prompts and seeds; *higher* / *lower*: the 95% t interval of the difference lies above / below 0; "
             "*no difference*: it contains 0 (not evidence of equality). Seconds: the ratio of seconds per answer, "
             "AISP over the other method, at that budget.", ""]
    seconds = {(p["lm_task"], method(p), budget({"responses": p["responses"]["mean"]})): p["answer_seconds"]["mean"]
               for p in points if p["responses"]["mean"] is not None}
    for q in paired:
        d = q["mean_reward_difference"]
        a, b = q["pairing"].split(" - ")
        if d["mean"] is not None and d["deterministic"]:
            verdict = "the same difference on every pair"
        elif d["mean"] is None or d["mean_ci95"] is None:
            verdict = "not enough pairs for an interval"
        elif d["mean_ci95"][0] > 0:
            verdict = "**higher**"
        elif d["mean_ci95"][1] < 0:
            verdict = "**lower**"
        else:
            verdict = "no difference"
        ci = "" if d["mean_ci95"] is None else f" [{d['mean_ci95'][0]:+.3g}, {d['mean_ci95'][1]:+.3g}]"
        sa, sb = seconds.get((q["lm_task"], a, q["match"])), seconds.get((q["lm_task"], b, q["match"]))
        ratio = f"; seconds x{sa / sb:.2g}" if sa and sb else ""
        mean = "–" if d["mean"] is None else f"{d['mean']:+.3g}"
        lines.append(f"- {q['lm_task']}, budget {q['match']}: {a} vs {b}: {verdict} ({mean}{ci}, "
                     f"{q['pairs']} pairs{ratio}).")
    return lines + [""]


def plot_task(points: list[dict], path: Path) -> None:
    """Mean reward against responses, reward texts and seconds per answer: a line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    costs = (("responses", "responses decoded per answer"), ("answer_reward_texts", "reward texts per answer"),
             ("answer_seconds", "seconds per answer"))
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    first = points[0]
    for ax, (cost, name) in zip(axes, costs):
        for label in dict.fromkeys(method(p) for p in points):
            mine = sorted((p for p in points if method(p) == label and p[cost]["mean"] and p["mean_reward"]["mean"]
                           is not None), key=lambda p: p[cost]["mean"])
            if not mine:
                continue
            x = [p[cost]["mean"] for p in mine]
            y = [p["mean_reward"]["mean"] for p in mine]
            half = [0.0 if p["mean_reward"]["mean_ci95"] is None else
                    (p["mean_reward"]["mean_ci95"][1] - p["mean_reward"]["mean_ci95"][0]) / 2 for p in mine]
            ax.errorbar(x, y, yerr=half, marker="o", capsize=2, label=label)
        ax.axhline(first["base_reward"], color="gray", linestyle=":", linewidth=1, label="base model")
        if first["pistar_reward"] is not None and math.isfinite(first["pistar_reward"]):
            ax.axhline(first["pistar_reward"], color="gray", linestyle="--", linewidth=1, label="pi* (estimated)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(name)
        ax.set_ylabel("mean reward of the answer")
        ax.grid(True, which="both", alpha=0.3)
    legend = {}
    for ax in axes:  # VGB has no budget in responses: it is on the other panels only
        legend.update(zip(*reversed(ax.get_legend_handles_labels())))
    fig.legend(list(legend.values()), list(legend), loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    fig.suptitle(f"{first['lm_task']}: reward against budget (mean over prompts and seeds, 95% CI bars)")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
