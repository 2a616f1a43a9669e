"""The run configuration: one typed object holding every knob of a run.

Data flows ``params/*.yaml`` -> :func:`load_config` -> :class:`RunConfig`
(validated here, before anything is built) -> data, model, train step.

Defaults are those of the keras-io Swin Transformer example (the model the
paper most likely used): patch 2, embed 64, 8 heads, window 2, shift 1,
MLP 256, AdamW 1e-3 with weight decay 1e-4, label smoothing 0.1, batch 128,
40 epochs, validation split 0.1.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from swin_gao_lib.errors import ConfigError

DATASETS = ("mnist", "fashion_mnist", "cifar10")
#: (height, width, channels) of each data set as published.
NATIVE_SHAPES = {"mnist": (28, 28, 1), "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3)}
NUM_CLASSES = 10
IMAGE_HANDLING = ("pad32", "native")
OPTIMIZERS = ("adamw", "adam", "sgd")
ACCUMULATION_MODES = ("in_step", "optimizer")
REDUCTIONS = ("mean", "sum")
#: lr_scaling -> the power k of (batch_size / lr_base_batch) that multiplies the learning rate.
LR_SCALINGS = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}


@dataclass(frozen=True)
class RunConfig:
    """Every knob of one training run. Build with :func:`make_config`.

    Geometry: an image of ``H x W`` is cut into ``patch_size`` patches, giving
    a token grid of ``H/p x W/p``. Stage ``i`` (``len(depths)`` stages) runs
    ``depths[i]`` Swin blocks with ``num_heads[i]`` heads at width
    ``embed_dim * 2**i`` on a grid halved by each patch merging between stages.
    Blocks alternate plain (shift 0) and shifted (``shift_size``) windows.
    """

    # --- data
    dataset: str = "cifar10"
    source: str = "sample"  # "keras" | "sample" | "dir:<path>"
    image_handling: str = "pad32"  # 28x28 digits: zero-pad to 32x32, or keep native 28x28
    max_train_samples: int | None = None  # take the first n of train (after the val split)
    max_test_samples: int | None = None
    validation_split: float = 0.1
    augment: bool = True
    crop_padding: int = 4  # random crop after zero-padding each side by this many pixels
    # --- model
    patch_size: int = 2
    embed_dim: int = 64
    depths: tuple[int, ...] = (2,)
    num_heads: tuple[int, ...] = (8,)
    window_size: int = 2
    shift_size: int = 1
    mlp_dim: int = 256  # hidden width of stage 1's MLP; doubles with the width
    qkv_bias: bool = True
    dropout: float = 0.03
    attention_dropout: float = 0.03
    drop_path_rate: float = 0.03
    merge_after_last_stage: bool = True  # keras-io merges once more before pooling
    head_units: int = 128  # the paper's head: pool -> dense -> GELU -> dropout -> dense; 0: keras-io's pool -> dense
    # --- optimisation
    optimizer: str = "adamw"
    learning_rate: float = 1e-3  # at a batch of lr_base_batch; see lr_scaling
    # Scale the learning rate with the effective batch B: lr * (B / lr_base_batch)**k,
    # k = 0 (none), 1/2 (sqrt, Krizhevsky 2014; Hoffer et al. 2017) or 1 (linear, Goyal et al. 2017).
    lr_scaling: str = "none"
    lr_base_batch: int = 128
    weight_decay: float = 1e-4  # decoupled (w -= lr * wd * w) in every Keras 3 optimizer
    momentum: float = 0.9  # SGD only
    label_smoothing: float = 0.1
    batch_size: int = 128
    accumulation_steps: int = 1
    accumulation_mode: str = "in_step"
    reduction: str = "mean"
    epochs: int = 40
    seed: int = 42
    jit_compile: bool = False
    # --- records
    output_dir: str = "outputs"
    run_name: str | None = None

    # ------------------------------------------------------------------ derived
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image as the model sees it."""
        h, w, c = NATIVE_SHAPES[self.dataset]
        if self.image_handling == "pad32" and (h, w) == (28, 28):
            return (32, 32, c)
        return (h, w, c)

    @property
    def micro_batch_size(self) -> int:
        """Samples per forward/backward pass."""
        return math.ceil(self.batch_size / self.accumulation_steps)

    @property
    def fit_batch_size(self) -> int:
        """The batch size handed to ``fit``: B for in-step, B/N for optimizer mode."""
        if self.accumulation_mode == "optimizer":
            return self.micro_batch_size
        return self.batch_size

    @property
    def effective_learning_rate(self) -> float:
        """The learning rate the optimizer gets: ``learning_rate`` scaled per ``lr_scaling``."""
        power = LR_SCALINGS[self.lr_scaling]
        return self.learning_rate * (self.batch_size / self.lr_base_batch) ** power

    def stage_grids(self) -> list[int]:
        """Token-grid side length at each stage (square inputs only)."""
        side = self.input_shape[0] // self.patch_size
        return [side // (2**i) for i in range(len(self.depths))]

    def to_dict(self) -> dict[str, Any]:
        """Plain types, ready for YAML/JSON (tuples become lists)."""
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, tuple):
                out[k] = list(v)
        return out


_FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}
_HINTS = typing.get_type_hints(RunConfig)


# ---------------------------------------------------------------- coercion
def _coerce(name: str, value: Any) -> Any:
    """Check ``value`` against the declared type of field ``name``."""
    hint = _HINTS[name]
    optional = type(None) in typing.get_args(hint)
    if optional:
        if value is None:
            return None
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if typing.get_origin(hint) is tuple:
        # Accept one int for every stage (``num_heads: 8``) as well as a list.
        if isinstance(value, int) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)) or not value:
            raise ConfigError(
                f"{name}: expected a non-empty list of integers, e.g. [2, 2], got {value!r}"
            )
        for v in value:
            if not isinstance(v, int) or isinstance(v, bool):
                raise ConfigError(f"{name}: every entry must be an integer, got {v!r} in {value!r}")
        return tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{name}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name}: expected an integer, got {value!r} ({type(value).__name__})")
        return value
    if hint is float:
        # YAML 1.1 (PyYAML) reads "3e-4" (no dot) as a string; accept it as the number it is.
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}: expected a number, got {value!r} ({type(value).__name__})")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}: expected a string, got {value!r} ({type(value).__name__})")
        return value
    raise AssertionError(f"unhandled type {hint} for {name}")  # a bug in this module


def unknown_key_error(key: str, where: str | None = None) -> ConfigError:
    """The error for a key that is not a :class:`RunConfig` field, with the closest match."""
    close = difflib.get_close_matches(str(key), _FIELDS, n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else f"; valid keys: {', '.join(sorted(_FIELDS))}"
    return ConfigError(f"{where + ': ' if where else ''}unknown config key '{key}'{hint}")


# ---------------------------------------------------------------- validation
def _choice(name: str, value: str, options: Sequence[str]) -> None:
    if value not in options:
        close = difflib.get_close_matches(str(value), options, n=1)
        extra = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(f"{name}: '{value}' is not one of {', '.join(options)}{extra}")


def _positive(cfg: RunConfig, *names: str) -> None:
    for n in names:
        if getattr(cfg, n) < 1:
            raise ConfigError(f"{n}: must be >= 1, got {getattr(cfg, n)}")


def _rate(cfg: RunConfig, *names: str) -> None:
    for n in names:
        v = getattr(cfg, n)
        if not (0.0 <= v < 1.0):
            raise ConfigError(f"{n}: must be in [0, 1), got {v}")


def validate(cfg: RunConfig) -> RunConfig:
    """Check every cross-field constraint; raise :class:`ConfigError` naming the field."""
    _choice("dataset", cfg.dataset, DATASETS)
    if not (cfg.source in ("keras", "sample") or cfg.source.startswith("dir:")):
        raise ConfigError(
            f"source: '{cfg.source}' is not valid; use 'keras' (download), 'sample' "
            "(bundled real subset) or 'dir:<path>' (the published files on disk)"
        )
    if cfg.source.startswith("dir:") and not cfg.source[4:].strip():
        raise ConfigError("source: 'dir:' needs a folder, e.g. 'dir:/data/mnist'")
    _choice("image_handling", cfg.image_handling, IMAGE_HANDLING)
    _choice("optimizer", cfg.optimizer, OPTIMIZERS)
    _choice("accumulation_mode", cfg.accumulation_mode, ACCUMULATION_MODES)
    _choice("reduction", cfg.reduction, REDUCTIONS)
    _choice("lr_scaling", cfg.lr_scaling, tuple(LR_SCALINGS))
    _positive(cfg, "patch_size", "embed_dim", "window_size", "mlp_dim", "batch_size",
              "accumulation_steps", "epochs", "lr_base_batch")
    for n in ("max_train_samples", "max_test_samples"):
        v = getattr(cfg, n)
        if v is not None and v < 1:
            raise ConfigError(f"{n}: must be >= 1 or null (all samples), got {v}")
    if cfg.head_units < 0:
        raise ConfigError(f"head_units: must be >= 0 (0 means no hidden layer), got {cfg.head_units}")
    if cfg.crop_padding < 0:
        raise ConfigError(f"crop_padding: must be >= 0, got {cfg.crop_padding}")
    _rate(cfg, "dropout", "attention_dropout", "drop_path_rate", "label_smoothing")
    if not (0.0 <= cfg.validation_split < 1.0):
        raise ConfigError(f"validation_split: must be in [0, 1), got {cfg.validation_split}")
    if not cfg.learning_rate > 0:
        raise ConfigError(f"learning_rate: must be > 0, got {cfg.learning_rate}")
    if cfg.weight_decay < 0:
        raise ConfigError(f"weight_decay: must be >= 0, got {cfg.weight_decay}")
    if not (0.0 <= cfg.momentum < 1.0):
        raise ConfigError(f"momentum: must be in [0, 1), got {cfg.momentum}")
    if cfg.seed < 0:
        raise ConfigError(f"seed: must be >= 0, got {cfg.seed}")

    # --- accumulation
    n = cfg.accumulation_steps
    if cfg.accumulation_mode == "in_step" and cfg.batch_size < n:
        raise ConfigError(
            f"batch_size: in in_step mode the batch ({cfg.batch_size}) is split into "
            f"accumulation_steps={n} micro-batches, so it must be >= {n}"
        )
    if cfg.accumulation_mode == "optimizer":
        if n > 1 and cfg.batch_size % n:
            raise ConfigError(
                f"batch_size: optimizer mode feeds batches of batch_size/accumulation_steps; "
                f"{cfg.batch_size} is not divisible by {n} (try {cfg.batch_size - cfg.batch_size % n})"
            )
        if cfg.reduction != "mean":
            raise ConfigError(
                "reduction: Keras's optimizer accumulation always averages the N gradients; "
                "'sum' exists only in accumulation_mode: in_step"
            )

    # --- geometry
    h, w, _ = cfg.input_shape
    p = cfg.patch_size
    if h % p or w % p:
        fix = " (or image_handling: pad32 for 32x32)" if h == 28 else ""
        raise ConfigError(
            f"patch_size: {p} does not divide the {h}x{w} input of {cfg.dataset}; "
            f"use a divisor of {h}{fix}"
        )
    if len(cfg.num_heads) != len(cfg.depths):
        raise ConfigError(
            f"num_heads: has {len(cfg.num_heads)} entries but depths has {len(cfg.depths)} stages; "
            "give one head count per stage"
        )
    if any(d < 1 for d in cfg.depths):
        raise ConfigError(f"depths: every stage needs at least one block, got {list(cfg.depths)}")
    if cfg.shift_size < 0 or cfg.shift_size >= cfg.window_size:
        raise ConfigError(
            f"shift_size: must be in [0, window_size) = [0, {cfg.window_size}), got {cfg.shift_size}"
        )
    grids = cfg.stage_grids()
    n_merges = len(cfg.depths) - 1 + int(cfg.merge_after_last_stage)
    side = h // p
    for i in range(n_merges):
        if side % 2:
            raise ConfigError(
                f"depths: patch merging {i + 1} halves a {side}x{side} token grid, which is odd; "
                "use fewer stages, merge_after_last_stage: false, or a different patch_size"
            )
        side //= 2
    for i, (g, heads) in enumerate(zip(grids, cfg.num_heads)):
        dim = cfg.embed_dim * 2**i
        if heads < 1 or dim % heads:
            raise ConfigError(
                f"num_heads: stage {i + 1} has width {dim}, which {heads} heads do not divide; "
                f"use a divisor of {dim}"
            )
        # Swin's rule: a window as large as the grid becomes the whole grid (no shift).
        if g > cfg.window_size and g % cfg.window_size:
            divisors = [d for d in range(1, g + 1) if g % d == 0]
            raise ConfigError(
                f"window_size: {cfg.window_size} does not divide stage {i + 1}'s {g}x{g} "
                f"patch grid; use one of {divisors}"
            )
    return cfg


# ---------------------------------------------------------------- building
def make_config(values: Mapping[str, Any] | None = None, **overrides: Any) -> RunConfig:
    """Build and validate a :class:`RunConfig` from a mapping plus keyword overrides."""
    merged = dict(values or {})
    merged.update(overrides)
    kwargs = {}
    for key, value in merged.items():
        if key not in _FIELDS:
            raise unknown_key_error(key)
        kwargs[key] = _coerce(key, value)
    return validate(RunConfig(**kwargs))


def parse_override(text: str) -> tuple[str, Any]:
    """Parse one ``--set key=value``; the value is read as YAML (``8``, ``[2, 2]``, ``null``)."""
    if "=" not in text:
        raise ConfigError(f"--set '{text}': expected key=value, e.g. --set epochs=2")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: value '{raw}' is not valid YAML ({exc.problem})") from None
    return key, value


def read_params(path: str | os.PathLike) -> dict[str, Any]:
    """Read a params YAML file into a mapping (no validation)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"params file {path} is not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"params file {path} must hold a mapping of key: value, got {type(data).__name__}")
    return data


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> RunConfig:
    """Load a params file, apply overrides, validate.

    Args:
        path: a YAML file of ``key: value`` pairs, or None for the defaults.
        overrides: ``["key=value", ...]`` strings as from ``--set``, or a mapping.

    The run name defaults to the params file's stem. A file with a ``grid:``
    or ``seeds:`` block (see :mod:`swin_gao_lib.grid`) describes several runs;
    it loads as one of them when the overrides set every key it varies, and
    the run is then named from those values as ``run-all`` names it.
    """
    from swin_gao_lib import grid

    values = read_params(path) if path is not None else {}
    chosen: dict[str, Any] = {}
    if isinstance(overrides, Mapping):
        chosen.update(overrides)
    else:
        for text in overrides:
            key, value = parse_override(text)
            chosen[key] = value
    varied: list[str] = []
    if grid.has_grid(values):
        prefix = values.get("run_name") or Path(path).stem
        varied = grid.varied_keys(values)
        points = grid.expand(values, prefix)  # also checks the grid's shape
        missing = [k for k in varied if k not in chosen]
        if missing:
            raise ConfigError(
                f"params file {path} is a grid of {len(points)} runs varying {', '.join(varied)}; run them "
                f"all with `swin-gao run-all {path}`, or pick one by setting "
                f"{', '.join(missing)} (e.g. --set {missing[0]}=...)")
        values = {k: v for k, v in values.items() if k not in (grid.GRID_KEY, grid.SEEDS_KEY)}
    values.update(chosen)
    if path is not None and values.get("run_name") is None:
        values["run_name"] = (grid.point_name(prefix, varied, values) if varied
                              else Path(path).stem)
    return make_config(values)


def to_yaml(cfg: RunConfig) -> str:
    """The config as YAML that :func:`load_config` reads back to an equal config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
