"""The disk space a run needs, from its config alone (no TensorFlow), and the check.

A run's largest files are its checkpoints (:mod:`swin_gao_lib.training.checkpoint`):
every variable of the model and of the optimizer, as float32. While one is
saved the previous one stays on disk until the new one is committed, so a run
needs room for two. Then come its records, which grow with the epochs
(``history.csv``, ``lr.csv``, the history copied into ``state.json``), the
closing ``metrics.json`` or ``failure.json``, and under ``run-all`` the
executed notebook. :func:`run_bytes` adds these up; :func:`check_space`
refuses a run, before anything is written, when the output's file system has
less free space than that.

The checkpoint's size is counted from the architecture (:func:`parameter_shapes`
follows :func:`swin_gao_lib.model.build_swin` layer by layer; a test holds it
to Keras's own count), so the check needs neither TensorFlow nor a built model.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from swin_gao_lib.config import RunConfig
from swin_gao_lib.errors import ConfigError

#: Bytes per stored record line, measured on runs of the quick suite and rounded up.
HISTORY_ROW, LR_ROW, STATE_ROW = 400, 80, 500
#: ``metrics.json`` and ``failure.json`` (a traceback), rounded up generously.
CLOSING_RECORDS = 64 * 1024
#: The executed ``train.ipynb`` of a ``run-all`` run (its figure, summary and log), and slack.
NOTEBOOK = 1024 * 1024
#: The npz format's headers per stored array (zip entry, central directory, npy header).
ARRAY_OVERHEAD = 512


def parameter_shapes(cfg: RunConfig) -> list[tuple[int, ...]]:
    """The shape of every weight of the model ``cfg`` describes, in build order."""
    h, w, c = cfg.input_shape
    p, dim = cfg.patch_size, cfg.embed_dim
    shapes: list[tuple[int, ...]] = [(p * p * c, dim), (dim,), ((h // p) * (w // p), dim)]
    grid = (h // p, w // p)
    n_stages = len(cfg.depths)
    for stage, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
        mlp = cfg.mlp_dim * 2**stage
        window = min(grid) if min(grid) <= cfg.window_size else cfg.window_size
        for _ in range(depth):
            shapes += [(dim,), (dim,)]                                     # norm1
            shapes += [(dim, 3 * dim)] + ([(3 * dim,)] if cfg.qkv_bias else [])  # qkv
            shapes += [(dim, dim), (dim,), ((2 * window - 1) ** 2, heads)]  # proj, bias table
            shapes += [(dim,), (dim,), (dim, mlp), (mlp,), (mlp, dim), (dim,)]  # norm2, MLP
        if stage < n_stages - 1 or cfg.merge_after_last_stage:
            shapes += [(4 * dim,), (4 * dim,), (4 * dim, 2 * dim)]         # norm, reduction
            grid, dim = (grid[0] // 2, grid[1] // 2), dim * 2
    shapes += [(dim,), (dim,)]                                             # final norm
    if cfg.head_units:
        shapes += [(dim, cfg.head_units), (cfg.head_units,)]
        dim = cfg.head_units
    return shapes + [(dim, cfg.num_classes), (cfg.num_classes,)]


def parameter_count(cfg: RunConfig) -> int:
    """The model's parameters (``build_swin(cfg).count_params()``), without building it."""
    return sum(math.prod(s) for s in parameter_shapes(cfg))


def optimizer_slots(cfg: RunConfig) -> int:
    """Float32 values the optimizer keeps per parameter (moments, accumulators)."""
    slots = {"adamw": 2, "adam": 2, "sgd": 1 if cfg.momentum else 0}[cfg.optimizer]
    if cfg.accumulation_mode == "optimizer" and cfg.accumulation_steps > 1:
        slots += 1  # Keras's gradient accumulators
    return slots


def checkpoint_bytes(cfg: RunConfig) -> int:
    """The size of one checkpoint's variables file, rounded up."""
    shapes = parameter_shapes(cfg)
    arrays = len(shapes) * (1 + optimizer_slots(cfg)) + 64  # + seed states, counters
    return 4 * parameter_count(cfg) * (1 + optimizer_slots(cfg)) + ARRAY_OVERHEAD * arrays


@dataclass(frozen=True)
class SpaceNeed:
    """What a run writes at most: two checkpoints at once, its records, its notebook."""

    checkpoint: int
    records: int
    notebook: int

    @property
    def total(self) -> int:
        return 2 * self.checkpoint + self.records + self.notebook

    def describe(self) -> str:
        return (f"{human(self.checkpoint)} per checkpoint, two at once while one is saved, "
                f"{human(self.records)} of records"
                + (f", {human(self.notebook)} for its executed notebook" if self.notebook else ""))


def run_bytes(cfg: RunConfig, n_train: int, notebook: bool = False) -> SpaceNeed:
    """The space a run of ``cfg`` on ``n_train`` training images needs at its peak."""
    updates = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    records = (cfg.epochs * (HISTORY_ROW + 2 * STATE_ROW) + updates * LR_ROW + CLOSING_RECORDS)
    return SpaceNeed(checkpoint_bytes(cfg), records, NOTEBOOK if notebook else 0)


def existing_folder(path: Path) -> Path:
    """``path``, or its nearest ancestor that exists (where the run's files will land)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def used_bytes(folder: Path) -> int:
    """The bytes already in a run folder (a resumed run's checkpoint is one of the two)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def check_space(folder: Path, need: int, describe: str, field: str = "output_dir") -> None:
    """Refuse, writing nothing, when ``folder``'s file system has less than ``need`` bytes free.

    Raises:
        ConfigError: one line with the free space, the estimate and what it is made of.
    """
    where = existing_folder(folder)
    try:
        free = shutil.disk_usage(where).free
    except OSError:  # cannot tell (an unusual file system): the writes will say
        return
    if free < need:
        raise ConfigError(f"{field}: {where} has {human(free)} free, but this needs about "
                          f"{human(need)} ({describe}); free some space or choose another "
                          f"{field}")


def human(n: int) -> str:
    """A byte count as people read it: 512 B, 64 KiB, 1.5 MiB, 2.0 GiB."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 or unit == "KiB" else f"{value:.1f} {unit}"
    return f"{n} B"
