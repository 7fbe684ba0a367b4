"""Declarative experiments: a TOML file names the problem, oracles, samplers and the grid to sweep.

Example (the shipped ``specs/scaling.toml`` is a full one)::

    name = "my-sweep"
    samplers = ["jvv", "walk-boosted", "lifted"]
    depths = [4, 8, 12]
    branchings = [2]
    seeds = 5                 # seeds 0..4; each seed draws its own target, oracle noise and chains
    samples = 200             # samples per run
    max_queries = 1e7         # a run over budget is stored as censored (status "budget")

    [[families]]
    kind = "random"           # or "bounded_tilt" (a tilt within rho of flat; set rho there)
    concentration = 0.5
    # oracles = [{kind = "flat"}]   # optional: this family's own oracle list
    # samplers = ["walk"]           # optional: this family's own samplers (from the list above)

    # A class F (for the class samplers; other samplers run on its true member):
    # [[families]]
    # kind = "class"
    # class = "local"           # independent (param: concentration), local (param: spread), tilt (param: rho)
    # param = 2
    # class_sizes = [2, 16, 128]
    # depths = [8]              # optional, any family: its own depths (over the global and per-sampler lists)

    [[oracles]]
    kind = "random"
    rho = "1+1/n"             # a number >= 1, or "1+c/n"
    # seeds = 2               # optional: this oracle's own number of seeds

Language-model tasks (``specs/lm.toml`` is a full one) are tables of their own;
a spec may hold only these (then ``samplers`` and ``depths`` may be left out)::

    [[lm_tasks]]
    name = "dyck"             # the task's label in the store and the report
    model = "dyck"            # dyck, text, subword (embedded) or a local model folder
    prompt = ""               # or prompts = ["...", "..."]: the prompts are replicates, like seeds
    horizon = 6
    reward = "dyck"           # a built-in, regex:P, similarity:TEXT, python:M:F, file.py:F, hf:DIR[:LABEL] (REWARD_FORMS);
                              # or "minilm" with reference = "..." (the same as similarity:...)
    # beta = 0.1              # a tilt tau = exp(r / beta); leave out for a 0/1 constraint (tau = 1{r > 0})
    exact = true              # enumerate pi* (small vocabularies and horizons): TV and KL to pi*
    samplers = ["vgb", "action-rs", "outcome-rs", "best-of-n", "smc", "twisted-smc", "mh"]
    values = ["exact", { kind = "exact", rho = 1.5 }, "rollout", "head"]  # for vgb, action-rs, twisted-smc
    samples = [200]           # an integer or a list (several: a series against n); default: the spec's samples
    seeds = 3                 # default: the spec's seeds
    # reference_draws = 512 # where pi* is not enumerated: pi_ref draws behind Z_hat and the reference rewards
    # steps = { delimiters = ["\n"], max_step_tokens = 10, max_steps = 3 }  # samplers move a step at a time
    # decoding = { top_p = 0.97 }  # pi_ref's decoding (temperature, top_k, top_p); exact = true enumerates its support
    # [lm_tasks.options]      # keyword options of a sampler (a list of tables: one run per table), e.g.
    # best-of-n = [{ candidates = 2 }, { candidates = 8 }]
    # outcome-rs = { max_log_tau = 4.0 }
    # [lm_tasks.sampler_values]   # optional: a sampler's own values (drawn from the list above)
    # action-rs = ["exact"]
    # [lm_tasks.sampler_samples]  # optional: a sampler's own sample sizes
    # smc = [50, 200, 800]
"""

from __future__ import annotations

import itertools
import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError
from ..oracles import ORACLES
from ..registry import REGISTRY, names as sampler_names

FAMILIES = ("random", "bounded_tilt", "class")


CLASS_KINDS = ("independent", "local", "tilt")
_RHO_OVER_N = re.compile(r"^\s*1\s*\+\s*([0-9.]+)\s*/\s*n\s*$")


def rho_at(rho: float | str, depth: int) -> float:
    """The oracle's rho at this depth, from a number (or its text) or ``"1+c/n"``."""
    if isinstance(rho, str):
        match = _RHO_OVER_N.match(rho)
        try:
            return 1.0 + float(match.group(1)) / depth if match else float(rho)
        except ValueError:
            pass
    elif isinstance(rho, (int, float)) and not isinstance(rho, bool):
        return float(rho)
    raise ParameterError(f"rho must be a number >= 1 or of the form '1+c/n', got {rho!r}")


@dataclass(frozen=True)
class LabRun:
    """One run of the lab: a grid point, a sampler and a seed."""

    family: str  # random, bounded_tilt, or class:<kind>
    family_param: float  # concentration (random), rho of the tilt (bounded_tilt), the class generator's param
    depth: int
    branching: int
    oracle: str
    rho_label: str
    sampler: str
    seed: int
    samples: int
    max_queries: float
    class_size: int = 0  # |F| for class families, 0 otherwise

    @property
    def key(self) -> str:
        return "|".join(str(x) for x in (self.family, self.family_param, self.depth, self.branching, self.oracle,
                                         self.rho_label, self.sampler, self.seed, self.samples, self.class_size,
                                         self.max_queries))

    @property
    def rho(self) -> float:
        return rho_at(self.rho_label, self.depth)


@dataclass(frozen=True)
class LMRun:
    """One language-model run: a task (model, prompt, horizon, reward), a sampler, its values and a seed."""

    lm_task: str  # the task's label
    model: str
    prompt: str
    horizon: int
    reward: str
    reference: str  # the reference text of the minilm reward ("" otherwise)
    beta: float | None  # None: a 0/1 constraint
    exact: bool  # pi* enumerated for the metrics
    sampler: str
    value_kind: str  # "" for samplers that read no values
    rho: float  # the lab's random error model on the values (1: none)
    seed: int
    samples: int
    options: str  # the sampler's keyword options, JSON with sorted keys
    reference_draws: int = 512  # pi_ref draws behind Z_hat and the reference rewards where pi* is not enumerated
    step_rule: str = ""  # the task's steps (ttsample.lm.steps.Steps' fields), JSON with sorted keys; "": tokens
    decoding: str = ""  # how pi_ref is decoded (ttsample.lm.decoding.Decoding's fields), JSON; "": the model's law
    kind: str = "lm"

    @property
    def key(self) -> str:
        key = "|".join(str(x) for x in ("lm", self.lm_task, self.model, json.dumps(self.prompt), self.horizon,
                                        self.reward, json.dumps(self.reference), self.beta, self.exact,
                                        self.sampler, self.value_kind, self.rho, self.seed, self.samples,
                                        self.options, self.reference_draws))
        # appended only when set, so the keys of stores written before these fields existed stay the same
        return key + "".join(f"|{name}={value}" for name, value in (("steps", self.step_rule),
                                                                       ("decoding", self.decoding)) if value)

    @property
    def rho_label(self) -> str:
        return str(self.rho)

    @property
    def values_label(self) -> str:
        """``exact``, ``exact x1.5`` (within rho = 1.5), ..., or ``-`` for samplers without values."""
        if not self.value_kind:
            return "-"
        return self.value_kind if self.rho == 1.0 else f"{self.value_kind} x{self.rho:g}"


def _lm_runs(table: dict, seeds: int, samples: int) -> list[LMRun]:
    out = []
    values = [_value_entry(v) for v in table.get("values", ["heuristic"])]
    options = table.get("options", {})
    for sampler in table["samplers"]:
        if REGISTRY[sampler].uses_values:
            names = table.get("sampler_values", {}).get(sampler)
            mine = values if names is None else [_value_entry(v) for v in names]
        else:
            mine = [("", 1.0)]
        sizes = table.get("sampler_samples", {}).get(sampler, table.get("samples", samples))
        mine_options = options.get(sampler, {})
        grid = [json.dumps(o, sort_keys=True) for o in (mine_options if isinstance(mine_options, list) else [mine_options])]
        for (kind, rho), n, opts in itertools.product(mine, sizes if isinstance(sizes, list) else [sizes], grid):
            for prompt, seed in itertools.product(task_prompts(table), range(table.get("seeds", seeds))):
                out.append(LMRun(str(table["name"]), str(table["model"]), prompt,
                                  int(table["horizon"]), str(table["reward"]), str(table.get("reference", "")),
                                  None if table.get("beta") is None else float(table["beta"]),
                                  bool(table.get("exact", False)), sampler, kind, rho, seed, int(n), opts,
                                  int(table.get("reference_draws", 512)), _json_table(table, "steps"),
                                  _json_table(table, "decoding")))
    return out


def _json_table(table: dict, field: str) -> str:
    return json.dumps(table[field], sort_keys=True) if table.get(field) else ""


def task_prompts(table: dict) -> list[str]:
    """A task's prompts: its ``prompts`` list, or its one ``prompt`` (default empty)."""
    return [str(p) for p in table["prompts"]] if "prompts" in table else [str(table.get("prompt", ""))]


def _value_entry(entry) -> tuple[str, float]:
    """A values entry: a kind, or a table {kind, rho}."""
    if isinstance(entry, str):
        return entry, 1.0
    return str(entry.get("kind")), float(entry.get("rho", 1.0))


@dataclass(frozen=True)
class Spec:
    name: str
    samplers: tuple[str, ...]
    depths: tuple[int, ...]
    branchings: tuple[int, ...]
    seeds: int
    samples: int
    max_queries: float
    families: tuple[dict, ...]
    oracles: tuple[dict, ...]
    sampler_depths: dict  # optional per-sampler depth lists (e.g. JVV only where it can finish)
    lm_tasks: tuple[dict, ...] = ()  # language-model tasks ([[lm_tasks]] tables)

    def runs(self) -> list[LabRun | LMRun]:
        """Every run of the spec: the lab's grid, then each language-model task's."""
        out = self._lab_runs()
        for table in self.lm_tasks:
            out.extend(_lm_runs(table, self.seeds, self.samples))
        return out

    def _lab_runs(self) -> list[LabRun]:
        out = []
        triples = [(fam, orc, sampler) for fam in self.families for orc in fam.get("oracles", self.oracles)
                   for sampler in fam.get("samplers", self.samplers)]
        for (fam, orc, sampler), b in itertools.product(triples, self.branchings):
            is_class = fam["kind"] == "class"
            if REGISTRY[sampler].needs == "class" and not is_class:
                continue  # class samplers need a class
            name = f"class:{fam['class']}" if is_class else fam["kind"]
            param = float(fam.get("concentration", 1.0) if fam["kind"] == "random"
                          else fam.get("rho", 1.5) if fam["kind"] == "bounded_tilt" else fam["param"])
            for depth in fam.get("depths", self.sampler_depths.get(sampler, self.depths)):
                for size in fam.get("class_sizes", [0]) if is_class else [0]:
                    for seed in range(orc.get("seeds", self.seeds)):
                        out.append(LabRun(name, param, int(depth), int(b), orc["kind"], str(orc.get("rho", 1.0)),
                                        sampler, seed, self.samples, self.max_queries, int(size)))
        return out


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ParameterError(message)


def _int_list(value, name: str) -> None:
    _require(isinstance(value, list) and value and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                       for d in value), f"'{name}' must be a list of integers >= 1")


def parse_spec(data: dict) -> Spec:
    lm_tables = data.get("lm_tasks", [])
    _require(isinstance(lm_tables, list) and all(isinstance(t, dict) for t in lm_tables),
             "'lm_tasks' must be a list of tables ([[lm_tasks]])")
    if lm_tables and "samplers" not in data and "depths" not in data:  # a spec of language-model tasks only
        data = {**data, "samplers": [], "depths": [1], "families": []}
    else:
        _require(isinstance(data.get("samplers"), list) and data["samplers"], "spec needs a non-empty list 'samplers'")
    for s in data["samplers"]:
        _require(s in sampler_names("tree"), f"unknown sampler {s!r} in spec; choose from {', '.join(sampler_names('tree'))}")
    depths = data.get("depths")
    _int_list(depths, "depths")
    _int_list(data.get("branchings", [2]), "branchings")
    fams = data.get("families", [{"kind": "random"}])
    _require(isinstance(fams, list) and all(isinstance(f, dict) for f in fams), "'families' must be a list of tables")
    for fam in fams:
        _require(fam.get("kind") in FAMILIES, f"family kind must be one of {', '.join(FAMILIES)}, got {fam.get('kind')!r}")
        if "depths" in fam:
            _int_list(fam["depths"], "depths (of a family)")
        if "samplers" in fam:
            _require(isinstance(fam["samplers"], list) and set(fam["samplers"]) <= set(data["samplers"]),
                     f"a family's 'samplers' must be a list drawn from 'samplers', got {fam['samplers']!r}")
        if fam["kind"] == "class":
            _require(fam.get("class") in CLASS_KINDS, f"a class family needs class = one of {', '.join(CLASS_KINDS)}")
            _require(isinstance(fam.get("param"), (int, float)), "a class family needs a numeric 'param'")
            _int_list(fam.get("class_sizes"), "class_sizes")
    orcs = data.get("oracles", [{"kind": "exact"}])
    _require(isinstance(orcs, list) and all(isinstance(o, dict) for o in orcs), "'oracles' must be a list of tables")
    for orc in orcs + [o for fam in fams for o in fam.get("oracles", [])]:
        _require(orc.get("kind") in ORACLES, f"oracle kind must be one of {', '.join(ORACLES)}, got {orc.get('kind')!r}")
        rho = orc.get("rho", 1.0)
        value = rho_at(rho, max(depths))
        _require(value >= 1.0, f"oracle rho must be >= 1, got {rho!r}")
        if "seeds" in orc:
            _require(isinstance(orc["seeds"], int) and not isinstance(orc["seeds"], bool) and orc["seeds"] >= 1,
                     "an oracle's 'seeds' must be an integer >= 1")
    per_sampler = data.get("sampler_depths", {})
    for s in per_sampler:
        _require(s in data["samplers"], f"sampler_depths names {s!r}, which is not in 'samplers'")
        _int_list(per_sampler[s], f"sampler_depths.{s}")
    for fam in fams:
        if fam["kind"] == "class" and fam["class"] == "local":
            used = fam.get("depths") or depths + [d for v in per_sampler.values() for d in v]
            _require(float(fam["param"]).is_integer() and 1 <= fam["param"] <= min(used),
                     f"a local class's param (spread) must be an integer in [1, {min(used)}] (its smallest depth), "
                     f"got {fam['param']}")
    budget = data.get("max_queries", 1e8)
    _require(isinstance(budget, (int, float)) and not isinstance(budget, bool) and budget > 0,
             "'max_queries' must be a positive number")
    seeds, samples = data.get("seeds", 3), data.get("samples", 100)
    _require(isinstance(seeds, int) and seeds >= 1, "'seeds' must be an integer >= 1")
    _require(isinstance(samples, int) and samples >= 1, "'samples' must be an integer >= 1")
    names = [t.get("name") for t in lm_tables]
    _require(len(set(names)) == len(names), f"every [[lm_tasks]] table needs its own name, got {names!r}")
    for table in lm_tables:
        _check_lm_table(table)
    return Spec(
        name=str(data.get("name", "experiment")),
        samplers=tuple(data["samplers"]),
        depths=tuple(depths),
        branchings=tuple(data.get("branchings", [2])),
        seeds=seeds,
        samples=samples,
        max_queries=float(data.get("max_queries", 1e8)),
        families=tuple(fams),
        oracles=tuple(orcs),
        sampler_depths={k: tuple(v) for k, v in per_sampler.items()},
        lm_tasks=tuple(lm_tables),
    )


def _check_lm_table(t: dict) -> None:
    from ..lm.rewards import check_reward_name  # light: no model is loaded

    where = f"[[lm_tasks]] {t.get('name')!r}"
    _require(isinstance(t.get("name"), str) and t["name"], "every [[lm_tasks]] table needs a name")
    _require(isinstance(t.get("model"), str) and t["model"], f"{where} needs a model (dyck, text, subword or a folder)")
    _require(isinstance(t.get("prompt", ""), str), f"{where}: prompt must be text")
    _require("prompts" not in t or "prompt" not in t, f"{where}: give prompt or prompts, not both")
    _require("prompts" not in t or (isinstance(t["prompts"], list) and t["prompts"]
                                    and all(isinstance(p, str) for p in t["prompts"])
                                    and len(set(t["prompts"])) == len(t["prompts"])),
             f"{where}: prompts must be a non-empty list of distinct texts")
    horizon = t.get("horizon")
    _require(isinstance(horizon, int) and not isinstance(horizon, bool) and horizon >= 1,
             f"{where}: horizon must be an integer >= 1")
    reward = t.get("reward")
    _require(isinstance(reward, str), f"{where}: reward must be a name, got {reward!r}")
    if reward != "minilm":
        try:
            check_reward_name(reward)
        except ParameterError as exc:
            raise ParameterError(f"{where}: {exc}") from None
    _require(reward != "minilm" or (isinstance(t.get("reference"), str) and t["reference"]),
             f"{where}: the minilm reward needs reference = \"a text\" whose similarity is rewarded")
    beta = t.get("beta")
    _require(beta is None or (isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta > 0),
             f"{where}: beta must be a number > 0 (leave it out for a 0/1 constraint)")
    _require(isinstance(t.get("exact", False), bool), f"{where}: exact must be true or false")
    from ..lm.generate import VALUES as kinds  # torch-free: naming the samplers and values loads no model
    from ..lm.prm import is_prm
    from ..lm.values import is_user_values

    samplers = t.get("samplers")
    _require(isinstance(samplers, list) and samplers and all(s in sampler_names("generation") for s in samplers),
             f"{where}: samplers must be a non-empty list drawn from {', '.join(sampler_names('generation'))}, got {samplers!r}")
    entries = list(t.get("values", ["heuristic"]))
    for sub in t.get("sampler_values", {}).values():
        _require(isinstance(sub, list) and sub, f"{where}: sampler_values must map samplers to non-empty lists")
        entries += sub
    for entry in entries:
        _require(isinstance(entry, (str, dict)), f"{where}: a values entry is a kind or a table {{kind, rho}}")
        kind = entry if isinstance(entry, str) else entry.get("kind")
        own = isinstance(kind, str) and kind.removeprefix("head:")
        _require(kind in kinds or (own and (is_user_values(own) or is_prm(own))),
                 f"{where}: unknown values {kind!r}; choose from {', '.join(kinds)}, or name your own "
                 "(python:MODULE:FUNCTION, path/to/file.py:FUNCTION, hf:DIR[:LABEL], prm:DIR)")
        rho = 1.0 if isinstance(entry, str) else entry.get("rho", 1.0)
        _require(isinstance(rho, (int, float)) and not isinstance(rho, bool) and rho >= 1,
                 f"{where}: the values' rho must be a number >= 1, got {rho!r}")
    for field in ("options", "sampler_values", "sampler_samples"):
        table = t.get(field, {})
        _require(isinstance(table, dict) and set(table) <= set(samplers),
                 f"{where}: {field} must be a table keyed by samplers of the task, got {table!r}")
    _require(all(isinstance(o, dict) or (isinstance(o, list) and o and all(isinstance(x, dict) for x in o))
                 for o in t.get("options", {}).values()),
             f"{where}: a sampler's options are a table, or a list of tables (one run per table)")
    for sizes in [t.get("samples", 1), *t.get("sampler_samples", {}).values()]:
        _int_list(sizes if isinstance(sizes, list) else [sizes], f"samples (of {where})")
    _int_list([t.get("reference_draws", 512)], f"reference_draws (of {where})")
    from ..lm.decoding import Decoding
    from ..lm.steps import Steps

    for field, kind in (("steps", Steps), ("decoding", Decoding)):
        if field not in t:  # absent: tokens, and the model's own law
            continue
        _require(isinstance(t[field], dict) and t[field], f"{where}: {field} must be a non-empty table")
        try:
            kind(**t[field])
        except (TypeError, ParameterError) as exc:
            raise ParameterError(f"{where}: [lm_tasks.{field}]: {exc}") from None
    seeds = t.get("seeds", 1)
    _require(isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1, f"{where}: seeds must be >= 1")


def load_spec(path: str | Path) -> Spec:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ParameterError(f"cannot read experiment spec {str(path)!r}: {exc}") from None
    return parse_spec(data)
