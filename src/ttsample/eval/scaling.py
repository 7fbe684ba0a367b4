"""From stored runs to scaling shapes: cost per sample against depth (or |F|), with fitted slopes.

A series fixes everything but one axis: the depth n, or the class size |F|
(family, family parameter, branching, oracle, rho, sampler, and the other
axis). The costs fitted against the axis:
- ``queries``: oracle queries per delivered sample, as run (walks at their default T);
- ``tries``: proposals (JVV) or walk runs per delivered sample;
- ``best_steps``: for walks on enumerable trees, the chain-steps per sample of the
  restart rule at its best T for output TV <= 0.01, computed exactly. This one
  does not depend on our choice of T;
- ``first_queries``: for the class samplers, the queries spent until their first sample.
At each axis value a series has one value per seed; its shape is the
least-squares slope of log(median) against log(x) (and against x: the rate),
with a 95% interval from resampling the seeds at every x (bootstrap). Runs
that hit their query budget are censored: reported, never fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FIELDS = ("family", "family_param", "branching", "oracle", "rho_label", "sampler", "class_size", "depth")
AXES = ("depth", "class_size")
METRICS = {
    "queries": lambda row: row["queries_total"] / row["delivered"],
    "tries": lambda row: row["tries"] / row["delivered"],
    "best_steps": lambda row: row.get("best_steps_per_sample"),
    "first_queries": lambda row: row.get("first_sample_queries"),
}


@dataclass
class Series:
    axis: str
    key: tuple  # the values of every field but the axis
    values: dict[str, dict[int, list[float]]] = field(default_factory=lambda: {m: {} for m in METRICS})
    distinct: dict[int, list[float]] = field(default_factory=dict)
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
        s.distinct.setdefault(d, []).append(row["queries_distinct"])
        if row.get("tv_output_law") is not None:
            s.max_tv = max(s.max_tv or 0.0, row["tv_output_law"])
    kept = [s for s in series.values() if len(s.xs) >= 2]
    return sorted(kept, key=lambda s: tuple(str(k) for k in s.key))


def fit_metric(series: Series, metric: str, *, boot: int = 2000, seed: int = 0) -> dict:
    """Log-log slope and log-linear rate of the median against n, with bootstrap 95% intervals."""
    xs = series.fitted_xs(metric)
    out = {"xs": xs, "slope": None, "slope_ci95": None, "rate": None, "rate_ci95": None,
           "max_median": None, "max_median_ci95": None}
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
        "xs": xs,
        "slope": float(np.polyfit(np.log(n), med, 1)[0]),
        "slope_ci95": ci(slopes),
        "rate": float(np.polyfit(n, med, 1)[0]),
        "rate_ci95": ci(rates),
        "max_median": float(np.exp(med.max())),
        "max_median_ci95": ci(np.exp(boot_med.max(axis=0))),
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
            row["distinct_queries_median"] = float(np.median(s.distinct[d])) if d in s.distinct else np.nan
            rows.append(row)
    return rows
