"""Grids in params files: one YAML file that expands into a set of runs.

A params file holds ``key: value`` pairs (the base of every run) and may add

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
``accumulation_steps``, ``b`` for ``batch_size``...). Every key of the
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
import re
from dataclasses import dataclass
from typing import Any, Mapping

from swin_gao_lib.config import RunConfig, unknown_key_error
from swin_gao_lib.errors import ConfigError

GRID_KEY, SEEDS_KEY = "grid", "seeds"
#: Keys a grid may not vary: each has its own mechanism.
_NOT_IN_GRID = {
    "seed": "list the seeds under 'seeds:' instead",
    "run_name": "run names are derived from the varied values",
    "output_dir": "a suite lands in one folder; use run-all --output",
}
#: Short tags for the keys studies vary most; other keys use their full name.
TAGS = {
    "accumulation_steps": "n", "batch_size": "b", "learning_rate": "lr", "lr_scaling": "lr",
    "epochs": "e", "seed": "s", "accumulation_mode": "", "reduction": "", "optimizer": "",
    "dataset": "",
}
_DEFAULTS = RunConfig()


@dataclass(frozen=True)
class GridPoint:
    """One run of a grid: its name and the values it sets on top of the file's base."""

    name: str
    overrides: dict[str, Any]
    seed_rank: int = 0  # position of its seed in ``seeds:``; runs go seed by seed


def has_grid(values: Mapping[str, Any]) -> bool:
    """Whether a params mapping defines several runs."""
    return GRID_KEY in values or SEEDS_KEY in values


def _format(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, tuple)):
        text = "x".join(_format(v) for v in value)
    else:
        text = str(value)
    # Keep names safe as folder names on every OS and in shells.
    return re.sub(r"[^A-Za-z0-9.+_-]", "_", text)


def point_name(prefix: str, varied: list[str], values: Mapping[str, Any]) -> str:
    """The run name of the point ``values`` of a grid varying ``varied``."""
    parts = [prefix]
    for key in varied:
        value = values.get(key, getattr(_DEFAULTS, key, None))
        parts.append(TAGS.get(key, key) + _format(value))
    return "-".join(parts)


def _blocks(grid: Any) -> list[dict[str, list]]:
    """Validate a ``grid:`` value and return it as a list of blocks."""
    if isinstance(grid, Mapping):
        blocks = [grid]
    elif isinstance(grid, list) and grid:
        blocks = grid
    else:
        raise ConfigError("grid: expected a mapping of key: [values...] or a non-empty list of "
                          f"such mappings, got {grid!r}")
    out = []
    for i, block in enumerate(blocks, 1):
        where = "grid" if len(blocks) == 1 else f"grid block {i}"
        if not isinstance(block, Mapping) or not block:
            raise ConfigError(f"{where}: expected a non-empty mapping of key: [values...], "
                              f"got {block!r}")
        for key, values in block.items():
            if key in _NOT_IN_GRID:
                raise ConfigError(f"{where}: '{key}' cannot be varied in a grid; {_NOT_IN_GRID[key]}")
            if key not in RunConfig.__dataclass_fields__:
                raise unknown_key_error(key, where=where)
            if not isinstance(values, list):
                raise ConfigError(f"{where}: {key} must be a list of values, e.g. {key}: [{values!r}]"
                                  f", got {values!r}")
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
        raise ConfigError(f"seeds: expected a non-empty list of integers, e.g. [0, 1, 2], got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ConfigError(f"seeds: every seed must be an integer >= 0, got {s!r}")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds: {seeds} repeats a seed; each seed runs once")
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

    Only the shape of the grid is checked here; each point's full config is
    validated by :func:`swin_gao_lib.config.load_config`.

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
    base = {k: v for k, v in values.items() if k not in (GRID_KEY, SEEDS_KEY)}
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
