"""Every check a run can fail on input, made before the backend is imported.

:func:`preflight` decides what the run folder is for (a new run, a resume, an
overwrite; :meth:`swin_gao_lib.records.RunFolder.plan`), checks that it can be
written, then loads and splits the data (NumPy only), refuses a training
split smaller than one batch (unless ``allow_small_train_split``) and a file
system without room for the run's records (:mod:`swin_gao_lib.training.space`).
A bad path, a bad data file, an empty split or a full disk is reported in one
line before TensorFlow prints anything, and before a single file is written.
The room for the checkpoints is checked once the model is built
(:meth:`Preflight.check_checkpoint_room`), still before a file is written. ``run-all`` makes the same
checks for every run of a suite before its first kernel starts
(:mod:`swin_gao_lib.runs.plan`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.splits import Splits, load_splits
from swin_gao_lib.errors import ConfigError
from swin_gao_lib.records import RunFolder
from swin_gao_lib.training.space import SpaceNeed, check_space, run_bytes, used_bytes


@dataclass
class Preflight:
    """What a run found before it started: its folder, what to do with it, its data."""

    folder: RunFolder
    action: str  # "new", "resume" or "overwrite"
    splits: Splits
    need: SpaceNeed  # checkpoints not counted yet: they need the built model
    kept: int = 0  # bytes a resumed run already holds (its checkpoint among them)

    def check_checkpoint_room(self, model: Any) -> None:
        """Refuse, writing nothing, a file system without room for two checkpoints of the
        built trainer ``model`` beside the records.

        Raises:
            ConfigError: one line naming ``output_dir``, the free space and the need.
        """
        from swin_gao_lib.training.checkpoint import checkpoint_bytes

        need = self.need.with_checkpoint(checkpoint_bytes(model))
        check_space(self.folder.path, need.total - self.kept, need.describe())


def check_train_split(cfg: RunConfig, n_train: int, log=print) -> None:
    """Refuse a training split smaller than one batch (unless asked for); warn below two.

    With fewer images than ``batch_size`` every epoch is one partial update;
    with fewer than two batches, one update and a remainder. Both are usually
    a ``validation_split`` or ``max_train_samples`` typo.

    Raises:
        ConfigError: fewer than ``batch_size`` images and ``allow_small_train_split`` not set.
    """
    batch = cfg.batch_size
    if n_train < batch and not cfg.allow_small_train_split:
        raise ConfigError(
            f"batch_size: the training split holds {n_train} images, fewer than one batch of "
            f"{batch} (validation_split {cfg.validation_split}"
            + (f", max_train_samples {cfg.max_train_samples}" if cfg.max_train_samples else "")
            + "); lower validation_split or batch_size, or set "
            "allow_small_train_split: true to train on them anyway")
    if n_train < 2 * batch:
        updates = math.ceil(n_train / batch)
        log(f"warning: the training split holds only {n_train} images, "
            f"{n_train / batch:.2g} batches of {batch}: {updates} optimizer update"
            f"{'s' if updates > 1 else ''} per epoch")


def preflight(cfg: RunConfig, overwrite: bool = False, log=print,
              notebook: bool = False) -> Preflight:
    """Check the output folder, load and split the data, check its size and the free space.

    Writes nothing. ``notebook``: the run is made by ``run-all`` and its
    executed notebook lands in the run folder too (the space check counts it).

    Raises:
        InputError: the folder cannot be used (see ``RunFolder.plan``), the
            data cannot be loaded or split, the training split is smaller than
            a batch, or the output's file system has too little free space;
            the message names the field or file.
    """
    if cfg.pipeline == "device":
        from swin_gao_lib.runtime.backend import active_backend, resolve_backend

        if (active_backend() or resolve_backend(cfg.backend)) != "jax":
            raise ConfigError("pipeline: 'device' runs on the JAX backend; set backend: jax (or "
                              "KERAS_BACKEND=jax), or pipeline: host")
    folder = RunFolder.of(cfg)
    action = folder.plan(cfg, overwrite)
    splits = load_splits(cfg)
    sizes = splits.sizes()
    log(f"data: {splits.description}")
    log(f"data: using {sizes['train']} train, {sizes['validation']} validation, "
        f"{sizes['test']} test images at {cfg.input_shape}")
    check_train_split(cfg, sizes["train"], log)
    need = run_bytes(cfg, sizes["train"], notebook=notebook)
    kept = used_bytes(folder.path) if action == "resume" else 0
    check_space(folder.path, need.total - kept, need.describe())
    return Preflight(folder, action, splits, need, kept)
