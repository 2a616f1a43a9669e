"""A study's declared design: its comparisons, their roles, predictions and margins.

A params file may hold a ``study:`` block beside its grid, written before the runs::

    study:
      margin:                      # the equivalence margin of each decided metric
        test_accuracy: 0.005
        generalization_gap: 0.005
        reason: a fifth of the tuned baseline's validation error (...)
      comparisons:
        - arm: {optimizer: adamw, accumulation_steps: 4, reduction: sum}
          versus: {optimizer: adamw, accumulation_steps: 1}
          role: primary            # its own Holm family; every other comparison: secondary
          prediction: equivalent   # equivalent | lower | higher (the arm against `versus`)
          why: Adam divides by sqrt(v), so a 4x larger gradient is nearly the same update
          label: ...               # optional: how the findings name it

``arm`` and ``versus`` are values on top of the file's base, each made a full
configuration; ``arm`` must be one of the file's grid points (seeds aside), ``versus``
may be run by another file of the suite. ``run-all`` checks every block before the
first run and keeps them in ``<suite>/study-design.yaml`` (:func:`write_design`),
where the report reads them (:func:`load_design`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from swin_gao_lib.config import make_config
from swin_gao_lib.config.params import STUDY_KEY, _base, expand, read_params
from swin_gao_lib.config.run_config import NOT_CONFIGURATION
from swin_gao_lib.config.yaml_text import read_yaml_file
from swin_gao_lib.errors import ConfigError, InputError, shown
from swin_gao_lib.files import atomic_write_text

#: Where a suite keeps its design (a file, so the suite's run folders stay run folders).
DESIGN_FILE = "study-design.yaml"
ROLES = ("primary", "secondary")
PRIMARY, SECONDARY = ROLES
PREDICTIONS = ("equivalent", "lower", "higher")
#: Metrics a margin may be stated for (fractions of accuracy).
MARGIN_METRICS = ("test_accuracy", "generalization_gap")
_COMPARISON_KEYS = {"arm", "versus", "role", "prediction", "why", "label"}


def configuration_key(config: Mapping[str, Any]) -> str:
    """A configuration's identity: its config without seed, run name and output folder."""
    return json.dumps({k: v for k, v in config.items() if k not in NOT_CONFIGURATION},
                      sort_keys=True)


@dataclass(frozen=True)
class Declared:
    """One declared comparison: full configurations of the arm and its partner, and why."""

    arm: dict[str, Any]
    versus: dict[str, Any]
    role: str
    prediction: str
    why: str
    source: str  # the params file's name
    label: str | None = None
    margin: dict[str, float] = field(default_factory=dict)


@dataclass
class StudyDesign:
    """The declared comparisons of a suite and each data set's margins (with their reasons)."""

    comparisons: list[Declared] = field(default_factory=list)
    margins: dict[str, dict[str, float]] = field(default_factory=dict)  # dataset -> metric -> m
    reasons: dict[str, str] = field(default_factory=dict)  # dataset -> why that margin


def _full(base: Mapping[str, Any], values: Any, where: str) -> dict[str, Any]:
    if not isinstance(values, Mapping) or not values:
        raise ConfigError(f"{where}: expected a mapping of config keys to values, got "
                          f"{shown(values)}")
    try:
        cfg = make_config({**base, **values, "seed": 0, "run_name": "design"})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return json.loads(configuration_key(cfg.to_dict()))


def parse_block(block: Any, values: Mapping[str, Any], stem: str, source: str) -> dict[str, Any]:
    """Validate one file's ``study:`` block; return it with full configurations.

    ``values`` is the params file's mapping (for its base and grid points).
    """
    where = f"{source}: {STUDY_KEY}"
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'margin' and 'comparisons', got "
                          f"{shown(block)}")
    unknown = set(block) - {"margin", "comparisons"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {shown(sorted(unknown, key=str)[0])}; use "
                          "margin, comparisons")
    margin = block.get("margin", {})
    if not isinstance(margin, Mapping) or not isinstance(margin.get("reason", ""), str):
        raise ConfigError(f"{where}.margin: expected metric: value pairs and a reason, got "
                          f"{shown(margin)}")
    margins = {}
    for metric, m in margin.items():
        if metric == "reason":
            continue
        if metric not in MARGIN_METRICS:
            raise ConfigError(f"{where}.margin: {shown(metric)} is not one of "
                              f"{', '.join(MARGIN_METRICS)}")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m < 1:
            raise ConfigError(f"{where}.margin.{metric}: expected a fraction in (0, 1), got "
                              f"{shown(m)}")
        margins[metric] = float(m)
    if margins and not str(margin.get("reason", "")).strip():
        raise ConfigError(f"{where}.margin: state the margin's reason (reason: ...)")
    base = _base(values)
    points = {configuration_key(make_config({**base, **p.overrides, "run_name": "x"}).to_dict())
              for p in expand(values, stem)}
    items = block.get("comparisons", [])
    if not isinstance(items, list):
        raise ConfigError(f"{where}.comparisons: expected a list, got {shown(items)}")
    comparisons = []
    for i, item in enumerate(items, 1):
        at = f"{where}.comparisons[{i}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at}: expected a mapping, got {shown(item)}")
        missing = {"arm", "versus", "role", "prediction", "why"} - set(item)
        extra = set(item) - _COMPARISON_KEYS
        if missing or extra:
            raise ConfigError(f"{at}: " + (f"missing {', '.join(sorted(missing))}" if missing
                                           else f"unknown key {shown(sorted(extra, key=str)[0])}"))
        if item["role"] not in ROLES:
            raise ConfigError(f"{at}.role: {shown(item['role'])} is not one of {', '.join(ROLES)}")
        if item["prediction"] not in PREDICTIONS:
            raise ConfigError(f"{at}.prediction: {shown(item['prediction'])} is not one of "
                              f"{', '.join(PREDICTIONS)}")
        if not isinstance(item["why"], str) or not item["why"].strip():
            raise ConfigError(f"{at}.why: say why this outcome is expected")
        arm = _full(base, item["arm"], f"{at}.arm")
        versus = _full(base, item["versus"], f"{at}.versus")
        if configuration_key(arm) not in points:
            raise ConfigError(f"{at}.arm: {shown(dict(item['arm']))} is not a run of this file's "
                              "grid; name the values that set one grid point apart")
        if arm == versus:
            raise ConfigError(f"{at}: arm and versus are the same configuration")
        comparisons.append({"arm": arm, "versus": versus, "role": item["role"],
                            "prediction": item["prediction"], "why": item["why"].strip(),
                            "label": item.get("label"), "margin": margins})
    dataset = make_config({**base, "seed": 0, "run_name": "x"}).dataset if base else None
    return {"dataset": dataset, "margin": margins, "reason": str(margin.get("reason", "")),
            "comparisons": comparisons}


def read_design(files: list[Path]) -> dict[str, dict[str, Any]]:
    """The checked ``study:`` blocks of ``files`` (file name -> block); files without one: none.

    Raises:
        ConfigError: a malformed block, or two files of one data set with different margins.
    """
    out: dict[str, dict[str, Any]] = {}
    for f in files:
        values = read_params(f)
        if STUDY_KEY in values:
            out[Path(f).name] = parse_block(values[STUDY_KEY], values, Path(f).stem, str(f))
    by_dataset: dict[str, tuple[str, dict]] = {}
    for name, block in out.items():
        if not block["margin"]:
            continue
        seen = by_dataset.setdefault(block["dataset"], (name, block["margin"]))
        if seen[1] != block["margin"]:
            raise ConfigError(f"{name}: study.margin {shown(block['margin'])} differs from "
                              f"{seen[0]}'s {shown(seen[1])} for the same data set; state one "
                              "margin per data set")
    return out


def write_design(files: list[Path], output: Path, force: bool = False) -> Path | None:
    """Check the blocks of ``files`` against ``<output>/study-design.yaml`` and write them in.

    Nothing is written when no file has a block. Raises :class:`InputError`, before
    writing, when the file holds a different block for one of ``files`` (records made
    under the old predictions) and ``force`` is not set.
    """
    blocks = read_design(files)
    if not blocks:
        return None
    path = Path(output) / DESIGN_FILE
    stored = _read(path) if path.is_file() else {}
    for name, block in blocks.items():
        if name in stored and stored[name] != block and not force:
            raise InputError(f"{path}: holds a different study block for {name} than the params "
                             "file has now; the records there were made under the old one. Use "
                             "another --output, or --force to run again under the new one")
    stored.update(blocks)
    text = ("# The study's declared design, copied by `swin-gao run-all` from the params files'\n"
            "# study blocks before the runs started (swin_gao_lib/config/design.py).\n"
            + yaml.safe_dump(stored, sort_keys=True))
    return atomic_write_text(path, text)


def _read(path: Path) -> dict[str, Any]:
    data = read_yaml_file(path, "study design")
    if not isinstance(data, dict):
        raise InputError(f"{path}: is not a study design; delete it and run `swin-gao run-all` "
                         "again")
    return data


def load_design(suite_dir: str | Path) -> StudyDesign | None:
    """The design a suite was run under (its ``study-design.yaml``), or None without one."""
    path = Path(suite_dir) / DESIGN_FILE
    if not path.is_file():
        return None
    design = StudyDesign()
    for name, block in sorted(_read(path).items()):
        dataset = block.get("dataset")
        if block.get("margin"):
            design.margins[dataset] = dict(block["margin"])
            design.reasons[dataset] = block.get("reason", "")
        for c in block.get("comparisons", []):
            design.comparisons.append(Declared(
                arm=c["arm"], versus=c["versus"], role=c["role"], prediction=c["prediction"],
                why=c["why"], source=name, label=c.get("label"), margin=dict(c.get("margin", {}))))
    return design

