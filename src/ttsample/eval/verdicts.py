"""Expectations and their verdicts: a claim told apart from an alternative, judged by one rule on the data.

Each expectation names its provenance (a cited result, the paper's abstract,
our derivation, our conjecture, or a proof that makes it a control on the
implementation), what it is about, the fitted quantity, the value expected
and the alternative it is told apart from; the verdict rule is
``Expectation.verdict``, stated to readers as ``VERDICT_RULE``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable

from .markdown import cell, fmt

PROVENANCE = {
    "classical": "classical result (cited)",
    "proof": "proven by construction (ours or cited): a control on the implementation, not a finding",
    "ours": "our derivation from a cited result",
    "conjecture": "our conjecture",
    "abstract": "the paper's abstract",
}


# how a report reads its verdicts, said once at the top of its expectations
VERDICT_RULE = (
    "Each claim is told apart from an alternative: its band reaches halfway to the alternative. **confirmed**: the "
    "95% interval (t interval of the mean over seeds, or bootstrap for slopes) lies inside the band; **refuted**: it "
    "lies wholly outside; **inconclusive**: it straddles an edge (the last column estimates the seeds that would "
    "decide it). A quantity with no seed variance is judged by its value. Provenance: "
    + "; ".join(f"*{k}*: {v}" for k, v in PROVENANCE.items()) + "."
)

VERDICTS = ("confirmed", "refuted", "inconclusive", "not measured")


@dataclass(frozen=True)
class Expectation:
    """A claim about a fitted series, told apart from an alternative.

    The band of values that count as the claim reaches halfway to the
    alternative (``expected ± |alternative - expected| / 2``; for an upper
    bound, everything up to that point, or up to ``expected`` when there is no
    alternative). Verdicts: ``confirmed`` when the 95% interval lies inside the
    band (so it excludes the alternative's side), ``refuted`` when it lies
    wholly outside, ``inconclusive`` otherwise, ``not measured`` when the
    series could not be fitted. A deterministic series is judged by its value.
    """

    claim: str
    provenance: str  # a key of PROVENANCE
    source: str
    applies: Callable[[dict], bool]  # on a fitted series' labels
    metric: str  # a cost of ttsample.eval.scaling.METRICS
    quantity: str  # "slope" (log-log), "rate" (log-linear) or "max_median" (the largest median over the axis)
    expected: Callable[[dict], float]
    alternative: Callable[[dict], float] | None = None  # the value the claim is told apart from
    alternative_name: str = ""
    upper_bound: bool = False  # the claim is "at most expected", not "about expected"
    lower_bound: bool = False  # the claim is "at least expected" (band: from halfway to the alternative, upwards)
    kind: str = "lab"  # what it is about: the lab's fitted series ("lab") or language-model points and pairs ("lm")

    def __post_init__(self) -> None:
        if self.provenance not in PROVENANCE:
            raise ValueError(f"unknown provenance {self.provenance!r}")
        if self.upper_bound and self.lower_bound:
            raise ValueError(f"{self.claim!r}: a claim is an upper bound, a lower bound or a value, not both bounds")
        if self.kind not in ("lab", "lm"):
            raise ValueError(f"{self.claim!r}: an expectation is about lab or lm items, not {self.kind!r}")
        if self.alternative is None and not (self.upper_bound or self.lower_bound):
            raise ValueError(f"{self.claim!r}: a claim about a value needs an alternative to be told apart from")

    def band(self, fitted: dict) -> tuple[float, float]:
        want = self.expected(fitted)
        half = 0.0 if self.alternative is None else abs(self.alternative(fitted) - want) / 2
        if self.lower_bound:
            return want - half, math.inf
        return (-math.inf if self.upper_bound else want - half), want + half

    def verdict(self, fitted: dict) -> dict:
        fm = fitted[self.metric]
        value = fm[self.quantity]
        if self.expected(fitted) is None or (self.alternative is not None and self.alternative(fitted) is None):
            # what the claim is judged against was not measured (e.g. every run of a configuration failed)
            return {"expected": None, "alternative": None, "band": [None, None], "measured": value,
                    "ci95": fm.get(f"{self.quantity}_ci95"), "deterministic": fm["deterministic"],
                    "seeds": fm["seeds"], "to_decide": "", "verdict": "not measured"}
        out = {"expected": self.expected(fitted), "alternative": None if self.alternative is None else
               self.alternative(fitted), "band": list(self.band(fitted)), "measured": value,
               "ci95": fm.get(f"{self.quantity}_ci95"), "deterministic": fm["deterministic"], "seeds": fm["seeds"],
               "to_decide": ""}
        if value is None:
            return {**out, "verdict": "not measured"}
        if not fm["deterministic"] and out["ci95"] is None:  # one seed: no interval
            return {**out, "verdict": "inconclusive", "to_decide": "one seed: no interval; run two or more seeds"}
        lo, hi = (value, value) if fm["deterministic"] else out["ci95"]
        low, high = out["band"]
        if low <= lo and hi <= high:
            return {**out, "verdict": "confirmed"}
        if hi < low or lo > high:
            return {**out, "verdict": "refuted"}
        return {**out, "verdict": "inconclusive", "to_decide": seeds_to_decide(value, lo, hi, (low, high), fm["seeds"])}


def seeds_to_decide(value: float, lo: float, hi: float, band: tuple[float, float], seeds: int) -> str:
    """How many seeds per x would decide an inconclusive verdict, if the interval narrows like 1/sqrt(seeds)."""
    inside = band[0] <= value <= band[1]
    need = min(value - band[0], band[1] - value) if inside else max(band[0] - value, value - band[1])
    if need <= 0:
        return "the estimate sits on the band's edge; more seeds may not decide it"
    more = math.ceil(seeds * ((hi - lo) / 2 / need) ** 2)
    return f"~{more} seeds per x (now {seeds}) would {'confirm' if inside else 'refute'} it at these x"


def rho_kind(fitted: dict) -> str:
    """exact, vanishing (rho = 1 + c/n), constant, or measured (oracles that state no rho: delayed, flat)."""
    if fitted["oracle"] == "exact":
        return "exact"
    if fitted["oracle"] in ("delayed", "flat"):
        return "measured"
    return "vanishing" if "/n" in str(fitted["rho_label"]) else "constant"


def about_lm(expectations: list[Expectation]) -> list[Expectation]:
    """The same expectations, about language-model points and pairs."""
    return [replace(e, kind="lm") for e in expectations]


def judge(expectations: list[Expectation], fitted: list[dict], kind: str, name_of) -> list[dict]:
    """Every expectation about items of ``kind`` judged on each fitted item it applies to; ``name_of(f)`` names the
    item in the verdict table."""
    verdicts = []
    for exp in expectations:
        if exp.kind != kind:
            continue
        for f in fitted:
            if exp.applies(f) and exp.metric in f:
                verdicts.append({"claim": exp.claim, "provenance": exp.provenance, "source": exp.source,
                                 "series": name_of(f), "metric": exp.metric, "quantity": exp.quantity,
                                 "axis": f["axis"], "alternative_name": exp.alternative_name,
                                 "upper_bound": exp.upper_bound, "lower_bound": exp.lower_bound, **exp.verdict(f)})
    return verdicts


def band_text(v: dict) -> str:
    low, high = v["band"]
    if v["expected"] is None:
        return "–"
    if v.get("lower_bound"):
        return f">= {fmt(v['expected'])} (band >= {fmt(low)})"
    if v["upper_bound"]:
        return f"<= {fmt(v['expected'])} (band <= {fmt(high)})"
    return f"{fmt(v['expected'])} (band {fmt(low)} to {fmt(high)})"


def verdict_table(verdicts: list[dict]) -> list[str]:
    lines = ["| claim | provenance | source | series | fitted | expected | alternative | measured [95% CI] | verdict "
             "| what would decide it |", "|---|---|---|---|---|---|---|---|---|---|"]
    for v in verdicts:
        if v["measured"] is None:
            measured = "–"
        elif v["deterministic"]:
            measured = f"{v['measured']:.2f} (value: no seed variance)"
        elif v["ci95"] is None:
            measured = f"{v['measured']:.2f} (one replicate: no interval)"
        else:
            measured = f"{v['measured']:.2f} [{v['ci95'][0]:.2f}, {v['ci95'][1]:.2f}]"
        alt = ("–" if v["alternative"] is None and not v["alternative_name"] else v["alternative_name"]
               if v["alternative"] is None else f"{v['alternative_name']} ({v['alternative']:.2f})")
        fitted = (f"{v['quantity']} of {v['metric']} over seeds" if v["axis"] == "seeds"
                  else f"{v['quantity']} of {v['metric']} vs {v['axis']}")
        lines.append(f"| {cell(v['claim'])} | {v['provenance']} | {cell(v['source'])} | {cell(v['series'])} | "
                     f"{fitted} | {band_text(v)} | {cell(alt)} | {measured} | "
                     f"**{v['verdict']}** | {v['to_decide'] or '–'} |")
    counts = {k: sum(v["verdict"] == k for v in verdicts) for k in VERDICTS}
    return lines + ["", "Verdicts: " + ", ".join(f"{counts[k]} {k}" for k in VERDICTS) + ".", ""]
