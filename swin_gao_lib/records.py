"""The run folder: its files, the completion marker, writing and reading a run, a suite.

One run lands in ``<output_dir>/<run_name>/`` (:func:`run_dir_of`):

* ``config.yaml`` — the resolved config (loads back to the same run), first;
* ``history.csv`` — one row per epoch, rewritten after every epoch, so a run
  that dies keeps the epochs it finished;
* ``lr.csv`` — one row per optimizer update: ``update`` (k, from 0), the
  ``epoch`` and train ``step`` (a micro-step in optimizer mode) it happened
  at, and the ``learning_rate`` the optimizer applied; rewritten after every
  epoch. Runs recorded before it existed have none (:attr:`Run.learning_rates`
  is then None);
* ``metrics.json`` — written last, only when the run succeeded: its presence
  marks a complete record (:data:`COMPLETE_MARKER`);
* ``failure.json`` — instead of ``metrics.json`` when the run failed: the
  error, the traceback and the epochs completed;
* ``train.ipynb`` — the executed notebook, when ``run-all`` ran it;
* ``checkpoint/`` — while the run is unfinished: the state after the last
  finished epoch (:mod:`swin_gao_lib.checkpoint`), from which a new start of
  the same config resumes; removed when the run completes.

A *suite* is a folder of run folders (plus its ``report/``, and reference
folders holding a ``linear.json``, :data:`LINEAR_REFERENCE`, written by
``swin-gao linear``: read as references, not runs). Every file is
written atomically (:mod:`swin_gao_lib.files`), so a crash leaves either the
old file or the new one, never half.

This module imports no TensorFlow: ``run-all`` plans and skips runs with it.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from swin_gao_lib import labels
from swin_gao_lib.config import RunConfig, make_config, to_yaml
from swin_gao_lib.errors import ConfigError, InputError
from swin_gao_lib.files import atomic_write_text, write_csv, write_json

CONFIG, HISTORY, METRICS, FAILURE, NOTEBOOK, CHECKPOINT = (
    "config.yaml", "history.csv", "metrics.json", "failure.json", "train.ipynb", "checkpoint")
#: The learning rate applied at every optimizer update.
LEARNING_RATES = "lr.csv"
#: Written last, only by a successful run: a run folder holding it is complete.
COMPLETE_MARKER = METRICS
#: What a run writes besides its config; the completion marker first, so that
#: :meth:`RunFolder.clear` unmarks a complete run before it removes anything else.
RESULTS = (METRICS, FAILURE, HISTORY, LEARNING_RATES)
#: The records a run writes; a folder holding any of them holds a run.
RECORDS = (CONFIG, *RESULTS)
#: A linear classifier's reference result (:mod:`swin_gao_lib.linear`); a folder holding it
#: is a reference, not a run.
LINEAR_REFERENCE = "linear.json"
#: The suite's report folder, beside its run folders.
REPORT_DIR = "report"
#: The example records that ship inside the package: ``examples/quick``'s run records
#: (the paper's four runs of ``params/quick``), so that the report notebook opened alone
#: (its Colab badge) has a suite to show. ``tools/bundle_example.py`` copies them.
EXAMPLE_SUITE = Path(__file__).resolve().parent / "example_suite"
#: The files of each example run that are bundled (what the report reads).
EXAMPLE_FILES = (CONFIG, HISTORY, LEARNING_RATES, METRICS)
#: Held (flock) by the process that writes a run folder; holds that process's pid.
LOCK = ".lock"
#: The files a checkpoint folder may hold, all written by :mod:`swin_gao_lib.checkpoint`.
CHECKPOINT_FILE = re.compile(r"(\.tmp-)?epoch-\d{5}\.(weights\.h5|rng\.npz)|state\.json|"
                             r"\.(epoch-\d{5}\.rng\.npz|state\.json)\..*\.tmp")


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
        return [n for n in RESULTS if (self.path / n).exists()]

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    def recorded_config(self) -> RunConfig | None:
        """The config in the folder's ``config.yaml``, or None when there is none.

        Raises:
            ConfigError: a ``config.yaml`` that is not one the kit wrote.
        """
        path = self.path / CONFIG
        if not path.exists():
            return None
        try:
            import yaml

            values = yaml.safe_load(path.read_text(encoding="utf-8"))
            return make_config({**values, "output_dir": str(self.path.parent),
                                "run_name": self.name})
        except Exception:  # not YAML, not a mapping, unknown keys, bad values
            raise ConfigError(f"output: {path} exists and is not a run config this kit wrote; "
                              "choose another run_name or output_dir (the kit never replaces "
                              "files it did not write)") from None

    def check_writable(self) -> None:
        """Fail early, writing nothing, when the folder cannot be created or written."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output: {self.path} is a file, not a folder; choose another "
                              "run_name or output_dir")
        existing = self.path
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"output_dir: {self.path.parent} is below {existing}, which is a "
                              "file; choose a folder path")
        try:  # the only sure test is to try; the probe is removed at once
            os.rmdir(tempfile.mkdtemp(prefix=".swin-gao-probe-", dir=existing))
        except OSError as exc:
            raise ConfigError(f"output_dir: cannot create folders in {existing} "
                              f"({exc.strerror or exc}); choose a writable folder") from None

    def failure(self) -> dict[str, Any] | None:
        """What ``failure.json`` says, or None when there is none (or it is unreadable)."""
        try:
            return json.loads((self.path / FAILURE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    @property
    def diverged(self) -> bool:
        """Whether the run stopped because its loss became NaN or infinite."""
        failure = self.failure()
        return bool(failure and failure.get("diverged"))

    def plan(self, cfg: RunConfig, overwrite: bool = False) -> str:
        """How a run of ``cfg`` may use this folder: ``"new"``, ``"resume"`` or ``"overwrite"``.

        An unfinished run of the same resolved config is resumed; a complete
        run, a diverged one (it would diverge again), an unfinished run of
        another config, or a folder holding files the kit did not write, is
        refused unless ``overwrite`` (which still touches only the kit's own
        files). Nothing is written here.

        Raises:
            ConfigError: the folder cannot be used as asked; the message says why.
        """
        if self.name == REPORT_DIR:
            raise ConfigError(f"run_name: '{REPORT_DIR}' is the name of a suite's report folder; "
                              "choose another run_name")
        self.check_writable()
        recorded = self.recorded_config()  # raises for a config.yaml the kit did not write
        if recorded is None:
            if self.existing_records():  # records without their config: not a run we can trust
                if overwrite:
                    return "overwrite"
                raise ConfigError(f"output: {self.path} holds {', '.join(self.existing_records())}"
                                  " but no config.yaml; choose another run_name or output_dir, "
                                  "or pass --overwrite to replace them")
            foreign = self.foreign_files()
            if foreign and not overwrite:
                raise ConfigError(f"output: {self.path} already holds {', '.join(foreign[:3])}"
                                  f"{', ...' if len(foreign) > 3 else ''}, which the kit did not "
                                  "write; choose another run_name or output_dir")
            return "new"
        if overwrite:
            return "overwrite"
        if self.complete:
            raise ConfigError(f"output: {self.path} already holds a complete run; choose another "
                              "run_name or output_dir, or pass --overwrite to replace it")
        differs = config_differences(recorded, cfg)
        if differs:
            raise ConfigError(
                f"output: {self.path} holds an unfinished run of a different config (it differs "
                f"in {', '.join(differs)}); choose another run_name or output_dir, or pass "
                "--overwrite to discard it")
        if self.diverged:
            where = self.failure()
            raise ConfigError(
                f"output: {self.path} holds a run whose loss became {where.get('loss')} at epoch "
                f"{where.get('epoch')}, step {where.get('step')}; resumed it would diverge again: "
                "change the config (e.g. a smaller learning_rate) or pass --overwrite to start "
                "it over")
        return "resume"

    def foreign_files(self) -> list[str]:
        """Entries of the folder that are none of the kit's files."""
        if not self.path.is_dir():
            return []
        ours = {*RECORDS, NOTEBOOK, CHECKPOINT, LOCK}
        found = [p.name for p in self.path.iterdir()
                 if p.name not in ours and not p.name.startswith(".swin-gao-")]
        if self.checkpoint.is_dir():
            found += [f"{CHECKPOINT}/{p.name}" for p in self.checkpoint.iterdir()
                      if not CHECKPOINT_FILE.fullmatch(p.name)]
        elif self.checkpoint.exists():
            found.append(CHECKPOINT)
        return sorted(found)

    def clear(self) -> None:
        """Remove this run's records and checkpoint: only files the kit writes."""
        for name in RESULTS:
            (self.path / name).unlink(missing_ok=True)
        self.clear_checkpoint()

    def clear_checkpoint(self) -> None:
        """Remove the checkpoint's files (only those the kit writes), then its empty folder."""
        if not self.checkpoint.is_dir():
            return
        for path in self.checkpoint.iterdir():
            if CHECKPOINT_FILE.fullmatch(path.name):
                path.unlink()
        try:
            self.checkpoint.rmdir()
        except OSError:  # something else is in there: leave it
            pass

    @contextlib.contextmanager
    def lock(self):
        """Hold the folder for one writer: a second process gets a clear error, not a mix.

        The lock (``fcntl.flock`` on ``.lock``) is released when the holder exits,
        however it ends (a ``kill -9`` included); a clean exit also removes the file.
        """
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        handle = open(self.path / LOCK, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise ConfigError(f"output: {self.path} is being written by another process "
                              f"(pid {holder}); wait for it to finish, or stop it") from None
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            # Removed while still held, so the finished folder holds only records; a
            # process killed here leaves the file, which the next writer simply reuses.
            (self.path / LOCK).unlink(missing_ok=True)
            handle.close()  # releases the lock

    def start(self, cfg: RunConfig) -> None:
        """Begin a new run: clear the earlier records of this folder, write the config."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.clear()
        self.write_config(cfg)

    def write_config(self, cfg: RunConfig) -> Path:
        return atomic_write_text(self.path / CONFIG, to_yaml(cfg))

    def write_history(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        return write_csv(self.path / HISTORY, rows)

    def write_learning_rates(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        return write_csv(self.path / LEARNING_RATES, rows)

    def read_learning_rates(self) -> list[dict[str, Any]]:
        """The rows of ``lr.csv`` (numbers parsed), or none when the run has no such file."""
        path = self.path / LEARNING_RATES
        if not path.is_file():
            return []
        import csv

        with path.open(newline="") as f:
            return [{"update": int(r["update"]), "epoch": int(r["epoch"]), "step": int(r["step"]),
                     "learning_rate": float(r["learning_rate"])} for r in csv.DictReader(f)]

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


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The keys in which two configs differ, besides where their records go."""
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if k not in ("output_dir", "run_name") and da[k] != db[k]]


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
    def learning_rates(self) -> Any:
        """``lr.csv`` as a DataFrame, or None for records written before it existed."""
        import pandas as pd

        path = self.path / LEARNING_RATES
        return pd.read_csv(path) if path.is_file() else None

    @property
    def micro_batch_size(self) -> int:
        c = self.resolved_config
        return self.metrics.get("micro_batch_size",
                                math.ceil(c["batch_size"] / c["accumulation_steps"]))

    @property
    def effective_learning_rate(self) -> float:
        return self.metrics.get("effective_learning_rate", self.resolved_config["learning_rate"])

    @property
    def training_time_s(self) -> float:
        """The run's training time: the sum of its epochs' steady training wall time.

        Compile time (the first step of each process) and validation are left
        out, so runs of different lengths and resumed runs compare fairly. This
        is the one "training time" of the kit: the report's summary table and
        the label of the training-time figure (whose dots are the epochs' times)
        both show it.
        """
        if "train_s_steady" in self.history:
            return float(self.history["train_s_steady"].sum())
        return float(self.metrics.get("train_time_s") or math.nan)

    @property
    def time_per_image_ms(self) -> float:
        """Steady training time per training image (median epoch), in ms."""
        n_train = self.metrics.get("samples", {}).get("train")
        per_epoch = self.metrics.get("train_time_per_epoch_s")
        return 1000 * per_epoch / n_train if per_epoch and n_train else math.nan


@dataclass
class Suite:
    """The complete runs of a suite, and the folders that hold no complete run.

    ``failed`` holds, for each incomplete folder with a ``failure.json``, what
    it says (``diverged`` is true when the loss became NaN or infinite).
    ``references`` holds what each reference folder's ``linear.json`` says
    (with its folder's name as ``name``).
    """

    path: Path
    runs: list[Run]
    incomplete: list[Path] = field(default_factory=list)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    references: list[dict[str, Any]] = field(default_factory=list)


def load_suite(path: str | Path) -> Suite:
    """Load every complete run under ``path`` (one level of run folders)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such suite folder; run `swin-gao run-all params/<suite>` first")
    runs, incomplete, failed, references = [], [], {}, []
    for run_dir in sorted(p for p in path.iterdir() if p.is_dir() and p.name != REPORT_DIR):
        reference = run_dir / LINEAR_REFERENCE
        if reference.is_file() and not (run_dir / CONFIG).exists():
            try:
                references.append({**json.loads(reference.read_text(encoding="utf-8")),
                                   "name": run_dir.name})
            except ValueError:
                raise InputError(f"{reference}: is not valid JSON; delete it and run "
                                 "`swin-gao linear` again") from None
            continue
        folder = RunFolder(run_dir)
        if not folder.complete:
            incomplete.append(run_dir)
            failure = run_dir / FAILURE
            if failure.is_file():
                try:
                    failed[run_dir.name] = json.loads(failure.read_text(encoding="utf-8"))
                except ValueError:
                    failed[run_dir.name] = {"error": f"{failure} is unreadable"}
            continue
        runs.append(folder.read())
    if not runs:
        raise InputError(f"{path}: holds no complete run (a run is complete once its "
                         f"{COMPLETE_MARKER} is written)")
    return Suite(path, runs, incomplete, failed, references)
