"""From stored runs to scaling shapes: cost per sample against depth (or |F|), with fitted slopes.

A series fixes everything but one axis: the depth n, or the class size |F|
(family, family parameter, branching, oracle, rho, sampler, and the other
axis). A query is one answer of the oracle at one node; ``total`` counts every
ask (re-asks answered from the run's cache included), ``distinct`` counts the
nodes the oracle itself was asked. The costs fitted against the axis:
- ``queries``: total queries per delivered sample, as run (walks at their default T);
- ``distinct``: distinct queries per delivered sample, amortised over the run;
- ``first_distinct``: distinct queries (from a fresh cache) until the first sample
  of a run that draws one proposal or one chain at a time;
- ``tries``: proposals (JVV) or walk runs per delivered sample;
- ``best_steps``: for walks on enumerable trees, the chain-steps per sample of the
  restart rule at its best T for output TV <= 0.01, computed exactly. This one
  does not depend on our choice of T;
- ``first_queries``: total queries until the first sample (as ``first_distinct``).
At each axis value a series has one value per seed; its shape is the
least-squares slope of log(median) against log(x) (and against x: the rate),
with a 95% interval from resampling the seeds at every x (bootstrap). A
series whose value does not vary with the seed at any x is *deterministic*:
its slope is a value, not an estimate, and is shown without an interval.
Runs that hit their query budget are censored: reported, never fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..registry import REGISTRY

FIELDS = ("family", "family_param", "branching", "oracle", "rho_label", "sampler", "class_size", "depth")
METRICS = {
    "queries": lambda row: row["queries_total"] / row["delivered"],
    "distinct": lambda row: row["queries_distinct"] / row["delivered"],
    "first_distinct": lambda row: row.get("first_sample_distinct"),
    "tries": lambda row: row["tries"] / row["delivered"],
    "best_steps": lambda row: row.get("best_steps_per_sample"),
    "first_queries": lambda row: row.get("first_sample_queries"),
}
DETERMINISTIC_RTOL = 1e-9  # values equal to this relative tolerance across seeds are one value


@dataclass
class Series:
    axis: str
    key: tuple  # the values of every field but the axis
    values: dict[str, dict[int, list[float]]] = field(default_factory=lambda: {m: {} for m in METRICS})
    censored: dict[int, int] = field(default_factory=dict)  # axis value -> runs over budget
    max_tv: float | None = None  # worst exact output-law TV over the runs where it was computed

    @property
    def label(self) -> dict:
        return {"axis": self.axis, **dict(zip([f for f in FIELDS if f != self.axis], self.key))}

    @property
    def xs(self) -> list[int]:
        return sorted(set(self.values["queries"]) | set(self.censored))

    def fitted_xs(self, metric: str) -> list[int]:
        return sorted(d for d, v in self.values[metric].items() if v and not self.censored.get(d))


def collect(rows: list[dict], axis: str = "depth") -> list[Series]:
    """Group runs into series along ``axis``; series with a single axis value are dropped."""
    series: dict[tuple, Series] = {}
    for row in rows:
        key = tuple(row[f] for f in FIELDS if f != axis)
        s = series.setdefault(key, Series(axis, key))
        d = row[axis]
        if row["status"] != "ok" or not row["delivered"]:
            s.censored[d] = s.censored.get(d, 0) + 1
            continue
        for metric, value_of in METRICS.items():
            value = value_of(row)
            if value is not None:
                s.values[metric].setdefault(d, []).append(value)
        if row.get("tv_output_law") is not None:
            s.max_tv = max(s.max_tv or 0.0, row["tv_output_law"])
    kept = [s for s in series.values() if len(s.xs) >= 2]
    return sorted(kept, key=lambda s: tuple(str(k) for k in s.key))


def fit_metric(series: Series, metric: str, *, boot: int = 2000, seed: int = 0) -> dict:
    """Log-log slope and log-linear rate of the median against x, with bootstrap 95% intervals."""
    xs = series.fitted_xs(metric)
    out = {"xs": xs, "medians": [float(np.median(series.values[metric][d])) for d in xs], "seeds": 0,
           "deterministic": False, "slope": None, "slope_ci95": None, "rate": None, "rate_ci95": None,
           "max_median": None, "max_median_ci95": None, "last_slope": None}
    if len(xs) < 2:
        return out
    n = np.array(xs, dtype=float)
    values = [np.asarray(series.values[metric][d]) for d in xs]
    med = np.log([np.median(v) for v in values])
    rng = np.random.default_rng(seed)
    boot_med = np.log(np.stack([np.median(rng.choice(v, size=(boot, v.size)), axis=1) for v in values]))
    slopes = np.polyfit(np.log(n), boot_med, 1)[0]
    rates = np.polyfit(n, boot_med, 1)[0]
    ci = lambda x: [float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))]  # noqa: E731
    return {
        **out,
        "seeds": min(v.size for v in values),
        # one seed proves nothing about seed variance: deterministic needs two equal values at every x
        "deterministic": all(v.size > 1 and np.ptp(v) <= DETERMINISTIC_RTOL * np.abs(v).max() for v in values),
        "slope": float(np.polyfit(np.log(n), med, 1)[0]),
        "slope_ci95": ci(slopes),
        "rate": float(np.polyfit(n, med, 1)[0]),
        "rate_ci95": ci(rates),
        "max_median": float(np.exp(med.max())),
        "max_median_ci95": ci(np.exp(boot_med.max(axis=0))),
        # the local exponent between the two largest x: where the fitted slope is heading
        "last_slope": float((med[-1] - med[-2]) / (np.log(n[-1]) - np.log(n[-2]))),
    }


def fit(series: Series) -> dict:
    return {
        **series.label,
        "censored_at": sorted(series.censored),
        "max_tv_output_law": series.max_tv,
        **{metric: fit_metric(series, metric) for metric in METRICS},
    }


def aggregate_table(series_list: list[Series]) -> list[dict]:
    """One row per (series, axis value): quartiles of each cost over seeds, median distinct queries."""
    rows = []
    for s in series_list:
        for d in s.xs:
            row = {**s.label, s.axis: d, "seeds_ok": len(s.values["queries"].get(d, [])),
                   "seeds_censored": s.censored.get(d, 0)}
            for metric in METRICS:
                v = np.asarray(s.values[metric].get(d, []))
                q = np.percentile(v, [25, 50, 75]) if v.size else [np.nan] * 3
                row.update({f"{metric}_q25": q[0], f"{metric}_median": q[1], f"{metric}_q75": q[2]})
            rows.append(row)
    return rows


WORST_CASE_FIELDS = ("family", "family_param", "branching", "rho_label", "sampler")


def worst_cases(rows: list[dict], metric: str, oracles: tuple[str, ...]) -> list[dict]:
    """The worst instance found at each depth, over ``oracles`` and seeds, per (family, b, rho, sampler).

    An instance is one (oracle, seed) run; its cost is the run's ``metric``. The
    worst found is a lower bound on the true worst case over the oracles within
    rho, so its log-log slope against depth is a value, not an estimate.
    """
    groups: dict[tuple, dict[int, tuple[float, str]]] = {}
    value_of = METRICS[metric]
    for row in rows:
        if row["oracle"] not in oracles or row["status"] != "ok" or not row["delivered"]:
            continue
        value = value_of(row)
        if value is None:
            continue
        worst = groups.setdefault(tuple(row[f] for f in WORST_CASE_FIELDS), {})
        if row["depth"] not in worst or value > worst[row["depth"]][0]:
            worst[row["depth"]] = (value, f"{row['oracle']} seed {row['seed']}")
    out = []
    for key, worst in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        xs = sorted(worst)
        if len(xs) < 2:
            continue
        log_n, log_v = np.log(xs), np.log([worst[d][0] for d in xs])
        out.append({**dict(zip(WORST_CASE_FIELDS, key)), "metric": metric, "xs": xs,
                    "worst": [worst[d][0] for d in xs], "instance": [worst[d][1] for d in xs],
                    "slope": float(np.polyfit(log_n, log_v, 1)[0]),
                    "last_slope": float((log_v[-1] - log_v[-2]) / (log_n[-1] - log_n[-2]))})
    return out


# ---- language-model runs: one point per (task, sampler, values, n), and series against n ----

# a point's configuration; its replicates are its runs over seeds and, where a task has several, prompts
LM_FIELDS = ("lm_task", "model", "horizon", "reward", "reference", "beta", "exact", "sampler", "value_kind",
             "rho", "options", "samples")
LM_TASK_CONSTANTS = ("z", "z_exact", "base_reward", "pistar_reward", "kl_base_pistar")  # per prompt


def answers(row: dict) -> int:
    """Answers a run gave: a weighted particle set (SMC) is one answer, drawn by weight; else one per sample."""
    return 1 if row.get("weighted") else row["delivered"]


def _per_sample(name: str):
    return lambda row: row[name] / row["delivered"] if row.get(name) is not None else None


def _per_answer(name: str):
    return lambda row: row[name] / answers(row) if row.get(name) is not None else None


def _draws_times_z(row: dict) -> float | None:
    """Responses drawn per accepted one (1 / acceptance rate), times Z: 1 if draws ~ 1/Z; for the samplers that
    reject whole responses (their row's ``rejects_responses``), where Z is exact."""
    entry = REGISTRY.get(row["sampler"])
    if entry is None or not entry.rejects_responses or not row.get("z_exact") or not row.get("acceptance_rate"):
        return None
    return row["z"] / row["acceptance_rate"]


def _difference(a: str, b: str):
    return lambda row: row[a] - row[b] if row.get(a) is not None and row.get(b) is not None else None


LM_METRICS = {
    **{name: (lambda name: lambda row: row.get(name))(name) for name in (
        "tv_pistar", "tv_ratio", "tv_output_law", "tv_law_ratio", "kl_pistar", "kl_pistar_law", "kl_base",
        "kl_base_law", "accuracy", "mean_reward", "distinct_share", "distinct_2", "off_support", "kl_bound",
        "kl_drift", "responses", "distinct_correct", "approved_wrong")},
    "reward_gain": _difference("mean_reward", "base_reward"),  # over the base model's mean reward
    "ess_share": lambda row: row["ess"] / row["delivered"] if row.get("weighted") and row.get("ess") is not None else None,
    "draws_times_z": _draws_times_z,
    "forward_passes": _per_sample("forward_passes"),
    "tokens": _per_sample("tokens"),
    "reward_calls": _per_sample("reward_calls"),
    "reward_texts": _per_sample("reward_texts"),
    "queries": _per_sample("queries_total"),
    "seconds": _per_sample("seconds"),
    "answer_reward_calls": _per_answer("reward_calls"),
    "answer_reward_texts": _per_answer("reward_texts"),
    "answer_seconds": _per_answer("seconds"),
}
LM_COSTS = ("forward_passes", "tokens", "reward_calls", "queries", "seconds")


def _t_interval(v: np.ndarray) -> list[float] | None:
    if v.size < 2:
        return None
    from scipy import stats

    half = float(stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return [float(v.mean()) - half, float(v.mean()) + half]


def _summarise(values: list[float]) -> dict:
    """Mean over seeds with a t 95% interval, median and quartiles; deterministic when every seed gives one value."""
    v = np.asarray(values, dtype=np.float64)
    if not v.size:
        return {"seeds": 0, "deterministic": False, "mean": None, "mean_ci95": None, "median": None, "q25": None,
                "q75": None, "values": []}
    det = v.size > 1 and np.ptp(v) <= DETERMINISTIC_RTOL * max(np.abs(v).max(), 1e-300)
    q = np.percentile(v, [25, 50, 75])
    return {"seeds": int(v.size), "deterministic": bool(det), "mean": float(v.mean()),
            "mean_ci95": None if det else _t_interval(v), "median": float(q[1]), "q25": float(q[0]),
            "q75": float(q[2]), "values": [float(x) for x in v]}


def collect_lm(rows: list[dict]) -> list[dict]:
    """One point per (task, sampler, values, rho, options, n): every metric summarised over its seeds and prompts.

    Runs that failed (status error) or ran out of budget are counted, with their first error, not summarised.
    The task's constants (Z, base and pi* rewards) are the mean over its prompts, and per prompt in
    ``per_prompt``; ``prompt`` is the one prompt, or the prompts joined by `` / ``.
    """
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row.get(f) for f in LM_FIELDS), []).append(row)
    points = []
    for key, members in sorted(groups.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        ok = [r for r in members if r["status"] == "ok" and r["delivered"]]
        failed = [r for r in members if r not in ok]
        label = dict(zip(LM_FIELDS, key))
        prompts = list(dict.fromkeys(r["prompt"] for r in members))
        per_prompt = {p: {name: next((r.get(name) for r in ok if r["prompt"] == p and r.get(name) is not None), None)
                          for name in LM_TASK_CONSTANTS} for p in prompts}
        for name in LM_TASK_CONSTANTS:
            known = [c[name] for c in per_prompt.values() if c[name] is not None]
            label[name] = float(np.mean(known)) if known and len(known) == len(prompts) else None
        label.update(prompt=" / ".join(prompts), prompts=prompts, per_prompt=per_prompt)
        point = {"kind": "lm", "axis": "seeds", **label, "options": _options(label["options"]),
                 "values": _values_label(label["value_kind"], label["rho"]), "seeds_ok": len(ok),
                 "seeds_failed": len(failed), "errors": sorted({str(r.get("error") or r["status"]) for r in failed})}
        for metric, value_of in LM_METRICS.items():
            point[metric] = _summarise([x for x in (value_of(r) for r in ok) if x is not None])
        points.append(point)
    return points


def _options(text) -> dict:
    import json

    return json.loads(text) if text else {}


def _values_label(kind, rho) -> str:
    if not kind:
        return "-"
    return kind if rho in (None, 1.0) else f"{kind} x{rho:g}"


def lm_series(rows: list[dict]) -> list[dict]:
    """Each configuration run at two or more sample sizes n: every metric fitted against n (``fit_metric``)."""
    by: dict[tuple, Series] = {}
    fields = [f for f in LM_FIELDS if f != "samples"]
    for row in rows:
        key = tuple(row.get(f) for f in fields)
        s = by.setdefault(key, Series("samples", key, {m: {} for m in LM_METRICS}))
        if row["status"] != "ok" or not row["delivered"]:
            s.censored[row["samples"]] = s.censored.get(row["samples"], 0) + 1
            continue
        for metric, value_of in LM_METRICS.items():
            value = value_of(row)
            if value is not None:
                s.values[metric].setdefault(row["samples"], []).append(value)
    out = []
    for key, s in sorted(by.items(), key=lambda kv: tuple(str(k) for k in kv[0])):
        xs = sorted(set().union(*(set(v) for v in s.values.values())) | set(s.censored))
        if len(xs) < 2:
            continue
        label = dict(zip(fields, key))
        fitted = {"kind": "lm", "axis": "samples", **label, "options": _options(label["options"]),
                  "values": _values_label(label["value_kind"], label["rho"]), "xs": xs}
        for metric in LM_METRICS:
            positive = all(x > 0 for v in s.values[metric].values() for x in v)
            fitted[metric] = fit_metric(s, metric) if positive and s.values[metric] else fit_metric(
                Series("samples", key, {metric: {}}), metric)
        out.append(fitted)
    return out


@dataclass(frozen=True)
class Pairing:
    """Two configurations compared on the same runs' conditions: the difference ``a - b`` of a metric.

    Within a task, rows of ``a`` and ``b`` whose ``match`` agrees (an equal budget, say; None: not compared)
    pair up by (prompt, seed), each pair giving one difference, so prompt and seed effects cancel.
    """

    name: str
    a: object  # row -> bool
    b: object  # row -> bool
    metric: str  # of LM_METRICS
    match: object  # row -> a hashable value, or None


def paired_points(rows: list[dict], pairings) -> list[dict]:
    """Per pairing, task and match value: the differences over (prompt, seed) pairs, summarised like seeds.

    Each point has ``difference`` (a metric summary), ``b_reward_gain`` (the mean reward gain of ``b`` over the
    base model on the same pairs) and ``pairs``.
    """
    lm_rows = [r for r in rows if r.get("kind") == "lm"]  # failed runs too: a comparison set up is reported
    out = []
    for pairing in pairings:
        value_of = LM_METRICS[pairing.metric]
        groups: dict[tuple, dict[str, dict]] = {}
        for row in lm_rows:
            side = "a" if pairing.a(row) else "b" if pairing.b(row) else None
            matched = pairing.match(row) if side else None
            if matched is None:
                continue
            by = groups.setdefault((row["lm_task"], matched), {"a": {}, "b": {}})[side]
            replicate = (row["prompt"], row["seed"])
            if replicate in by:
                raise ValueError(f"pairing {pairing.name!r}: two {side}-rows for {replicate} in {row['lm_task']!r}")
            by[replicate] = row
        for (task, matched), sides in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1])):
            if not (sides["a"] and sides["b"]):
                continue  # one side was never run here: no comparison was set up
            ok = lambda r: r["status"] == "ok" and r["delivered"] and value_of(r) is not None  # noqa: E731
            common = [k for k in sides["a"] if k in sides["b"] and ok(sides["a"][k]) and ok(sides["b"][k])]
            diffs = [value_of(sides["a"][k]) - value_of(sides["b"][k]) for k in common]
            gains = [g for g in (LM_METRICS["reward_gain"](sides["b"][k]) for k in common) if g is not None]
            out.append({"kind": "lm-paired", "axis": "paired", "pairing": pairing.name, "lm_task": task,
                        "match": matched, "name": f"{task} · {pairing.name} · budget {matched}",
                        "pairs": len(common), pairing.metric + "_difference": _summarise(diffs),
                        "b_reward_gain": float(np.mean(gains)) if gains else None})
    return out
