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
