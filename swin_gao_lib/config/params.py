"""Params files: YAML on disk, ``--set`` overrides, grids and seeds, resolved to configs.

A file holds ``key: value`` pairs (the base of every run) and may add ``grid:``
(a mapping of keys to lists of values, their Cartesian product; or a list of such
blocks, expanded one by one and joined: scikit-learn's ``ParameterGrid``) and
``seeds:`` (every point runs once per seed). A point is named
``<prefix>-<tag><value>-...-s<seed>`` from every key varied in any block, in the
order the keys first appear (:func:`swin_gao_lib.config.labels.point_name`);
docs/running.md#grids-one-file-many-runs has an example.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from swin_gao_lib.config import MAX_SEED, RunConfig, make_config, unknown_key_error
from swin_gao_lib.config.checks import parse_number
from swin_gao_lib.config.examples import missing_params_hint
from swin_gao_lib.config.labels import point_name
from swin_gao_lib.config.paths import refuse_control_characters
from swin_gao_lib.config.yaml_text import read_yaml, read_yaml_file
from swin_gao_lib.errors import ConfigError, shown, shown_path

GRID_KEY, SEEDS_KEY = "grid", "seeds"
#: A study's declared design (comparisons, predictions, margins): read by
#: :mod:`swin_gao_lib.config.design`, never part of a run's config.
STUDY_KEY = "study"
#: Keys of a params file that are not config keys.
_NOT_CONFIG = (GRID_KEY, SEEDS_KEY, STUDY_KEY)
#: Keys a grid may not vary: each has its own mechanism.
_NOT_IN_GRID = {"seed": "list the seeds under 'seeds:' instead",
                "run_name": "run names are derived from the varied values",
                "output_dir": "a suite lands in one folder; use run-all --output"}
_DEFAULTS = RunConfig()


# ---------------------------------------------------------------- files and overrides
def read_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read a params YAML file (strict and bounded: :mod:`.yaml_text`) into a mapping,
    values unchecked."""
    where = f"params file {shown_path(path)}"
    try:
        data = read_yaml_file(path, "params file", " (run-all takes a folder of them)")
    except ConfigError as exc:
        if str(exc).endswith("does not exist"):  # a pip install has no params/: say how to get it
            raise ConfigError(f"{exc}{missing_params_hint(path)}") from None
        raise
    if data is None:
        raise ConfigError(f"{where} holds no settings; write key: value lines (an "
                          "empty file would silently train on every default)")
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a mapping of key: value, got {type(data).__name__}")
    return data


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as YAML (``8``, ``[2, 2]``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"--set {shown(text)}: expected key=value, e.g. --set epochs=2")
    key, raw = text.split("=", 1)
    key = key.strip()
    # YAML would fold a newline typed into the value into a space ("out\nx" -> "out x")
    refuse_control_characters(raw, f"--set {shown(key, quote=False)}", "value")
    if not raw.strip():
        return key, ""
    value = read_yaml(raw, f"--set {shown(key, quote=False)}")
    # "dir:" or "a: b" read as YAML is a mapping; unless braces ask for one, it is a string.
    if isinstance(value, dict) and not raw.lstrip().startswith("{"):
        value = raw.strip()
    return key, value


def parse_overrides(overrides: Sequence[str] | Mapping[str, Any]) -> dict[str, Any]:
    """``["key=value", ...]`` (from ``--set``) or a mapping, as a mapping."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    return dict(parse_override(text) for text in overrides)


# ---------------------------------------------------------------- grids
@dataclass(frozen=True)
class GridPoint:
    """One run of a params file: its name, the values it sets on top of the file's base and,
    once :func:`resolve` has validated it, its config."""

    name: str
    overrides: dict[str, Any]
    seed_rank: int = 0  # position of its seed in ``seeds:``; runs go seed by seed
    config: RunConfig | None = None


def has_grid(values: Mapping[str, Any]) -> bool:
    """Whether a params mapping defines several runs."""
    return GRID_KEY in values or SEEDS_KEY in values


def _blocks(grid: Any) -> list[dict[str, list]]:
    """Validate a ``grid:`` value and return it as a list of blocks."""
    if isinstance(grid, Mapping):
        blocks = [grid]
    elif isinstance(grid, list) and grid:
        blocks = grid
    else:
        raise ConfigError("grid: expected a mapping of key: [values...] or a non-empty list of "
                          f"such mappings, got {shown(grid)}")
    out = []
    for i, block in enumerate(blocks, 1):
        where = "grid" if len(blocks) == 1 else f"grid block {i}"
        if not isinstance(block, Mapping) or not block:
            raise ConfigError(f"{where}: expected a non-empty mapping of key: [values...], "
                              f"got {shown(block)}")
        for key, values in block.items():
            if key in _NOT_IN_GRID:
                raise ConfigError(f"{where}: '{key}' cannot be varied in a grid; {_NOT_IN_GRID[key]}")
            if key not in RunConfig.__dataclass_fields__:
                raise unknown_key_error(key, where=where)
            if not isinstance(values, list):
                raise ConfigError(f"{where}: {key} must be a list of values, e.g. {key}: "
                                  f"[{shown(values)}], got {shown(values)}")
            if not values:
                raise ConfigError(f"{where}: {key} has an empty list of values; give at least one")
        out.append(dict(block))
    return out


def _seeds(values: Mapping[str, Any]) -> list[int] | None:
    if SEEDS_KEY not in values:
        return None
    seeds = values[SEEDS_KEY]
    if "seed" in values:
        raise ConfigError("seeds: the file sets both 'seed' and 'seeds'; keep one")
    if not isinstance(seeds, list) or not seeds:
        raise ConfigError("seeds: expected a non-empty list of integers, e.g. [0, 1, 2], got "
                          f"{shown(seeds)}")
    parsed = []
    for s in seeds:
        try:
            seed = parse_number("seeds", s, int)  # the one parse of every number
        except ConfigError:
            seed = None
        if seed is None or not 0 <= seed <= MAX_SEED:
            raise ConfigError("seeds: every seed must be an integer in [0, 2^32 - 1], got "
                              f"{shown(s)}")
        parsed.append(seed)
    if len(set(parsed)) != len(parsed):
        raise ConfigError(f"seeds: {shown(parsed)} repeats a seed; each seed runs once")
    return parsed


def varied_keys(values: Mapping[str, Any]) -> list[str]:
    """The keys a grid file varies (union of its blocks, in order), plus ``seed`` with ``seeds:``."""
    keys: list[str] = []
    if GRID_KEY in values:
        for block in _blocks(values[GRID_KEY]):
            keys += [k for k in block if k not in keys]
    if _seeds(values) is not None:
        keys.append("seed")
    return keys


def expand(values: Mapping[str, Any], prefix: str) -> list[GridPoint]:
    """Expand a params mapping into its runs (one point when it has no grid); only the
    grid's shape is checked here, :func:`resolve` validates each point.

    Raises:
        ConfigError: a malformed grid, an unknown key, an empty value list,
            or two points that would share a run name.
    """
    if not has_grid(values):
        return [GridPoint(values.get("run_name") or prefix, {})]
    prefix = values.get("run_name") or prefix
    blocks = _blocks(values[GRID_KEY]) if GRID_KEY in values else [{}]
    seeds = _seeds(values)
    varied = varied_keys(values)
    base = _base(values)
    points, seen = [], {}
    for rank, seed in enumerate(seeds if seeds is not None else [None]):
        for b, block in enumerate(blocks, 1):
            keys = list(block)
            for combo in itertools.product(*(block[k] for k in keys)):
                overrides = dict(zip(keys, combo))
                # Keys varied in other blocks keep this file's base (or the default)
                # value here; set them anyway, so each point names every varied key.
                for k in varied:
                    if k != "seed" and k not in overrides:
                        default = getattr(_DEFAULTS, k)
                        overrides[k] = base.get(k, list(default) if isinstance(default, tuple)
                                                else default)
                if seed is not None:
                    overrides["seed"] = seed
                name = point_name(prefix, varied, {**base, **overrides})
                if name in seen:
                    where = "twice" if seen[name] == b else f"already made by block {seen[name]}"
                    raise ConfigError(f"grid block {b} gives the run '{name}' {where}; remove "
                                      "the repeated values")
                seen[name] = b
                points.append(GridPoint(name, overrides, rank))
    return points


# ---------------------------------------------------------------- resolving
def _base(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in _NOT_CONFIG}


def resolve(path: str | os.PathLike, overrides: Sequence[str] | Mapping[str, Any] = ()
            ) -> list[GridPoint]:
    """Every run of a params file, each validated once, named as ``run-all`` names it.

    ``overrides`` apply to every run (``run-all`` sets ``output_dir`` this way).
    """
    values = read_params(path)
    extra = parse_overrides(overrides)
    base = _base(values)
    return [dataclasses.replace(point, config=make_config(
        {**base, **point.overrides, **extra, "run_name": point.name}))
        for point in expand(values, Path(path).stem)]


def load_config(path: str | os.PathLike | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> RunConfig:
    """The one run a params file (``None``: the defaults) plus overrides describes, validated.

    ``overrides``: ``["key=value", ...]`` as from ``--set``, or a mapping. The run
    name defaults to the file's stem; a grid file loads as one of its points when the
    overrides set every key it varies, named as ``run-all`` names it.
    """
    values = read_params(path) if path is not None else {}
    chosen = parse_overrides(overrides)
    varied: list[str] = []
    values.pop(STUDY_KEY, None)  # a study block describes the suite, not this run
    if has_grid(values):
        prefix = values.get("run_name") or Path(path).stem
        varied = varied_keys(values)
        points = expand(values, prefix)  # also checks the grid's shape
        missing = [k for k in varied if k not in chosen]
        if missing:
            raise ConfigError(f"params file {path} is a grid of {len(points)} runs varying "
                              f"{', '.join(varied)}; run them all with `swin-gao run-all {path}`, "
                              f"or pick one by setting {', '.join(missing)} (e.g. --set "
                              f"{missing[0]}=...)")
        values = _base(values)
    values.update(chosen)
    if path is not None and values.get("run_name") is None:
        values["run_name"] = (point_name(prefix, varied, values) if varied
                              else Path(path).stem)
    return make_config(values)
