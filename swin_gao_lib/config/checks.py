"""Values to a checked :class:`RunConfig` (coercion, validation) and back to YAML.

Every error is one :class:`ConfigError` line naming the key and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import numbers
import typing
from typing import Any, Mapping, Sequence

import yaml

from swin_gao_lib.config import datasets
from swin_gao_lib.config.paths import check_path, refuse_control_characters
from swin_gao_lib.config.run_config import (ACCUMULATION_MODES, IMAGE_HANDLING, LIMITS,
                                            LR_SCALINGS, LR_SCHEDULES, MAX_RUN_NAME, MAX_SEED,
                                            OPTIMIZERS, PIPELINES, PRECISIONS, REDUCTIONS,
                                            RUN_NAME, RunConfig)
from swin_gao_lib.config.yaml_text import read_yaml
from swin_gao_lib.errors import ConfigError, shown
from swin_gao_lib.runtime.backend import BACKENDS

_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = typing.get_type_hints(RunConfig)


# ---------------------------------------------------------------- coercion
def parse_number(name: str, value: Any, kind: type) -> int | float:
    """The one parse of every number of a config, whatever its origin: convert, then check.

    * ``float``: a number, or text Python reads as one ("3e-4", which YAML 1.1
      leaves as a string); the result must be finite (``inf``, ``nan``, ``1e400``).
    * ``int``: an integer (not a bool, a float such as ``2.0``, nor text such as ``"64"``).

    Raises:
        ConfigError: naming ``name``, what was given, and what to write instead.
    """
    text = shown(value, quote=False)  # a 400-digit integer: its start and end
    example = _FIELDS[name].default if name in _FIELDS else None
    fix = f"; e.g. {name}: {example}" if type(example) is kind else ""
    wanted = "a number" if kind is float else "an integer"
    given = shown(value) if isinstance(value, str) else text
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        raise ConfigError(f"{name}: expected {wanted}, got {given} ({type(value).__name__}){fix}")
    if kind is int:
        # YAML reads every integer as one; quoted text ("64", "0x10") is refused, not guessed at.
        if not isinstance(value, numbers.Integral):
            raise ConfigError(f"{name}: expected {wanted}, got {given} ({type(value).__name__})"
                              f"{fix}")
        return int(value)
    try:
        converted = float(value.strip() if isinstance(value, str) else value)
    except ValueError:
        raise ConfigError(f"{name}: expected {wanted}, got {given} (str){fix}") from None
    except OverflowError:  # an integer beyond the largest float
        converted = math.inf
    if not math.isfinite(converted):
        spelled = isinstance(value, float) or any(w in str(value).lower() for w in ("inf", "nan"))
        why = "" if spelled else " (too large for a float: it reads as inf)"
        raise ConfigError(f"{name}: must be a finite number, got {text}{why}{fix}")
    return converted


def _coerce(name: str, value: Any) -> Any:
    """``value`` converted to, and checked against, the declared type of field ``name``."""
    hint = _HINTS[name]
    optional = type(None) in typing.get_args(hint)
    if optional:
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        # Accept one int for every stage (``num_heads: 8``) as well as a list.
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(f"{name}: expected a non-empty list of integers, e.g. [2, 2], "
                              f"got {shown(value)}")
        for v in value:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):
                raise ConfigError(f"{name}: every entry must be an integer, got {shown(v)} in "
                                  f"{shown(value)}")
        return tuple(int(v) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {shown(value)}")
        return value
    if hint in (int, float):
        return parse_number(name, value, hint)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {shown(value)} "
                              f"({type(value).__name__})")
        return value
    raise AssertionError(f"unhandled type {hint} for {name}")  # a bug in this module


def unknown_key_error(key: str, where: str | None = None) -> ConfigError:
    """The error for a key that is not a :class:`RunConfig` field, with the closest match."""
    close = difflib.get_close_matches(str(key), _FIELDS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(_FIELDS))}"
    return ConfigError(f"{where + ': ' if where else ''}unknown config key {shown(str(key))}{hint}")


# ---------------------------------------------------------------- validation
def _choice(name: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        close = difflib.get_close_matches(str(value), options, n=1)
        extra = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{name}: {shown(value)} is not one of {', '.join(options)}{extra}")


def _positive(cfg: RunConfig, *names: str) -> None:
    for n in names:
        if getattr(cfg, n) < 1:
            raise ConfigError(f"{n}: must be >= 1, got {getattr(cfg, n)}")


def check_run_name(name: str, field: str = "run_name") -> str:
    """A run name must be one safe folder name: it may not climb out of ``output_dir``."""
    refuse_control_characters(name, field, "run name")  # the rule every path shares
    if not name or len(name) > MAX_RUN_NAME or not RUN_NAME.fullmatch(name):
        raise ConfigError(
            f"{field}: {shown(name)} is not a valid run name; use 1 to {MAX_RUN_NAME} letters, "
            "digits, '.', '-' or '_', not starting with '.' (it names one folder inside "
            "output_dir)")
    return name


def _rate(cfg: RunConfig, *names: str) -> None:
    for n in names:
        v = getattr(cfg, n)
        if not (0.0 <= v < 1.0):
            raise ConfigError(f"{n}: must be in [0, 1), got {v}")


def validate(cfg: RunConfig) -> RunConfig:
    """Check every cross-field constraint; raise :class:`ConfigError` naming the field."""
    _choice("dataset", cfg.dataset, tuple(datasets.DATASETS))
    if not (cfg.source in ("keras", "sample") or cfg.source.startswith("dir:")):
        raise ConfigError(f"source: {shown(cfg.source)} is not valid; use 'keras' (download), "
                          "'sample' (bundled real subset) or 'dir:<path>' (the published files "
                          "on disk)")
    if cfg.source.startswith("dir:"):  # with room for the data set's file names inside it
        if not cfg.source[4:].strip():
            raise ConfigError("source: 'dir:' needs a folder, e.g. 'dir:/data/mnist'")
        check_path(cfg.source[4:], "source", room=64, below="the data set's file names")
    if cfg.source == "sample" and not datasets.get(cfg.dataset).sample:
        raise ConfigError(
            f"source: no sample of {cfg.dataset} ships with the kit (samples: "
            f"{', '.join(datasets.with_sample())}); use 'keras' or 'dir:<path>'")
    for name, options in (("image_handling", IMAGE_HANDLING), ("optimizer", OPTIMIZERS),
                          ("accumulation_mode", ACCUMULATION_MODES), ("reduction", REDUCTIONS),
                          ("lr_scaling", tuple(LR_SCALINGS)), ("lr_schedule", LR_SCHEDULES)):
        _choice(name, getattr(cfg, name), options)
    if cfg.warmup_updates < 0:
        raise ConfigError(f"warmup_updates: must be >= 0 (0: no warm-up), got {cfg.warmup_updates}")
    if cfg.lr_schedule == "step" and cfg.lr_step_updates is None:
        raise ConfigError("lr_step_updates: lr_schedule: step needs it; set the number of "
                          "optimizer updates between decays, e.g. lr_step_updates: 100")
    if cfg.lr_step_updates is not None and cfg.lr_schedule != "step":
        raise ConfigError(f"lr_step_updates: only used with lr_schedule: step (got lr_schedule: "
                          f"{cfg.lr_schedule}); remove it or set lr_schedule: step")
    if cfg.lr_step_updates is not None and cfg.lr_step_updates < 1:
        raise ConfigError(f"lr_step_updates: must be >= 1, got {cfg.lr_step_updates}")
    if not 0.0 < cfg.lr_step_factor <= 1.0:
        raise ConfigError(f"lr_step_factor: must be in (0, 1], got {cfg.lr_step_factor}")
    if cfg.backend is not None:
        _choice("backend", cfg.backend, BACKENDS)
    for name, options in (("precision", PRECISIONS), ("pipeline", PIPELINES)):
        _choice(name, getattr(cfg, name), options)
    if cfg.pipeline == "device" and cfg.backend == "tensorflow":
        raise ConfigError("pipeline: 'device' runs on the JAX backend; set backend: jax, or "
                          "pipeline: host for TensorFlow")
    _positive(cfg, "patch_size", "embed_dim", "window_size", "mlp_dim", "batch_size",
              "accumulation_steps", "epochs", "lr_base_batch")
    for n, limit in LIMITS.items():
        v = getattr(cfg, n)
        v = max(v) if isinstance(v, tuple) else v  # depths: its largest stage
        if v is not None and v > limit:
            raise ConfigError(f"{n}: {v} is larger than {limit:,}; is it a typo?")
    if cfg.run_name is not None:
        check_run_name(cfg.run_name)
    # with room for <run_name>/checkpoint/<its longest file> below it
    check_path(cfg.output_dir, "output_dir", room=MAX_RUN_NAME + 128, below="the run's files")
    for n in ("max_train_samples", "max_test_samples"):
        v = getattr(cfg, n)
        if v is not None and v < 1:
            raise ConfigError(f"{n}: must be >= 1 or null (all samples), got {v}")
    if cfg.head_units < 0:
        raise ConfigError(f"head_units: must be >= 0 (0 means no hidden layer), got {cfg.head_units}")
    if cfg.crop_padding < 0:
        raise ConfigError(f"crop_padding: must be >= 0, got {cfg.crop_padding}")
    h, w, _ = cfg.input_shape  # the images the crop is made of (after pad32)
    if cfg.crop_padding > min(h, w) // 2:  # padded images of side h + 2p: memory, then none
        raise ConfigError(f"crop_padding: {cfg.crop_padding} is more than {min(h, w) // 2}, half "
                          f"the side of the {h}x{w} images it pads; use at most {min(h, w) // 2}, "
                          "which keeps half of each image in every crop (keras-io pads 4)")
    _rate(cfg, "dropout", "attention_dropout", "drop_path_rate", "label_smoothing",
          "validation_split")
    if not cfg.learning_rate > 0:
        raise ConfigError(f"learning_rate: must be > 0, got {cfg.learning_rate}")
    if cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay: must be >= 0, got {cfg.weight_decay}")
    _rate(cfg, "momentum")
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed: must be in [0, 2^32 - 1] = [0, {MAX_SEED}], got {cfg.seed}")

    # --- accumulation
    n = cfg.accumulation_steps
    if cfg.accumulation_mode == "in_step" and cfg.batch_size < n:
        raise ConfigError(f"batch_size: in in_step mode the batch ({cfg.batch_size}) is split "
                          f"into accumulation_steps={n} micro-batches, so it must be >= {n}")
    if cfg.accumulation_mode == "in_step" and math.ceil(cfg.batch_size / cfg.micro_batch_size) != n:
        b, m = cfg.batch_size, cfg.micro_batch_size
        works = [k for k in range(1, min(b, 64) + 1) if math.ceil(b / math.ceil(b / k)) == k]
        raise ConfigError(
            f"accumulation_steps: a batch of {b} in micro-batches of ceil({b}/{n}) = {m} makes "
            f"{math.ceil(b / m)} micro-batches, not {n}; choose an N that the batch splits into "
            f"(for {b}: {', '.join(map(str, works))}{', ...' if b > 64 else ''})")
    if cfg.accumulation_mode == "optimizer":
        if n > 1 and cfg.batch_size % n:
            raise ConfigError(f"batch_size: optimizer mode feeds batches of batch_size/"
                              f"accumulation_steps; {cfg.batch_size} is not divisible by {n} "
                              f"(try {cfg.batch_size - cfg.batch_size % n})")
        if cfg.reduction != "mean":
            raise ConfigError("reduction: Keras's optimizer accumulation always averages the N "
                              "gradients; 'sum' exists only in accumulation_mode: in_step")

    # --- geometry
    p = cfg.patch_size
    if h % p or w % p:
        fix = " (or image_handling: pad32 for 32x32)" if h == 28 else ""
        raise ConfigError(f"patch_size: {p} does not divide the {h}x{w} input of {cfg.dataset}; "
                          f"use a divisor of {h}{fix}")
    if len(cfg.num_heads) != len(cfg.depths):
        raise ConfigError(f"num_heads: has {len(cfg.num_heads)} entries but depths has "
                          f"{len(cfg.depths)} stages; give one head count per stage")
    if any(d < 1 for d in cfg.depths):
        raise ConfigError(f"depths: every stage needs at least one block, got "
                          f"{shown(list(cfg.depths))}")
    if cfg.shift_size < 0 or cfg.shift_size >= cfg.window_size:
        raise ConfigError(f"shift_size: must be in [0, window_size) = [0, {cfg.window_size}), "
                          f"got {cfg.shift_size}")
    side = h // p
    for i in range(len(cfg.depths) - 1 + int(cfg.merge_after_last_stage)):
        if side % 2:
            raise ConfigError(f"depths: patch merging {i + 1} halves a {side}x{side} token grid, "
                              "which is odd; use fewer stages, merge_after_last_stage: false, or "
                              "a different patch_size")
        side //= 2
    for i, (g, heads) in enumerate(zip(cfg.stage_grids(), cfg.num_heads)):
        dim = cfg.embed_dim * 2**i
        if heads < 1 or dim % heads:
            raise ConfigError(f"num_heads: stage {i + 1} has width {dim}, which {heads} heads do "
                              f"not divide; use a divisor of {dim}")
        # Swin's rule: a window as large as the grid becomes the whole grid (no shift).
        if g > cfg.window_size and g % cfg.window_size:
            divisors = [d for d in range(1, g + 1) if g % d == 0]
            raise ConfigError(f"window_size: {cfg.window_size} does not divide stage {i + 1}'s "
                              f"{g}x{g} patch grid; use one of {divisors}")
    return cfg


# ---------------------------------------------------------------- building
def make_config(values: Mapping[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Build and validate a :class:`RunConfig` from a mapping plus keyword overrides."""
    kwargs = {}
    for key, value in {**(values or {}), **overrides}.items():
        if key not in _FIELDS:
            raise unknown_key_error(key)
        kwargs[key] = _coerce(key, value)
    return validate(RunConfig(**kwargs))


def to_yaml(cfg: RunConfig) -> str:
    """The config as YAML that :func:`from_yaml` reads back to an equal config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def from_yaml(text: str, where: str = "config") -> RunConfig:
    """Read a resolved config (the text of a run's ``config.yaml``) back, validated."""
    values = read_yaml(text, where)  # bounded, as every YAML the kit reads
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must hold a mapping of key: value, got "
                          f"{type(values).__name__}")
    return make_config(values)


def uneven_split_note(cfg: RunConfig) -> str | None:
    """How an in-step batch that N does not divide is cut, or ``None`` when it divides.

    Micro-batches of ceil(B/N), the last one shorter (B = 32, N = 5: 7+7+7+7+4); the
    update stays exact. The CLI and the train notebook print this line before training.
    """
    b, n = cfg.batch_size, cfg.accumulation_steps
    if n <= 1 or b % n == 0 or cfg.accumulation_mode != "in_step":
        return None
    m = cfg.micro_batch_size
    sizes = [m] * (b // m) + ([b % m] if b % m else [])
    even = [k for k in range(2, min(b, 64) + 1) if b % k == 0]
    return (f"note: accumulation_steps={n} does not divide batch_size={b}: each batch is cut "
            f"into micro-batches of {'+'.join(map(str, sizes))} (the last one shorter; the "
            f"update weighs every sample equally); N that divide {b}: "
            f"{', '.join(map(str, even)) or 'none'}")

