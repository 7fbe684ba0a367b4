"""A CNF formula read from DIMACS, with its sampling set, and what follows from fixing variables.

DIMACS: comment lines start with ``c``; one header ``p cnf VARS CLAUSES``;
clauses are signed variable numbers ending in ``0`` (a clause may span lines,
a line may hold several). The sampling set (projection) is given by comment
lines ``c ind v1 v2 ... 0`` (UniGen's, ApproxMC's) or ``c p show v1 ... 0``
(Ganak's), possibly several; without one, every variable is sampled. A file
may be gzipped (read by its magic bytes, whatever its name). A ``%`` line ends
the clauses (as in the SATLIB benchmark files). Anything else is an error
(``ParameterError``) that names the line: a missing or repeated header, a
literal beyond the declared variables, a number of clauses other than
declared, an unterminated clause, XOR clauses (``x ...``: CryptoMiniSat's
extension, not CNF), a sampling-set variable that does not exist.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ParameterError

MAX_VARIABLES = 10_000_000


@dataclass(frozen=True)
class CNF:
    num_vars: int
    clauses: tuple[tuple[int, ...], ...]
    sampling_set: tuple[int, ...] | None = None  # as listed in the file (duplicates dropped); None: every variable
    source: str = "<formula>"
    _padded: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def sampled(self) -> tuple[int, ...]:
        """The variables whose assignments are sampled (the projection), in the file's order."""
        return self.sampling_set if self.sampling_set is not None else tuple(range(1, self.num_vars + 1))

    @property
    def projected(self) -> bool:
        return self.sampling_set is not None and len(self.sampling_set) < self.num_vars

    def padded(self) -> np.ndarray:
        """Clauses as a (clauses, longest) int64 array padded with 0, for vectorised simplification."""
        if self._padded is None:
            width = max((len(c) for c in self.clauses), default=1)
            arr = np.zeros((len(self.clauses), max(width, 1)), dtype=np.int64)
            for i, c in enumerate(self.clauses):
                arr[i, : len(c)] = c
            object.__setattr__(self, "_padded", arr)
        return self._padded

    def occurrences(self) -> np.ndarray:
        """How many clauses each variable occurs in (index 0 unused)."""
        arr = self.padded()
        counts = np.bincount(np.abs(arr[arr != 0]), minlength=self.num_vars + 1)
        return counts

    def satisfied_by(self, assignment: dict[int, bool]) -> bool:
        """Whether a complete assignment (every variable) satisfies every clause."""
        return all(any(assignment[abs(l)] == (l > 0) for l in c) for c in self.clauses)

    def to_dimacs(self) -> str:
        lines = [f"p cnf {self.num_vars} {len(self.clauses)}"]
        if self.sampling_set is not None:
            lines.append("c ind " + " ".join(map(str, self.sampling_set)) + " 0")
        lines += [" ".join(map(str, c)) + " 0" for c in self.clauses]
        return "\n".join(lines) + "\n"


def _int(token: str, where: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise ParameterError(f"{where}: {token!r} is not an integer") from None


def parse_dimacs(text: str, source: str = "<formula>") -> CNF:
    """A ``CNF`` from DIMACS text; raises ``ParameterError`` naming the line of the first problem."""
    header: tuple[int, int] | None = None
    clauses: list[tuple[int, ...]] = []
    current: list[int] = []
    shown: list[tuple[int, int]] = []  # (variable, line number) of every c ind / c p show entry
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        where = f"{source}, line {number}"
        if not line:
            continue
        if line.startswith("%"):
            break
        if line[0] == "c":
            words = line.split()
            if words[:2] == ["c", "ind"] or words[:3] == ["c", "p", "show"]:
                values = [_int(t, where) for t in words[2 if words[1] == "ind" else 3 :]]
                if not values or values[-1] != 0:
                    raise ParameterError(f"{where}: a sampling-set line ({' '.join(words[:3 if words[1] == 'p' else 2])} ...) must end with 0")
                if any(v <= 0 for v in values[:-1]):
                    raise ParameterError(f"{where}: sampling-set variables are positive numbers, got {line!r}")
                shown += [(v, number) for v in values[:-1]]
            continue
        if line[0] == "p":
            words = line.split()
            if header is not None:
                raise ParameterError(f"{where}: a second 'p cnf' header")
            if len(words) != 4 or words[1] != "cnf":
                raise ParameterError(f"{where}: the header must read 'p cnf VARIABLES CLAUSES', got {line!r}")
            header = (_int(words[2], where), _int(words[3], where))
            if not 0 <= header[0] <= MAX_VARIABLES or header[1] < 0:
                raise ParameterError(f"{where}: the header declares {header[0]} variables and {header[1]} clauses; "
                                     f"both must be >= 0 (and at most {MAX_VARIABLES:,} variables)")
            continue
        if line[0] == "x":
            raise ParameterError(f"{where}: XOR clauses ('x ...') are CryptoMiniSat's extension, not CNF; encode them as clauses")
        if header is None:
            raise ParameterError(f"{where}: a clause before the 'p cnf VARIABLES CLAUSES' header")
        for token in line.split():
            lit = _int(token, where)
            if lit == 0:
                clauses.append(tuple(current))
                current = []
            elif abs(lit) > header[0]:
                raise ParameterError(f"{where}: literal {lit} names variable {abs(lit)}, but the header declares "
                                     f"{header[0]} variables")
            else:
                current.append(lit)
    if header is None:
        raise ParameterError(f"{source}: no 'p cnf VARIABLES CLAUSES' header; is this a DIMACS CNF file?")
    if current:
        raise ParameterError(f"{source}: the last clause ({' '.join(map(str, current[:8]))}{' ...' if len(current) > 8 else ''}) "
                             "does not end with 0")
    if len(clauses) != header[1]:
        raise ParameterError(f"{source}: the header declares {header[1]} clauses, the file has {len(clauses)}")
    sampling = None
    if shown:
        for v, number in shown:
            if v > header[0]:
                raise ParameterError(f"{source}, line {number}: the sampling set names variable {v}, but the header "
                                     f"declares {header[0]} variables")
        sampling = tuple(dict.fromkeys(v for v, _ in shown))
    if not (sampling if sampling is not None else header[0]):
        raise ParameterError(f"{source}: the formula has no variables to sample")
    return CNF(header[0], tuple(clauses), sampling, source)


def read_cnf(path: str | Path) -> CNF:
    """Read a DIMACS file, plain or gzipped."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ParameterError(f"cannot read {path}: {exc.strerror or exc}") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise ParameterError(f"{path}: a damaged gzip file ({exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ParameterError(f"{path}: not a text file (a DIMACS CNF is plain or gzipped text)") from None
    return parse_dimacs(text, str(path))


@dataclass
class Residual:
    """The formula left after fixing some variables: what a counter is given for one node."""

    clauses: list[list[int]]  # the clauses not yet satisfied, false literals removed; [] in it: unsatisfiable
    counted: list[int]  # unfixed sampled variables that still occur: the projection a counter counts over
    free: int  # unfixed sampled variables that occur in no remaining clause: a factor 2**free

    @property
    def unsatisfiable(self) -> bool:
        return any(not c for c in self.clauses)


def residual(cnf: CNF, fixed_vars: np.ndarray, fixed_values: np.ndarray) -> Residual:
    """Simplify ``cnf`` under ``fixed_vars[i] = fixed_values[i]`` (no propagation: counters do their own)."""
    arr = cnf.padded()
    value = np.zeros(cnf.num_vars + 1, dtype=np.int8)  # +1 true, -1 false, 0 unfixed
    value[np.asarray(fixed_vars, dtype=np.int64)] = np.where(np.asarray(fixed_values, dtype=bool), 1, -1)
    truth = value[np.abs(arr)] * np.sign(arr)  # +1 true literal, -1 false, 0 unfixed or padding
    keep = ~(truth > 0).any(axis=1)
    rows = arr[keep]
    alive = (truth[keep] == 0) & (rows != 0)
    clauses = [row[mask].tolist() for row, mask in zip(rows, alive)]
    occurs = np.zeros(cnf.num_vars + 1, dtype=bool)
    occurs[np.abs(rows[alive])] = True
    sampled = np.asarray(cnf.sampled, dtype=np.int64)
    unfixed = sampled[value[sampled] == 0]
    counted = unfixed[occurs[unfixed]]
    return Residual(clauses, counted.tolist(), int(unfixed.size - counted.size))
