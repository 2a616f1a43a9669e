"""Params files: YAML on disk, ``--set`` overrides, grids and seeds, resolved to configs.

This module owns everything between a params file and a :class:`RunConfig`:

* :func:`read_params` reads one YAML file of ``key: value`` pairs;
* :func:`parse_override` reads one ``--set key=value`` (the value as YAML);
* a file may describe several runs (below); :func:`resolve` expands it and
  validates every point once, which is what ``run-all`` plans from;
* :func:`load_config` loads the one run a file (plus overrides) describes.

Grids. A params file holds ``key: value`` pairs (the base of every run) and may add

``grid:``
    a mapping of config keys to *lists* of values, expanded as their
    Cartesian product; or a list of such mappings, expanded block by block
    and joined (scikit-learn's ``ParameterGrid`` rule). Blocks let values move
    together: ``{accumulation_steps: [4], batch_size: [512]}`` is one run, not
    a product with every other block's values.

``seeds:``
    a list of seeds; every grid point runs once per seed.

Run names are derived from the varied values, in the order the keys first
appear: ``<prefix>-<key><value>-...-s<seed>``, where the prefix is the file's
``run_name`` or its stem, and common keys get short tags (``n`` for
``accumulation_steps``, ``b`` for ``batch_size``...; :mod:`swin_gao_lib.config.labels`). Every key of the
union of blocks appears in every name, so names line up across blocks::

    seeds: [0, 1]
    grid:
      - {accumulation_steps: [1, 4]}
      - {accumulation_steps: [4], batch_size: [512], lr_scaling: [none, linear]}

gives ``mnist-n1-b128-lrnone-s0``, ``mnist-n4-b128-lrnone-s0``,
``mnist-n4-b512-lrnone-s0``, ``mnist-n4-b512-lrlinear-s0`` and the same four
with ``-s1``.
"""

from __future__ import annotations

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
FIELDS = frozenset(RunConfig.__dataclass_fields__)
#: Keys a grid may not vary: each has its own mechanism.
_NOT_IN_GRID = {
    "seed": "list the seeds under 'seeds:' instead",
    "run_name": "run names are derived from the varied values",
    "output_dir": "a suite lands in one folder; use run-all --output",
}
_DEFAULTS = RunConfig()


# ---------------------------------------------------------------- files and overrides
def read_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read a params YAML file into a mapping (no validation of the values).

    The file is read and parsed by :mod:`swin_gao_lib.config.yaml_text`: a
    regular UTF-8 file, strict and bounded YAML.
    """
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
    """One run of a grid: its name and the values it sets on top of the file's base."""

    name: str
    overrides: dict[str, Any]
    seed_rank: int = 0  # position of its seed in ``seeds:``; runs go seed by seed


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
            if key not in FIELDS:
                raise unknown_key_error(key, where=where)
            if not isinstance(values, list):
                raise ConfigError(f"{where}: {key} must be a list of values, e.g. {key}: "
                                  f"[{shown(values)}]"
                                  f", got {shown(values)}")
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
    seeds = parsed
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: {shown(seeds)} repeats a seed; each seed runs once")
    return seeds


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
    """Expand a params mapping into its runs (one point when it has no grid).

    Only the shape of the grid is checked here; :func:`resolve` validates each
    point's full config.

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
                    raise ConfigError(
                        f"grid block {b} gives the run '{name}' {where}; remove the repeated "
                        "values")
                seen[name] = b
                points.append(GridPoint(name, overrides, rank))
    return points


# ---------------------------------------------------------------- resolving
@dataclass(frozen=True)
class ResolvedRun:
    """One run of a params file, resolved: its validated config and its place in the plan."""

    name: str
    config: RunConfig
    overrides: dict[str, Any]  # the grid values it sets on top of the file's base
    seed_rank: int = 0


def _base(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in _NOT_CONFIG}


def resolve(path: str | os.PathLike, overrides: Sequence[str] | Mapping[str, Any] = ()
            ) -> list[ResolvedRun]:
    """Every run of a params file, each validated once, named as ``run-all`` names it.

    ``overrides`` apply to every run (``run-all`` sets ``output_dir`` this
    way); the run name always comes from the file and the grid point.
    """
    values = read_params(path)
    extra = parse_overrides(overrides)
    base = _base(values)
    runs = []
    for point in expand(values, Path(path).stem):
        cfg = make_config({**base, **point.overrides, **extra, "run_name": point.name})
        runs.append(ResolvedRun(point.name, cfg, point.overrides, point.seed_rank))
    return runs


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> RunConfig:
    """Load a params file, apply overrides, validate.

    Args:
        path: a YAML file of ``key: value`` pairs, or None for the defaults.
        overrides: ``["key=value", ...]`` strings as from ``--set``, or a mapping.

    The run name defaults to the params file's stem. A file with a ``grid:``
    or ``seeds:`` block describes several runs; it loads as one of them when
    the overrides set every key it varies, and the run is then named from
    those values as ``run-all`` names it.
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
            raise ConfigError(
                f"params file {path} is a grid of {len(points)} runs varying {', '.join(varied)}; run them "
                f"all with `swin-gao run-all {path}`, or pick one by setting "
                f"{', '.join(missing)} (e.g. --set {missing[0]}=...)")
        values = _base(values)
    values.update(chosen)
    if path is not None and values.get("run_name") is None:
        values["run_name"] = (point_name(prefix, varied, values) if varied
                              else Path(path).stem)
    return make_config(values)
