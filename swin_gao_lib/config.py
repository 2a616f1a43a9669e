"""The run configuration: one typed object holding every knob of a run.

Data flows ``params/*.yaml`` -> :mod:`swin_gao_lib.params` -> :class:`RunConfig`
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
import re
import typing
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import yaml

from swin_gao_lib import datasets
from swin_gao_lib.backend import BACKENDS
from swin_gao_lib.errors import ConfigError

IMAGE_HANDLING = ("pad32", "native")
OPTIMIZERS = ("adamw", "adam", "sgd")
ACCUMULATION_MODES = ("in_step", "optimizer")
REDUCTIONS = ("mean", "sum")
#: Learning-rate schedules, defined per optimizer update (accumulation.UpdateSchedule).
LR_SCHEDULES = ("constant", "cosine", "step")
#: lr_scaling -> the power k of (batch_size / lr_base_batch) that multiplies the learning rate.
LR_SCALINGS = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}
#: Seeds feed TensorFlow and NumPy generators, which take 32-bit unsigned integers.
MAX_SEED = 2**32 - 1
#: Upper bounds that catch typos (an extra zero or three) before hours are spent.
LIMITS = {"epochs": 100_000, "batch_size": 2**20, "accumulation_steps": 2**20,
          "lr_base_batch": 2**20, "warmup_updates": 10**9}
#: A run name is one folder name: letters, digits, '.', '-', '_', not starting with '.'.
RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")
MAX_RUN_NAME = 128


def _knob(default: Any, group: str, help: str) -> Any:
    """A field with its one line of help, which the configuration reference prints."""
    return dataclasses.field(default=default, metadata={"group": group, "help": help})


@dataclass(frozen=True)
class RunConfig:
    """Every knob of one training run. Build with :func:`make_config`.

    Geometry: an image of ``H x W`` is cut into ``patch_size`` patches, giving
    a token grid of ``H/p x W/p``. Stage ``i`` (``len(depths)`` stages) runs
    ``depths[i]`` Swin blocks with ``num_heads[i]`` heads at width
    ``embed_dim * 2**i`` on a grid halved by each patch merging between stages.
    Blocks alternate plain (shift 0) and shifted (``shift_size``) windows.

    Each field's help line is the configuration reference
    (``docs/configuration.md``, written by ``tools/config_reference.py``).
    """

    # --- data
    dataset: str = _knob("cifar10", "data", "the data set: " + ", ".join(datasets.DATASETS))
    source: str = _knob("sample", "data", "`keras` (download), `sample` (the real subset bundled "
                        "with the kit) or `dir:<path>` (the published files on disk)")
    image_handling: str = _knob("pad32", "data", "28x28 digits: `pad32` zero-pads them to 32x32, "
                                "`native` keeps 28x28")
    max_train_samples: int | None = _knob(None, "data", "keep only the first n training images "
                                          "(after the validation split); null: all")
    max_test_samples: int | None = _knob(None, "data", "keep only the first n test images; "
                                         "null: all")
    validation_split: float = _knob(0.1, "data", "fraction of train held out for validation, "
                                    "chosen by seed")
    augment: bool = _knob(True, "data", "random crop after zero padding; left-right flips where "
                          "the data set allows them (photos, not digits)")
    crop_padding: int = _knob(4, "data", "pixels of zero padding on each side before the "
                              "random crop")
    # --- model
    patch_size: int = _knob(2, "model", "side of the square patches the image is cut into")
    embed_dim: int = _knob(64, "model", "token width of stage 1; doubles with each stage")
    depths: tuple[int, ...] = _knob((2,), "model", "Swin blocks per stage; stages are joined "
                                    "by patch merging")
    num_heads: tuple[int, ...] = _knob((8,), "model", "attention heads per stage (one entry "
                                       "per stage)")
    window_size: int = _knob(2, "model", "side of the attention windows, in patches")
    shift_size: int = _knob(1, "model", "cyclic shift of every second block's windows")
    mlp_dim: int = _knob(256, "model", "hidden width of stage 1's MLP; doubles with the width")
    qkv_bias: bool = _knob(True, "model", "bias in the query/key/value projection")
    dropout: float = _knob(0.03, "model", "dropout rate after attention, in the MLP and the head")
    attention_dropout: float = _knob(0.03, "model", "dropout rate on the attention weights")
    drop_path_rate: float = _knob(0.03, "model", "stochastic depth: rises linearly over the "
                                  "blocks to this rate")
    merge_after_last_stage: bool = _knob(True, "model", "merge patches once more before "
                                         "pooling, as keras-io does")
    head_units: int = _knob(128, "model", "the paper's head: pool, dense(head_units), GELU, "
                            "dropout, dense; 0: keras-io's pool then dense")
    # --- optimisation
    optimizer: str = _knob("adamw", "training", "`adamw`, `adam` or `sgd` (with momentum)")
    learning_rate: float = _knob(1e-3, "training", "learning rate at a batch of lr_base_batch; "
                                 "see lr_scaling")
    # Krizhevsky 2014 / Hoffer et al. 2017 (sqrt); Goyal et al. 2017 (linear).
    lr_scaling: str = _knob("none", "training", "the optimizer gets `learning_rate * (batch_size "
                            "/ lr_base_batch)^k`, k = 0 `none`, 1/2 `sqrt`, 1 `linear`")
    lr_base_batch: int = _knob(128, "training", "the batch size at which learning_rate applies "
                               "unscaled")
    lr_schedule: str = _knob("constant", "training", "per optimizer update k, after the warm-up: "
                             "`constant`, `cosine` (to 0 at the run's last update) or `step` "
                             "(x lr_step_factor every lr_step_updates); Keras's optimizer mode "
                             "evaluates it per micro-step (see lr.csv)")
    warmup_updates: int = _knob(0, "training", "linear warm-up: update k < W gets "
                                "lr * (k+1)/W; 0: none")
    lr_step_updates: int | None = _knob(None, "training", "`step` schedule: updates between "
                                        "decays (counted after the warm-up); only with "
                                        "lr_schedule: step")
    lr_step_factor: float = _knob(0.1, "training", "`step` schedule: the factor, in (0, 1], "
                                  "applied at each decay")
    weight_decay: float = _knob(1e-4, "training", "decoupled weight decay (w -= lr * wd * w), "
                                "in every optimizer")
    momentum: float = _knob(0.9, "training", "SGD's momentum (other optimizers ignore it)")
    label_smoothing: float = _knob(0.1, "training", "label smoothing of the cross-entropy loss")
    batch_size: int = _knob(128, "training", "B: samples per optimizer update")
    accumulation_steps: int = _knob(1, "training", "N: micro-batches per update")
    accumulation_mode: str = _knob("in_step", "training", "`in_step` (this kit's train step) "
                                   "or `optimizer` (Keras's `gradient_accumulation_steps`)")
    reduction: str = _knob("mean", "training", "`mean` (exact full-batch gradient) or `sum` "
                           "(the paper's Eq. 9: N x the mean); in_step only")
    epochs: int = _knob(40, "training", "passes over the training split")
    seed: int = _knob(42, "training", "seeds the weights, the validation split, the data "
                      "order, dropout and augmentation")
    jit_compile: bool = _knob(False, "training", "compile the train step with XLA "
                              "(TensorFlow; on JAX the step is always XLA-compiled)")
    backend: str | None = _knob(None, "training", "Keras backend: `tensorflow` (the paper's) "
                                "or `jax`; null: `$KERAS_BACKEND`, else tensorflow. Applied "
                                "before Keras is imported")
    # --- records
    output_dir: str = _knob("outputs", "records", "the run lands in `<output_dir>/<run_name>/`")
    run_name: str | None = _knob(None, "records", "the run's folder name; null: the params "
                                 "file's stem (or a name made from the config)")

    # ------------------------------------------------------------------ derived
    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one image as the model sees it."""
        h, w, c = datasets.get(self.dataset).shape
        if self.image_handling == "pad32" and (h, w) == (28, 28):
            return (32, 32, c)
        return (h, w, c)

    @property
    def num_classes(self) -> int:
        """Classes of the data set: the width of the model's output."""
        return datasets.get(self.dataset).num_classes

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
        try:
            value = float(value)
        except OverflowError:  # an int too large for a float
            value = math.inf
        if not math.isfinite(value):
            raise ConfigError(f"{name}: must be a finite number, got {value}")
        return value
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


def check_run_name(name: str, field: str = "run_name") -> str:
    """A run name must be one safe folder name: it may not climb out of ``output_dir``."""
    if not name or len(name) > MAX_RUN_NAME or not RUN_NAME.fullmatch(name):
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ConfigError(
            f"{field}: {shown!r} is not a valid run name; use 1 to {MAX_RUN_NAME} letters, "
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
        raise ConfigError(
            f"source: '{cfg.source}' is not valid; use 'keras' (download), 'sample' "
            "(bundled real subset) or 'dir:<path>' (the published files on disk)"
        )
    if cfg.source.startswith("dir:") and not cfg.source[4:].strip():
        raise ConfigError("source: 'dir:' needs a folder, e.g. 'dir:/data/mnist'")
    if cfg.source == "sample" and not datasets.get(cfg.dataset).sample:
        raise ConfigError(
            f"source: no sample of {cfg.dataset} ships with the kit (samples: "
            f"{', '.join(datasets.with_sample())}); use 'keras' or 'dir:<path>'")
    _choice("image_handling", cfg.image_handling, IMAGE_HANDLING)
    _choice("optimizer", cfg.optimizer, OPTIMIZERS)
    _choice("accumulation_mode", cfg.accumulation_mode, ACCUMULATION_MODES)
    _choice("reduction", cfg.reduction, REDUCTIONS)
    _choice("lr_scaling", cfg.lr_scaling, tuple(LR_SCALINGS))
    _choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
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
    _positive(cfg, "patch_size", "embed_dim", "window_size", "mlp_dim", "batch_size",
              "accumulation_steps", "epochs", "lr_base_batch")
    for n, limit in LIMITS.items():
        if getattr(cfg, n) > limit:
            raise ConfigError(f"{n}: {getattr(cfg, n)} is larger than {limit:,}; is it a typo?")
    if cfg.run_name is not None:
        check_run_name(cfg.run_name)
    if not cfg.output_dir.strip() or "\0" in cfg.output_dir:
        raise ConfigError(f"output_dir: {cfg.output_dir!r} is not a folder path")
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
    if not 0 <= cfg.seed <= MAX_SEED:
        raise ConfigError(f"seed: must be in [0, 2^32 - 1] = [0, {MAX_SEED}], got {cfg.seed}")

    # --- accumulation
    n = cfg.accumulation_steps
    if cfg.accumulation_mode == "in_step" and cfg.batch_size < n:
        raise ConfigError(
            f"batch_size: in in_step mode the batch ({cfg.batch_size}) is split into "
            f"accumulation_steps={n} micro-batches, so it must be >= {n}"
        )
    if cfg.accumulation_mode == "in_step" and math.ceil(cfg.batch_size / cfg.micro_batch_size) != n:
        b, m = cfg.batch_size, cfg.micro_batch_size
        works = [k for k in range(1, min(b, 64) + 1) if math.ceil(b / math.ceil(b / k)) == k]
        raise ConfigError(
            f"accumulation_steps: a batch of {b} in micro-batches of ceil({b}/{n}) = {m} makes "
            f"{math.ceil(b / m)} micro-batches, not {n}; choose an N that the batch splits into "
            f"(for {b}: {', '.join(map(str, works))}{', ...' if b > 64 else ''})")
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


def to_yaml(cfg: RunConfig) -> str:
    """The config as YAML that :func:`from_yaml` reads back to an equal config."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)


def from_yaml(text: str, where: str = "config") -> RunConfig:
    """Read a resolved config (the text of a run's ``config.yaml``) back, validated."""
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must hold a mapping of key: value, got "
                          f"{type(values).__name__}")
    return make_config(values)
