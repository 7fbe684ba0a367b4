"""The reports' figures: cost against an axis per family, the worst instance found, and language-model metrics
against cost. Matplotlib is imported inside each function (Agg backend), so importing this module draws nothing."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .markdown import other_axis
from .scaling import Series

AXIS_NAME = {"depth": "depth n", "class_size": "class size |F|"}
PLOTTED = {
    "queries": "total queries per sample (as run)",
    "distinct": "distinct queries per sample (amortised)",
    "first_distinct": "distinct queries until the first sample",
    "best_steps": "chain-steps per sample at best T (exact)",
}


def _panel(s: Series) -> tuple:
    f = s.label
    return (f["oracle"], f["rho_label"], other_axis(f))


def _log_axes(ax, xs, xlabel: str, ylabel: str) -> None:
    import matplotlib.ticker

    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xticks(sorted(xs))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)


def plot_family(series_list: list[Series], metric: str, title: str, path: Path) -> None:
    """Log-log cost against the axis: one panel per (oracle, rho, other axis), one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({_panel(s) for s in series_list if s.values[metric]})
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.8 * rows), squeeze=False)
    for ax, panel in zip(axes.flat, panels):
        for s in series_list:
            xs = sorted(s.values[metric])
            if _panel(s) != panel or not xs:
                continue
            q = np.array([np.percentile(s.values[metric][x], [25, 50, 75]) for x in xs])
            line, = ax.plot(xs, q[:, 1], marker="o", label=s.label["sampler"])
            ax.fill_between(xs, q[:, 0], q[:, 2], color=line.get_color(), alpha=0.2)
        ax.set_title(f"oracle {panel[0]}, rho = {panel[1]}{panel[2]}", fontsize=10)
        _log_axes(ax, {x for s in series_list for x in s.values[metric]}, AXIS_NAME[series_list[0].axis], PLOTTED[metric])
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_worst_cases(worst: list[dict], path: Path) -> None:
    """The worst instance found against depth: one panel per rho, one line per sampler."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({w["rho_label"] for w in worst})
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, rho in zip(axes.flat, panels):
        for w in worst:
            if w["rho_label"] == rho:
                ax.plot(w["xs"], w["worst"], marker="o", label=f"{w['sampler']} (slope {w['slope']:.2f})")
        ax.set_title(f"worst instance found, rho = {rho}", fontsize=10)
        _log_axes(ax, {x for w in worst for x in w["xs"]}, "depth n", PLOTTED[worst[0]["metric"]])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_lm_task(points: list[dict], task: str, cost: str, cost_name: str, path: Path) -> bool:
    """Metrics against a cost per sample (log x), one panel each: a marker per configuration at its median over
    seeds, bars from the first to the third quartile, configurations run at several n joined by a line.
    Dashed: where an exact sampler sits (TV / floor = 1; KL(pi* || pi_ref) where pi* is exact; pi*'s mean
    reward on a tilt); dotted: the base model's accuracy or mean reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    mine = [p for p in points if p["lm_task"] == task and p[cost]["median"] is not None and p[cost]["median"] > 0]
    if not mine:
        return False
    first = mine[0]
    wanted = [("tv_ratio", "TV to pi* / noise floor of n exact draws", 1.0),
              ("accuracy" if first["beta"] is None else "mean_reward",
               "constraint accuracy" if first["beta"] is None else "mean reward (dashed: pi*'s, estimated)",
               None if first["beta"] is None else first["pistar_reward"]),
              ("kl_base", "KL to the base model", first["kl_base_pistar"]),
              ("distinct_share", "distinct responses / n", None)]
    metrics = [(m, name, ref) for m, name, ref in wanted if any(p[m]["median"] is not None for p in mine)]
    cols = 2 if len(metrics) > 1 else 1
    rows = math.ceil(len(metrics) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.2 * cols, 4.2 * rows), squeeze=False)
    configs = sorted({(p["sampler"], p["values"], json.dumps(p["options"], sort_keys=True)) for p in mine})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP*Xh<>p"
    samplers = list(dict.fromkeys(c[0] for c in configs))  # a colour per sampler, a marker per values / options
    style = {c: (colors[samplers.index(c[0]) % len(colors)],
                 markers[[d for d in configs if d[0] == c[0]].index(c) % len(markers)]) for c in configs}
    for ax, (metric, name, ref) in zip(axes.flat, metrics):
        for config in configs:
            pts = sorted((p for p in mine if (p["sampler"], p["values"], json.dumps(p["options"], sort_keys=True))
                          == config and p[metric]["median"] is not None), key=lambda p: p["samples"])
            if not pts:
                continue
            x = [p[cost]["median"] for p in pts]
            y = [p[metric]["median"] for p in pts]
            err = [[p[metric]["median"] - p[metric]["q25"] for p in pts],
                   [p[metric]["q75"] - p[metric]["median"] for p in pts]]
            label = config[0] + ("" if config[1] == "-" else f" ({config[1]})") + (
                "" if config[2] == "{}" else " " + config[2].replace('"', "").strip("{}"))
            if len({p["samples"] for p in pts}) > 1:
                label += f" n={pts[0]['samples']}..{pts[-1]['samples']}"
            ax.errorbar(x, y, yerr=err, marker=style[config][1], color=style[config][0],
                        linestyle="-" if len(pts) > 1 else "none", capsize=2, label=label, alpha=0.85)
        if ref is not None:
            ax.axhline(ref, color="gray", linestyle="--", linewidth=1)
        if metric in ("accuracy", "mean_reward") and first["base_reward"] is not None:
            ax.axhline(first["base_reward"], color="gray", linestyle=":", linewidth=1)  # the base model's
        if metric == "tv_ratio":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(cost_name)
        ax.set_title(name, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=7, frameon=False)
    fig.suptitle(f"{task}: metrics against {cost_name} (median over seeds, quartile bars)")
    fig.tight_layout(rect=(0, 0.04 + 0.025 * math.ceil(len(labels) / 4), 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_aisp_diagnostics(result, path) -> None:
    """AISP's diagnostics per round (reward mean and best, ESS of the weights, |U|, KL drift from the base) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    diag = result.diagnostics["rounds"]
    rounds = np.arange(1, len(diag["mean_reward"]) + 1)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.2))
    axes[0].plot(rounds, diag["mean_reward"], "o-", label="mean of the round")
    axes[0].plot(rounds, diag["best_reward"], "s-", label="best so far")
    axes[0].set_title("reward")
    axes[0].legend(fontsize=8)
    for ax, key, title in zip(axes[1:], ("ess", "u_norm", "kl"),
                              (f"ESS of the weights (of {result.params['candidates']})", "|U|",
                               "KL to the base (nats per response)")):
        ax.plot(rounds, diag[key], "o-")
        ax.set_title(title)
    for ax in axes:
        ax.set_xlabel("round")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
