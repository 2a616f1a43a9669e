"""RunConfig: every knob of a run, its default and its help line (validated in checks.py).

Defaults are those of the keras-io Swin Transformer example, the model the paper most
likely used.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from swin_gao_lib.config import datasets

IMAGE_HANDLING = ("pad32", "native")
OPTIMIZERS = ("adamw", "adam", "sgd")
ACCUMULATION_MODES = ("in_step", "optimizer")
REDUCTIONS = ("mean", "sum")
#: Learning-rate schedules, defined per optimizer update (accumulation.UpdateSchedule).
LR_SCHEDULES = ("constant", "cosine", "step")
#: lr_scaling -> the power k of (batch_size / lr_base_batch) that multiplies the learning rate.
LR_SCALINGS = {"none": 0.0, "sqrt": 0.5, "linear": 1.0}
#: Compute precisions: Keras dtype policies (variables, optimizer state and loss stay float32).
PRECISIONS = ("float32", "mixed_bfloat16")
#: Where batches are made: on the host (tf.data, NumPy) or on the device (JAX epoch programs).
PIPELINES = ("host", "device")
#: Seeds feed TensorFlow and NumPy generators, which take 32-bit unsigned integers.
MAX_SEED = 2**32 - 1
#: Upper bounds that catch typos (an extra zero or three) before hours are spent, or before a
#: model too large fails at build time, after its run folder was written. ``depths``: each stage.
LIMITS = {"epochs": 100_000, "batch_size": 2**20, "accumulation_steps": 2**20,
          "lr_base_batch": 2**20, "warmup_updates": 10**9, "lr_step_updates": 10**9,
          "embed_dim": 4096, "mlp_dim": 16_384, "head_units": 16_384, "depths": 64}
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

    The help lines are docs/configuration.md (``tools/config_reference.py``).
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
    allow_small_train_split: bool = _knob(False, "data", "train even when the training split "
                                          "holds fewer images than one batch (refused "
                                          "otherwise; a split under two batches always gets a "
                                          "warning line); not part of the run's identity")
    augment: bool = _knob(True, "data", "random crop after zero padding; left-right flips where "
                          "the data set allows them (photos, not digits)")
    crop_padding: int = _knob(4, "data", "pixels of zero padding on each side before the "
                              "random crop; at most half the image's side")
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
    head_units: int = _knob(128, "model", "the paper's MLP head (its width and GELU are "
                            "assumed): pool, dense(head_units), GELU, dropout, dense; 0: "
                            "keras-io's pool then dense")
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
    precision: str = _knob("float32", "training", "`float32`, or `mixed_bfloat16`: bfloat16 "
                           "compute with float32 weights, optimizer state, gradient sums and "
                           "loss (Keras's dtype policy; meant for GPUs)")
    pipeline: str = _knob("host", "training", "`host`: batches made on the host (tf.data; NumPy "
                          "on JAX), one train step per call; `device` (JAX only): the split's "
                          "uint8 images on the device, each epoch's order, crops, flips and "
                          "scaling and all its updates in one compiled program (docs/backends.md)")
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


#: Keys that say where a run's records go or what it may do, not what it computes: two
#: configs that differ only in these are the same run (a resume may change them).
NOT_IDENTITY = ("output_dir", "run_name", "allow_small_train_split")
#: Keys in which the runs of one configuration differ: its seeds and where each one's records
#: go (a study's arm, a group trained side by side).
NOT_CONFIGURATION = ("seed", "run_name", "output_dir")
