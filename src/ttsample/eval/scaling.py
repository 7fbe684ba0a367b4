"""From stored runs to scaling shapes: cost per sample against depth, with fitted slopes.

A series is one (family, family parameter, branching, oracle, rho, sampler).
Three costs are fitted against the depth n:
- ``queries``: oracle queries per delivered sample, as run (walks at their default T);
- ``tries``: proposals (JVV) or walk runs per delivered sample;
- ``best_steps``: for walks on enumerable trees, the chain-steps per sample of the
  restart rule at its best T for output TV <= 0.01, computed exactly. This one
  does not depend on our choice of T.
At each depth a series has one value per seed; its shape is the least-squares
slope of log(median) against log(n) (and against n: the per-level rate), with
a 95% interval from resampling the seeds at every depth (bootstrap). Runs that
hit their query budget are censored: reported, never fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SERIES_FIELDS = ("family", "family_param", "branching", "oracle", "rho_label", "sampler")
METRICS = {
    "queries": lambda row: row["queries_total"] / row["delivered"],
    "tries": lambda row: row["tries"] / row["delivered"],
    "best_steps": lambda row: row.get("best_steps_per_sample"),
}


@dataclass
class Series:
    key: tuple
    values: dict[str, dict[int, list[float]]] = field(default_factory=lambda: {m: {} for m in METRICS})
    distinct: dict[int, list[float]] = field(default_factory=dict)
    censored: dict[int, int] = field(default_factory=dict)  # depth -> runs over budget
    max_tv: float | None = None  # worst exact output-law TV over the runs where it was computed

    @property
    def label(self) -> dict:
        return dict(zip(SERIES_FIELDS, self.key))

    def fitted_depths(self, metric: str) -> list[int]:
        return sorted(d for d, v in self.values[metric].items() if v and not self.censored.get(d))


def collect(rows: list[dict]) -> list[Series]:
    series: dict[tuple, Series] = {}
    for row in rows:
        key = tuple(row[f] for f in SERIES_FIELDS)
        s = series.setdefault(key, Series(key))
        d = row["depth"]
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
    return sorted(series.values(), key=lambda s: tuple(str(k) for k in s.key))


def fit_metric(series: Series, metric: str, *, boot: int = 2000, seed: int = 0) -> dict:
    """Log-log slope and log-linear rate of the median against n, with bootstrap 95% intervals."""
    depths = series.fitted_depths(metric)
    out = {"depths": depths, "slope": None, "slope_ci95": None, "rate": None, "rate_ci95": None}
    if len(depths) < 2:
        return out
    n = np.array(depths, dtype=float)
    values = [np.asarray(series.values[metric][d]) for d in depths]
    med = np.log([np.median(v) for v in values])
    rng = np.random.default_rng(seed)
    boot_med = np.log(np.stack([np.median(rng.choice(v, size=(boot, v.size)), axis=1) for v in values]))
    slopes = np.polyfit(np.log(n), boot_med, 1)[0]
    rates = np.polyfit(n, boot_med, 1)[0]
    ci = lambda x: [float(np.percentile(x, 2.5)), float(np.percentile(x, 97.5))]  # noqa: E731
    return {
        "depths": depths,
        "slope": float(np.polyfit(np.log(n), med, 1)[0]),
        "slope_ci95": ci(slopes),
        "rate": float(np.polyfit(n, med, 1)[0]),
        "rate_ci95": ci(rates),
    }


def fit(series: Series) -> dict:
    return {
        **series.label,
        "censored_depths": sorted(series.censored),
        "max_tv_output_law": series.max_tv,
        **{metric: fit_metric(series, metric) for metric in METRICS},
    }


def aggregate_table(series_list: list[Series]) -> list[dict]:
    """One row per (series, depth): quartiles of each cost over seeds, median distinct queries."""
    rows = []
    for s in series_list:
        for d in sorted(set(s.values["queries"]) | set(s.censored)):
            row = {**s.label, "depth": d, "seeds_ok": len(s.values["queries"].get(d, [])),
                   "seeds_censored": s.censored.get(d, 0)}
            for metric in METRICS:
                v = np.asarray(s.values[metric].get(d, []))
                q = np.percentile(v, [25, 50, 75]) if v.size else [np.nan] * 3
                row.update({f"{metric}_q25": q[0], f"{metric}_median": q[1], f"{metric}_q75": q[2]})
            row["distinct_queries_median"] = float(np.median(s.distinct[d])) if d in s.distinct else np.nan
            rows.append(row)
    return rows
