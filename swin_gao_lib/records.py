"""The run folder: its files, the completion marker, writing and reading a run, a suite.

One run lands in ``<output_dir>/<run_name>/`` (:func:`run_dir_of`):

* ``config.yaml`` — the resolved config (loads back to the same run), first;
* ``history.csv`` — one row per epoch, rewritten after every epoch, so a run
  that dies keeps the epochs it finished;
* ``metrics.json`` — written last, only when the run succeeded: its presence
  marks a complete record (:data:`COMPLETE_MARKER`);
* ``failure.json`` — instead of ``metrics.json`` when the run failed: the
  error, the traceback and the epochs completed;
* ``train.ipynb`` — the executed notebook, when ``run-all`` ran it.

A *suite* is a folder of run folders (plus its ``report/``). Every file is
written to a temporary name in the same folder, flushed to disk and then
renamed over the target (``os.replace`` is atomic on POSIX and Windows), so a
crash leaves either the old file or the new one, never half.

This module imports no TensorFlow: ``run-all`` plans and skips runs with it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from swin_gao_lib import labels
from swin_gao_lib.config import RunConfig, to_yaml
from swin_gao_lib.errors import InputError

CONFIG, HISTORY, METRICS, FAILURE, NOTEBOOK = (
    "config.yaml", "history.csv", "metrics.json", "failure.json", "train.ipynb")
#: Written last, only by a successful run: a run folder holding it is complete.
COMPLETE_MARKER = METRICS
#: The records a run writes; a folder holding any of them holds a run.
RECORDS = (CONFIG, HISTORY, METRICS, FAILURE)
#: The suite's report folder, beside its run folders.
REPORT_DIR = "report"


# ------------------------------------------------------------------ atomic files
def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_csv(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]]) -> Path:
    rows = list(rows)
    buf = io.StringIO()
    if rows:
        fields = list(rows[0])
        for r in rows[1:]:
            fields += [k for k in r if k not in fields]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


# ------------------------------------------------------------------ one run's folder
def run_dir_of(cfg: RunConfig) -> Path:
    """Where the run of ``cfg`` lands: ``<output_dir>/<run_name>``."""
    return Path(cfg.output_dir) / (cfg.run_name or labels.default_run_name(cfg))


class RunFolder:
    """The folder of one run, and the files in it."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @classmethod
    def of(cls, cfg: RunConfig) -> "RunFolder":
        return cls(run_dir_of(cfg))

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    def file(self, name: str) -> Path:
        return self.path / name

    @property
    def notebook(self) -> Path:
        return self.path / NOTEBOOK

    @property
    def complete(self) -> bool:
        """Whether the run finished: its :data:`COMPLETE_MARKER` exists."""
        return (self.path / COMPLETE_MARKER).is_file()

    def existing_records(self) -> list[str]:
        """The names of the records (other than the config) already in the folder."""
        return [n for n in (METRICS, HISTORY, FAILURE) if (self.path / n).exists()]

    def start(self, cfg: RunConfig) -> None:
        """Begin a run: clear the earlier records of this folder, write the config."""
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in (METRICS, FAILURE, HISTORY):
            (self.path / stale).unlink(missing_ok=True)
        atomic_write_text(self.path / CONFIG, to_yaml(cfg))

    def write_history(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        return write_csv(self.path / HISTORY, rows)

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        return write_json(self.path / METRICS, metrics)

    def write_failure(self, failure: Mapping[str, Any]) -> Path:
        return write_json(self.path / FAILURE, failure)

    def read(self) -> "Run":
        """The records of a complete run."""
        import pandas as pd
        import yaml

        return Run(name=self.name, path=self.path,
                   config=yaml.safe_load((self.path / CONFIG).read_text()),
                   metrics=json.loads((self.path / METRICS).read_text()),
                   history=pd.read_csv(self.path / HISTORY))


# ------------------------------------------------------------------ reading runs back
@dataclass
class Run:
    """One complete run's records, and what readers derive from them.

    Records written before a config key existed read as that key's default
    (:attr:`resolved_config`); a measurement they lack reads as NaN.
    """

    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: Any  # a pandas DataFrame, one row per epoch

    @property
    def resolved_config(self) -> dict[str, Any]:
        """The config with every key: records written before a key existed read as its default."""
        return {**RunConfig().to_dict(), **self.config}

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def dataset_title(self) -> str:
        return labels.dataset_title(self.dataset)

    @property
    def variant(self) -> str:
        """``baseline`` or a label saying how accumulation was done."""
        return labels.variant(self.config)

    def measured(self, key: str) -> Any:
        """A metric of the run, or NaN where its records lack it."""
        return self.metrics.get(key, math.nan)

    @property
    def micro_batch_size(self) -> int:
        c = self.resolved_config
        return self.metrics.get("micro_batch_size",
                                math.ceil(c["batch_size"] / c["accumulation_steps"]))

    @property
    def effective_learning_rate(self) -> float:
        return self.metrics.get("effective_learning_rate", self.resolved_config["learning_rate"])

    @property
    def time_per_image_ms(self) -> float:
        """Steady training time per training image (median epoch), in ms."""
        n_train = self.metrics.get("samples", {}).get("train")
        per_epoch = self.metrics.get("train_time_per_epoch_s")
        return 1000 * per_epoch / n_train if per_epoch and n_train else math.nan


@dataclass
class Suite:
    """The complete runs of a suite, and the folders that hold no complete run."""

    path: Path
    runs: list[Run]
    incomplete: list[Path] = field(default_factory=list)


def load_suite(path: str | Path) -> Suite:
    """Load every complete run under ``path`` (one level of run folders)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such suite folder; run `swin-gao run-all params/<suite>` first")
    runs, incomplete = [], []
    for run_dir in sorted(p for p in path.iterdir() if p.is_dir() and p.name != REPORT_DIR):
        folder = RunFolder(run_dir)
        if not folder.complete:
            incomplete.append(run_dir)
            continue
        runs.append(folder.read())
    if not runs:
        raise InputError(f"{path}: holds no complete run (a run is complete once its "
                         f"{COMPLETE_MARKER} is written)")
    return Suite(path, runs, incomplete)
