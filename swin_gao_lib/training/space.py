"""The disk space a run needs, and the check that refuses a run without it.

A run's largest files are its checkpoints (:mod:`swin_gao_lib.training.checkpoint`):
every variable of the model and of the optimizer, as float32. While one is
saved the previous one stays on disk until the new one is committed, so a run
needs room for two. Then come its records, which grow with the epochs
(``history.csv``, ``lr.csv``, the history copied into ``state.json``), the
closing ``metrics.json`` or ``failure.json``, and under ``run-all`` the
executed notebook. :func:`check_space` refuses a run, before anything is
written, when the output's file system has less free space than it needs.

The records are counted from the config alone (:func:`run_bytes`), so that
check comes before the backend is imported; the checkpoint is counted from the
built trainer's variables (:func:`swin_gao_lib.training.checkpoint.checkpoint_bytes`,
the one description of what a checkpoint holds), once they exist, still
before a file is written.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from swin_gao_lib.config import RunConfig
from swin_gao_lib.errors import ConfigError

#: Bytes per stored record line, measured on runs of the quick suite and rounded up.
HISTORY_ROW, LR_ROW, STATE_ROW = 400, 80, 500
#: ``metrics.json`` and ``failure.json`` (a traceback), rounded up generously.
CLOSING_RECORDS = 64 * 1024
#: The executed ``train.ipynb`` of a ``run-all`` run (its figure, summary and log), and slack.
NOTEBOOK = 1024 * 1024


@dataclass(frozen=True)
class SpaceNeed:
    """What a run writes at most: two checkpoints at once, its records, its notebook."""

    checkpoint: int  # 0 until the model is built (:func:`with_checkpoint`)
    records: int
    notebook: int

    @property
    def total(self) -> int:
        return 2 * self.checkpoint + self.records + self.notebook

    def describe(self) -> str:
        return ((f"{human(self.checkpoint)} per checkpoint, two at once while one is saved, "
                 if self.checkpoint else "")
                + f"{human(self.records)} of records"
                + (f", {human(self.notebook)} for its executed notebook" if self.notebook else ""))

    def with_checkpoint(self, checkpoint: int) -> "SpaceNeed":
        """This need with checkpoints of ``checkpoint`` bytes counted."""
        return replace(self, checkpoint=checkpoint)


def run_bytes(cfg: RunConfig, n_train: int, notebook: bool = False) -> SpaceNeed:
    """The space a run of ``cfg`` on ``n_train`` training images needs, checkpoints aside."""
    updates = cfg.epochs * math.ceil(n_train / cfg.batch_size)
    records = (cfg.epochs * (HISTORY_ROW + 2 * STATE_ROW) + updates * LR_ROW + CLOSING_RECORDS)
    return SpaceNeed(0, records, NOTEBOOK if notebook else 0)


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
