"""Study files: a parameter grid in TOML, expanded into points with their own seeds.

A study file (``studies/<name>.toml``) names what is held fixed, what is swept and how
many programming seeds each configuration gets::

    name = "adc-sweep"                   # optional; the file stem by default
    description = "Accuracy and energy versus ADC resolution and drift time"
    workload = "digits-cnn"              # workload, chip, tile and device are optional
    chip = "hermes-64core"               # here when the grid or [fixed] sets them instead
    tile = "hermes-core"
    evaluator = "accuracy-energy"        # name registered with runner.register_evaluator
    seeds = 5                            # programming seeds per configuration (>= 1)
    base_seed = 2024                     # root of every point's random stream
    metrics = ["accuracy", "energy_j"]   # keys each evaluation must return

    [grid]                               # cartesian product, in the order written
    adc_bits = [4, 5, 6, 8, 10]
    time_s = [1, 86400]
    device = ["pcm-generic", "rram-cmo"]

    [fixed]                              # parameters held constant (optional)
    batch = 256

    [quick]                              # smaller study for --quick (optional)
    seeds = 1
    adc_bits = [4, 8]

Every point is one configuration (the full config: workload, chip, tile, device, [fixed]
and one value per grid parameter) and one seed index. Its seed is drawn from
``SeedSequence([base_seed, hash(config), seed_index])``, so it does not depend on the other
points: adding a grid value, reordering the grid or running the quick size never changes the
seed, hence the result, of a point that already exists. Points run in any order, serially or
on many workers, with identical results.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from memsim.cards import read_card
from memsim.errors import StudyError
from memsim.studies.params import normal_form

__all__ = [
    "BASE_KEYS",
    "Point",
    "StudySpec",
    "canonical_json",
    "config_hash",
    "load_study",
    "point_seed",
    "stable_int_hash",
]

#: Top-level keys that name a card; each may instead be a grid or [fixed] parameter.
BASE_KEYS = ("workload", "chip", "tile", "device")
_SCALAR_KEYS = ("name", "description", "evaluator", "seeds", "base_seed", "metrics")
_TABLE_KEYS = ("grid", "fixed", "quick")
_KNOWN_KEYS = frozenset(_SCALAR_KEYS + BASE_KEYS + _TABLE_KEYS)
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal configs give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of a point's full config.

    The seed index is not part of it: all seeds of one configuration share the hash, and
    the results store keys a row by ``(config_hash, seed_index)``.
    """
    return hashlib.sha256(canonical_json(dict(config)).encode()).hexdigest()


def stable_int_hash(text: str) -> int:
    """A 128-bit non-negative integer from ``text``, the same in every process and run.

    (Python's ``hash`` of a string is salted per process, so it cannot seed anything.)
    """
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:16], "little")


def point_seed(base_seed: int, config: Mapping[str, Any], seed_index: int) -> int:
    """The integer seed of one point: 63 bits from ``SeedSequence([base, hash, index])``.

    63 bits so that it fits a SQLite INTEGER; an evaluator turns it into its streams with
    ``np.random.SeedSequence(seed).spawn(k)``.
    """
    ss = np.random.SeedSequence([base_seed, stable_int_hash(canonical_json(dict(config))),
                                 seed_index])
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


@dataclass(frozen=True)
class Point:
    """One evaluation: a configuration and a seed index.

    ``params`` holds the grid values of this point; ``config`` is the full config passed to
    the evaluator (card names, [fixed], then ``params``); ``seed`` its independent seed.
    """

    index: int
    params: dict[str, Any]
    seed_index: int
    seed: int
    config: dict[str, Any] = field(repr=False)
    config_hash: str = field(repr=False)

    @property
    def key(self) -> tuple[str, int]:
        """The results-store key ``(config_hash, seed_index)``."""
        return (self.config_hash, self.seed_index)


def _check_value(value: Any, where: str) -> Any:
    """A grid or fixed value must be plain JSON data (no dates, no NaN)."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise StudyError(f"{where} = {value!r} is not a finite number")
        return value
    if isinstance(value, list):
        return [_check_value(v, f"{where}[{k}]") for k, v in enumerate(value)]
    if isinstance(value, Mapping):
        return {str(k): _check_value(v, f"{where}.{k}") for k, v in value.items()}
    raise StudyError(f"{where} = {value!r} has type {type(value).__name__}; allowed: "
                     "string, integer, float, boolean, list or table")


def _check_int(value: Any, where: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise StudyError(f"{where} = {value!r} must be an integer")
    if value < lo:
        raise StudyError(f"{where} = {value} is out of range; allowed >= {lo}")
    return value


def _check_grid(table: Any, where: str, *, allow_empty: bool = False) -> dict[str, tuple]:
    if not isinstance(table, Mapping):
        raise StudyError(f"{where} must be a table of parameter = [values], got {table!r}")
    if not table and not allow_empty:
        raise StudyError(f"{where} is empty; give at least one parameter = [values]")
    grid: dict[str, tuple] = {}
    for key, values in table.items():
        if not isinstance(values, list):
            raise StudyError(f"{where}.{key} = {values!r} must be a list of values "
                             f"(write [{values!r}] for a single value, or move it to [fixed])")
        if not values:
            raise StudyError(f"{where}.{key} is an empty list; give at least one value")
        checked = tuple(_check_value(v, f"{where}.{key}[{k}]") for k, v in enumerate(values))
        seen: dict[str, Any] = {}
        for v in checked:
            text = canonical_json(normal_form(v))  # 1 and 1.0 are one value
            if text in seen:
                same = "twice" if canonical_json(seen[text]) == canonical_json(v) else \
                    f"and {seen[text]!r}: the same value written twice"
                raise StudyError(f"{where}.{key} lists {v!r} {same}")
            seen[text] = v
        grid[key] = checked
    return grid


@dataclass(frozen=True, kw_only=True)
class StudySpec:
    """A parameter study: fixed cards, a grid, seeds per point, metrics and an evaluator.

    Build it with :func:`load_study` (from TOML) or :meth:`from_dict`; the constructor
    validates every field and raises :class:`memsim.StudyError` (a ``ValueError``) naming the
    study file and the key.
    """

    name: str
    grid: dict[str, tuple]
    seeds: int
    base_seed: int
    metrics: tuple[str, ...]
    evaluator: str
    description: str = ""
    workload: str | None = None
    chip: str | None = None
    tile: str | None = None
    device: str | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    source: str = "<dict>"

    def __post_init__(self) -> None:
        where = f"study {self.source}"
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            raise StudyError(f"{where}: name = {self.name!r} must be a non-empty file-name-safe "
                             "string (letters, digits, '_', '.', '-')")
        if not isinstance(self.description, str):
            raise StudyError(f"{where}: description must be a string")
        object.__setattr__(self, "grid", _check_grid(self.grid, f"{where}: [grid]"))
        _check_int(self.seeds, f"{where}: seeds", 1)
        _check_int(self.base_seed, f"{where}: base_seed", 0)
        if not isinstance(self.evaluator, str) or not self.evaluator.strip():
            raise StudyError(f"{where}: evaluator = {self.evaluator!r} must be the non-empty "
                             "name of a registered evaluator")
        metrics = self.metrics
        if isinstance(metrics, str) or not isinstance(metrics, list | tuple) or not metrics \
                or not all(isinstance(m, str) and m for m in metrics):
            raise StudyError(f"{where}: metrics = {metrics!r} must be a non-empty list of "
                             "metric names")
        if len(set(metrics)) != len(metrics):
            raise StudyError(f"{where}: metrics = {list(metrics)!r} lists a name twice")
        object.__setattr__(self, "metrics", tuple(metrics))
        if not isinstance(self.fixed, Mapping):
            raise StudyError(f"{where}: [fixed] must be a table, got {self.fixed!r}")
        fixed = {str(k): _check_value(v, f"{where}: fixed.{k}") for k, v in self.fixed.items()}
        object.__setattr__(self, "fixed", fixed)
        for key in BASE_KEYS:
            value = getattr(self, key)
            if value is not None and (not isinstance(value, str) or not value):
                raise StudyError(f"{where}: {key} = {value!r} must be a card name (string)")
        # one place per parameter: top level, [fixed] or [grid]
        places = {k: "top level" for k in BASE_KEYS if getattr(self, k) is not None}
        for table, keys in (("[fixed]", fixed), ("[grid]", self.grid)):
            for k in keys:
                if k in places:
                    raise StudyError(f"{where}: {k!r} is set both at {places[k]} and in "
                                     f"{table}; keep one")
                places[k] = table
        for m in self.metrics:
            if m in places or m in ("config_hash", "seed_index", "seed"):
                raise StudyError(f"{where}: metric {m!r} has the name of a parameter or "
                                 "column; rename it")
        if not isinstance(self.quick, Mapping):
            raise StudyError(f"{where}: [quick] must be a table, got {self.quick!r}")
        quick = dict(self.quick)
        if "seeds" in quick:
            _check_int(quick["seeds"], f"{where}: quick.seeds", 1)
        unknown = sorted(set(quick) - {"seeds"} - set(self.grid))
        if unknown:
            raise StudyError(f"{where}: [quick] has keys {unknown} that are not grid parameters; "
                             f"allowed: seeds, {', '.join(self.grid)}")
        qgrid = _check_grid({k: v for k, v in quick.items() if k != "seeds"},
                            f"{where}: [quick]", allow_empty=True)
        object.__setattr__(self, "quick", {**qgrid, **({"seeds": quick["seeds"]}
                                                       if "seeds" in quick else {})})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<dict>",
                  default_name: str | None = None) -> StudySpec:
        """Validate a parsed study document (unknown or missing keys raise ``StudyError``)."""
        where = f"study {source}"
        if not isinstance(data, Mapping):
            raise StudyError(f"{where}: expected a table, got {type(data).__name__}")
        unknown = sorted(set(data) - _KNOWN_KEYS)
        if unknown:
            raise StudyError(f"{where}: unknown top-level keys {unknown}; allowed: "
                             f"{', '.join(sorted(_KNOWN_KEYS))}")
        for key in ("grid", "seeds", "base_seed", "metrics", "evaluator"):
            if key not in data:
                raise StudyError(f"{where}: missing required key {key!r}")
        kwargs = dict(data)
        if "name" not in kwargs:
            if default_name is None:
                raise StudyError(f"{where}: missing required key 'name'")
            kwargs["name"] = default_name
        kwargs.setdefault("fixed", {})
        kwargs.setdefault("quick", {})
        return cls(**kwargs, source=source)

    def places(self) -> dict[str, str]:
        """Where each parameter is set: "top level", "[fixed]" or "[grid]"."""
        out = {k: "top level" for k in BASE_KEYS if getattr(self, k) is not None}
        out.update(dict.fromkeys(self.fixed, "[fixed]"))
        out.update(dict.fromkeys(self.grid, "[grid]"))
        return out

    # --- expansion -------------------------------------------------------------------

    def size(self, quick: bool = False) -> int:
        """Number of points (configurations × seeds)."""
        grid, seeds = self._grid_and_seeds(quick)
        return math.prod(len(v) for v in grid.values()) * seeds

    def _grid_and_seeds(self, quick: bool) -> tuple[dict[str, tuple], int]:
        if not quick:
            return self.grid, self.seeds
        grid = {k: self.quick.get(k, v) for k, v in self.grid.items()}
        return grid, self.quick.get("seeds", self.seeds)

    def config_of(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The full config of a point: card names, [fixed], then the grid values."""
        base = {k: getattr(self, k) for k in BASE_KEYS if getattr(self, k) is not None}
        return {**base, **self.fixed, **params}

    def points(self, quick: bool = False) -> list[Point]:
        """All points: the grid's cartesian product (first parameter slowest) × seeds.

        The order is deterministic (the order of the file), seeds vary fastest. Each
        point's seed depends only on ``base_seed``, its full config and its seed index.
        """
        grid, seeds = self._grid_and_seeds(quick)
        keys = list(grid)
        out: list[Point] = []
        for values in itertools.product(*(grid[k] for k in keys)):
            params = dict(zip(keys, values, strict=True))
            config = self.config_of(params)
            chash = config_hash(config)
            for s in range(seeds):
                out.append(Point(index=len(out), params=params, seed_index=s,
                                 seed=point_seed(self.base_seed, config, s), config=config,
                                 config_hash=chash))
        return out

    def to_dict(self) -> dict[str, Any]:
        """The study as plain data (what a TOML file holds), for provenance."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        out.update({k: getattr(self, k) for k in BASE_KEYS if getattr(self, k) is not None})
        out.update(evaluator=self.evaluator, seeds=self.seeds, base_seed=self.base_seed,
                   metrics=list(self.metrics), grid={k: list(v) for k, v in self.grid.items()},
                   fixed=dict(self.fixed),
                   quick={k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in self.quick.items()})
        return out


def load_study(name_or_path: str | Path, *, check: bool = True) -> StudySpec:
    """Load a study: a name in the repository's ``studies/`` folder or a path to a TOML file.

    Raises ``memsim.CardError`` (a ``ValueError``) for a missing file or invalid TOML and
    :class:`memsim.StudyError` (a ``ValueError``) naming the file and the key for an invalid
    study. With ``check`` (default), a study whose evaluator is registered with declared
    parameters and metrics is also checked against them (types, ranges, card names, unknown
    parameters and metrics), before any point runs.
    """
    from memsim.cards import find_card

    path = find_card(name_or_path, "studies")
    stem, data = read_card(path, "studies")
    spec = StudySpec.from_dict(data, source=str(path), default_name=stem)
    if check:
        from memsim.studies.runner import EVALUATORS, check_study, get_evaluator

        if spec.evaluator in EVALUATORS:  # built-in ones are imported now (lazily)
            check_study(spec, get_evaluator(spec.evaluator))
    return spec
