"""Every check a run can fail on input, made before the backend is imported.

:func:`preflight` decides what the run folder is for (a new run, a resume, an
overwrite; :meth:`swin_gao_lib.records.RunFolder.plan`), checks that it can be
written, then loads and splits the data (NumPy only). A bad path, a bad data
file or an empty split is reported in one line before TensorFlow prints
anything, and before a single file is written.
"""

from __future__ import annotations

from dataclasses import dataclass

from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.splits import Splits, load_splits
from swin_gao_lib.errors import ConfigError
from swin_gao_lib.records import RunFolder


@dataclass
class Preflight:
    """What a run found before it started: its folder, what to do with it, its data."""

    folder: RunFolder
    action: str  # "new", "resume" or "overwrite"
    splits: Splits


def preflight(cfg: RunConfig, overwrite: bool = False, log=print) -> Preflight:
    """Check the output folder, then load and split the data; write nothing.

    Raises:
        InputError: the folder cannot be used (see ``RunFolder.plan``) or the
            data cannot be loaded or split; the message names the field or file.
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
    return Preflight(folder, action, splits)
