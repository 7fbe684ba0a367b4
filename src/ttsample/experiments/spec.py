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
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ParameterError
from ..oracles import ORACLES
from ..samplers import CLASS_SAMPLERS, SAMPLERS

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
class Task:
    """One run: a grid point, a sampler and a seed."""

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

    def tasks(self) -> list[Task]:
        out = []
        triples = [(fam, orc, sampler) for fam in self.families for orc in fam.get("oracles", self.oracles)
                   for sampler in fam.get("samplers", self.samplers)]
        for (fam, orc, sampler), b in itertools.product(triples, self.branchings):
            is_class = fam["kind"] == "class"
            if sampler in CLASS_SAMPLERS and not is_class:
                continue  # class samplers need a class
            name = f"class:{fam['class']}" if is_class else fam["kind"]
            param = float(fam.get("concentration", 1.0) if fam["kind"] == "random"
                          else fam.get("rho", 1.5) if fam["kind"] == "bounded_tilt" else fam["param"])
            for depth in fam.get("depths", self.sampler_depths.get(sampler, self.depths)):
                for size in fam.get("class_sizes", [0]) if is_class else [0]:
                    for seed in range(orc.get("seeds", self.seeds)):
                        out.append(Task(name, param, int(depth), int(b), orc["kind"], str(orc.get("rho", 1.0)),
                                        sampler, seed, self.samples, self.max_queries, int(size)))
        return out


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise ParameterError(message)


def _int_list(value, name: str) -> None:
    _require(isinstance(value, list) and value and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1
                                                       for d in value), f"'{name}' must be a list of integers >= 1")


def parse_spec(data: dict) -> Spec:
    _require(isinstance(data.get("samplers"), list) and data["samplers"], "spec needs a non-empty list 'samplers'")
    for s in data["samplers"]:
        _require(s in SAMPLERS or s in CLASS_SAMPLERS,
                 f"unknown sampler {s!r} in spec; choose from {', '.join([*SAMPLERS, *CLASS_SAMPLERS])}")
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
    )


def load_spec(path: str | Path) -> Spec:
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ParameterError(f"cannot read experiment spec {str(path)!r}: {exc}") from None
    return parse_spec(data)
