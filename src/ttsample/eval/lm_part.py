"""The language-model part of a report: one point per configuration (task, sampler, values, options, n)
summarised over seeds, series against n, paired comparisons, metric-against-cost plots per task, and a
reproduction's own sections."""

from __future__ import annotations

import json
from pathlib import Path

from .markdown import cell, cell_value, lm_point_name, show
from .plots import plot_lm_task
from .report import PartOutput
from .scaling import collect_lm, lm_series, paired_points
from .verdicts import judge

LM_COUNTED = (
    "Per run of n samples, from its ledger: *forward passes* of the model (a batch of rows is one pass), *tokens* "
    "fed to it (a cached prefix is not fed again; each run starts from an empty cache), *reward calls* (of the reward "
    "function: one per batch for a batched reward such as the MiniLM similarity, one per text otherwise) and "
    "*reward texts* (responses, or prefixes for the heuristic values, that it scored), *queries* of the value oracle (V_hat, for "
    "the samplers that read it), and *seconds* of wall time on one thread; costs are shown per delivered "
    "sample. What the values cost before sampling (enumerating the trie for exact values, the rollouts and "
    "fitting of the test-time head) is part of the run's costs. Metrics: *TV to pi\\** and *KL to pi\\** are "
    "of the (weighted) empirical law of the n samples, where pi\\* is exact (enumerated); *floor* is the mean TV "
    "of n exact draws from pi\\* (200 repeats), and *TV / floor* the ratio (about 1 for an exact sampler); "
    "*law TV* is the exact TV of the sampler's output law where it has one in closed form (best-of-n; "
    "ActionLevelRS with deterministic values). *Accuracy*: share of samples with reward > 0 (constraints). "
    "*KL to base*: where pi\\* is exact, KL(empirical || pi_ref) with the Miller–Madow entropy correction "
    "(and the exact KL of the output law where there is one); elsewhere the identity E[log tau] - log Z_hat on "
    "the samples (exact in expectation for a sampler of pi\\*; NULL when a sample has tau = 0). *Distinct*: "
    "distinct responses / n. Weighted samplers (SMC) give self-normalised weighted metrics."
)
LM_SHOWN = (("tv_ratio", "TV / floor"), ("tv_output_law", "law TV"), ("kl_pistar", "KL to pi*"),
            ("accuracy", "accuracy"), ("mean_reward", "reward"), ("kl_base", "KL to base"),
            ("distinct_share", "distinct"), ("forward_passes", "fwd passes / sample"), ("tokens", "tokens / sample"),
            ("reward_calls", "reward calls / sample"), ("reward_texts", "reward texts / sample"),
            ("seconds", "seconds / sample"))
LM_PLOT_COSTS = (("forward_passes", "forward passes per sample"), ("seconds", "seconds per sample"))


def _task_table(points: list[dict]) -> list[str]:
    tasks: dict[str, dict] = {}
    for p in points:
        tasks.setdefault(p["lm_task"], p)
    lines = ["## Language-model tasks", "",
             "Z = E_pi_ref[tau] (exact where pi* is enumerated, else from reference draws of pi_ref); the base "
             "reward is the mean reward under pi_ref, the pi* reward under pi* (exact, or self-normalised "
             "importance weights on the reference draws). A task with several prompts has a row per prompt; its "
             "points pool the prompts like seeds.", "",
             "| task | model | prompt | H | reward | tau | pi* | Z | KL(pi* \\|\\| pi_ref) | base reward | pi* reward |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    show = lambda x, f: "–" if x is None else format(x, f)  # noqa: E731
    for name, p in tasks.items():
        reward = p["reward"] + (f" ({p['reference']!r})" if p.get("reference") else "")
        tau = "1{r > 0}" if p["beta"] is None else f"exp(r / {p['beta']:g})"
        exact = "exact" if p["exact"] else "not enumerated"
        for prompt, c in p["per_prompt"].items():
            z = "–" if c["z"] is None else f"{c['z']:.4g}" + ("" if c["z_exact"] else " (est.)")
            lines.append(f"| {cell(name)} | {p['model']} | {cell(repr(prompt))} | {p['horizon']} | "
                         f"{cell(reward)} | {tau} | {exact} | {z} | {show(c['kl_base_pistar'], '.3f')} | "
                         f"{show(c['base_reward'], '.3f')} | {show(c['pistar_reward'], '.3f')} |")
    return lines + [""]


def _points_table(points: list[dict]) -> list[str]:
    lines = ["## Every configuration", "",
             "Means over seeds (± half the interquartile range where seeds differ); – where a metric does not "
             "apply (no exact pi*, a tilt has no accuracy, no closed-form law). Failed: runs that stopped with an "
             "error (listed below the table).", "",
             "| task | sampler | values | options | n | seeds ok / failed | "
             + " | ".join(name for _, name in LM_SHOWN) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(LM_SHOWN)]
    errors = []
    for p in points:
        options = ", ".join(f"{k}={v}" for k, v in sorted(p["options"].items())) or "–"
        cells = " | ".join(cell_value(p[m]) for m, _ in LM_SHOWN)
        lines.append(f"| {cell(p['lm_task'])} | {p['sampler']} | {p['values']} | {cell(options)} | {p['samples']} | "
                     f"{p['seeds_ok']} / {p['seeds_failed']} | {cells} |")
        errors += [f"- {lm_point_name(p)}: {cell(e)}" for e in p["errors"]]
    lines.append("")
    if errors:
        lines += ["Failed runs:", ""] + errors + [""]
    return lines


def _series_table(series: list[dict]) -> list[str]:
    if not series:
        return []
    lines = ["## Against the number of samples n", "",
             "Configurations run at several n: log-log slope of the median over seeds against n, with its 95% "
             "bootstrap interval (TV of n exact draws falls like n^-1/2).", "",
             "| configuration | n | TV to pi*: slope | TV / floor: slope | KL to pi*: slope | seconds / sample: slope |",
             "|---|---|---|---|---|---|"]
    for f in series:
        lines.append(f"| {cell(lm_point_name(f))} | {', '.join(map(str, f['xs']))} | "
                     f"{show(f['tv_pistar'], 'slope', 2)} | {show(f['tv_ratio'], 'slope', 2)} | "
                     f"{show(f['kl_pistar'], 'slope', 2)} | {show(f['seconds'], 'slope', 2)} |")
    return lines + [""]


def _lm_table_rows(points: list[dict]) -> list[dict]:
    rows = []
    for p in points:
        row = {k: p[k] for k in ("lm_task", "model", "prompt", "horizon", "reward", "beta", "exact", "sampler",
                                 "values", "samples", "seeds_ok", "seeds_failed", "z", "base_reward", "pistar_reward")}
        row["options"] = json.dumps(p["options"], sort_keys=True)
        for metric in p:
            if isinstance(p[metric], dict) and "mean" in p[metric]:
                row.update({f"{metric}_mean": p[metric]["mean"], f"{metric}_median": p[metric]["median"]})
        rows.append(row)
    return rows


def _name(f: dict) -> str:
    return f["name"] if f.get("kind") == "lm-paired" else lm_point_name(f)


def lm_part(pairings=(), sections=None, costs=LM_PLOT_COSTS):
    """The part for the rows of kind ``lm``. ``pairings`` (``ttsample.eval.scaling.Pairing``): paired comparisons
    the expectations may judge; ``sections(rows, points, paired, out) -> (lines, plots)``: a reproduction's own
    tables and plots; ``costs``: (cost, name) pairs the metrics are plotted against."""

    def part(rows: list[dict], out: Path, expectations: list) -> PartOutput | None:
        rows = [r for r in rows if r.get("kind") == "lm"]
        if not rows:
            return None
        points = collect_lm(rows)
        series = lm_series(rows)
        paired = paired_points(rows, pairings)
        plots = []
        for task in dict.fromkeys(p["lm_task"] for p in points):
            for cost, cost_name in costs:
                name = f"lm_{''.join(c if c.isalnum() or c in '-_' else '_' for c in task)}_vs_{cost}.png"
                if plot_lm_task(points, task, cost, cost_name, out / name):
                    plots.append(name)
        lines = _task_table(points)
        if sections is not None:
            own_lines, own_plots = sections(rows, points, paired, out)
            lines, plots = lines + own_lines, own_plots + plots
        lines += _points_table(points) + _series_table(series)
        return PartOutput(
            name="lm", counted=LM_COUNTED, verdicts=judge(expectations, points + series + paired, "lm", _name),
            lines=lines, plots=plots, summary={"lm_points": points, "lm_series": series, "lm_paired": paired},
            table=_lm_table_rows(points), table_note="Aggregated numbers per configuration",
            summary_note="every point, series and verdict",
            plots_note="Each metric against a cost per sample (log scale): the median over seeds, bars from the "
                       "first to the third quartile; a line joins one configuration run at several n.")

    return part
