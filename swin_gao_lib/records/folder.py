"""One run's folder: its files, the lock, writing records, clearing and reading them."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping

from swin_gao_lib.config import RunConfig, make_config, to_yaml
from swin_gao_lib.config.run_config import NOT_IDENTITY
from swin_gao_lib.config.yaml_text import read_yaml_file
from swin_gao_lib.errors import ConfigError, InputError
from swin_gao_lib.files import atomic_write_text, write_csv, write_json
from swin_gao_lib.records.layout import (CHECKPOINT, CHECKPOINT_FILE, COMPLETE_MARKER, CONFIG,
                                         FAILURE, HISTORY, LEARNING_RATES, LOCK, METRICS,
                                         NOTEBOOK, RECORDS, REPORT_DIR, RESULTS, run_dir_of)
from swin_gao_lib.records.history import current_columns
from swin_gao_lib.records.run import Run


#: Keys every ``config.yaml`` the kit has ever written holds (a file with all of them is the
#: kit's own, even when this version refuses a value).
KIT_CONFIG_KEYS = frozenset({"dataset", "source", "batch_size", "accumulation_steps",
                             "accumulation_mode", "epochs", "seed", "output_dir", "run_name"})
#: A record's temporary name while written (:func:`swin_gao_lib.files.atomic_write_bytes`).
_LEFT_BEHIND = re.compile(r"\.(" + "|".join(re.escape(n) for n in (*RECORDS, NOTEBOOK))
                          + r")\.[^/]+\.tmp")


class UnusableConfig(ConfigError):
    """A ``config.yaml`` the kit wrote, whose values this version of the kit refuses."""


def _read_mapping(path: Path) -> dict[str, Any] | None:
    """A YAML file's mapping, or None when it is not YAML or not a mapping of names."""
    try:  # bounded, and never opens a FIFO or a device (which would not end)
        values = read_yaml_file(path, "config")
    except InputError:
        return None
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        return None
    return values


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
            UnusableConfig: one the kit wrote that this version refuses.
        """
        path = self.path / CONFIG
        if not path.exists():
            return None
        values = _read_mapping(path)
        if values is None or not KIT_CONFIG_KEYS <= set(values):
            raise ConfigError(f"output: {path} exists and is not a run config this kit wrote; "
                              "choose another run_name or output_dir (the kit never replaces "
                              "files it did not write)")
        try:
            return make_config({**values, "output_dir": str(self.path.parent),
                                "run_name": self.name})
        except ConfigError as exc:
            raise UnusableConfig(
                f"output: {self.path} holds a run whose config.yaml this version of the kit "
                f"refuses ({exc}); pass --overwrite (run-all: --force) to replace it, or choose "
                "another run_name or output_dir") from None

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

        Only an unfinished run of the same resolved config is resumed; a complete or
        diverged run, another config's, or files the kit did not write are refused
        unless ``overwrite`` (which touches only the kit's files). Writes nothing.

        Raises:
            ConfigError: the folder cannot be used as asked; the message says why.
        """
        if self.name == REPORT_DIR:
            raise ConfigError(f"run_name: '{REPORT_DIR}' is the name of a suite's report folder; "
                              "choose another run_name")
        self.check_writable()
        try:
            recorded = self.recorded_config()  # raises for a config.yaml the kit did not write
        except UnusableConfig:  # the kit's own, from a failed or older run
            if overwrite:
                return "overwrite"
            raise
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
                 if p.name not in ours and not p.name.startswith(".swin-gao-")
                 and not _LEFT_BEHIND.fullmatch(p.name)]
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
        self.remove_left_behind()
        self.clear_checkpoint()

    def remove_left_behind(self) -> None:
        """Remove the temporary files of writes a killed process never finished (only under the
        folder's lock: another writer's is a write going on)."""
        if self.path.is_dir():
            for path in self.path.iterdir():
                if _LEFT_BEHIND.fullmatch(path.name):
                    path.unlink(missing_ok=True)

    def reopen(self, cfg: RunConfig) -> None:
        """Go on with the unfinished run of ``cfg`` here (under the folder's lock): remove the
        earlier try's ``failure.json`` and left-behind temporary files; rewrite a lost config."""
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / FAILURE).unlink(missing_ok=True)
        self.remove_left_behind()
        if not (self.path / CONFIG).exists():
            self.write_config(cfg)

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
        """Hold the folder for one writer (``fcntl.flock`` on ``.lock``, released however the
        holder exits): a second process gets a clear error, not a mix."""
        import fcntl

        self.path.mkdir(parents=True, exist_ok=True)
        while True:
            handle = open(self.path / LOCK, "a+")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                handle.seek(0)
                holder = handle.read().strip() or "?"
                handle.close()
                raise ConfigError(f"output: {self.path} is being written by another process "
                                  f"(pid {holder}); wait for it to finish, or stop it") from None
            try:  # the holder removes the file before letting go: lock the file that is there
                if os.fstat(handle.fileno()).st_ino == os.stat(self.path / LOCK).st_ino:
                    break
            except OSError:
                pass
            handle.close()
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            # removed while still held; a process killed here leaves it for the next writer
            try:
                (self.path / LOCK).unlink(missing_ok=True)
            except OSError:  # a folder turned read-only: the lock file stays, harmless
                pass
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

    def trim_to_checkpoint(self, history: list[Mapping[str, Any]],
                           updates: int) -> list[dict[str, Any]]:
        """Cut a resumed run's records back to its checkpoint (a killed run may have written
        rows after it): ``history``, and ``lr.csv``'s first ``updates`` rows, returned."""
        rates = [r for r in self.read_learning_rates() if r["update"] < updates]
        self.write_learning_rates(rates)
        self.write_history(history)
        return rates

    def read_learning_rates(self) -> list[dict[str, Any]]:
        """The rows of ``lr.csv`` (numbers parsed), or none when the run has no such file."""
        path = self.path / LEARNING_RATES
        if not path.is_file():
            return []
        import csv

        def number(text: str | None) -> float | None:
            return float(text) if text not in (None, "") else None

        with path.open(newline="") as f:
            # loss and update_norm: per-update columns that older records lack
            return [{"update": int(r["update"]), "epoch": int(r["epoch"]), "step": int(r["step"]),
                     "learning_rate": float(r["learning_rate"]),
                     **{k: number(r[k]) for k in ("loss", "update_norm") if k in r}}
                    for r in csv.DictReader(f)]

    def write_metrics(self, metrics: Mapping[str, Any]) -> Path:
        return write_json(self.path / METRICS, metrics)

    def write_failure(self, failure: Mapping[str, Any]) -> Path:
        return write_json(self.path / FAILURE, failure)

    def read(self) -> "Run":
        """The records of a complete run."""
        import pandas as pd

        return Run(name=self.name, path=self.path,
                   config=read_yaml_file(self.path / CONFIG, "run config"),
                   metrics=json.loads((self.path / METRICS).read_text()),
                   history=current_columns(pd.read_csv(self.path / HISTORY)))


def config_differences(a: RunConfig, b: RunConfig) -> list[str]:
    """The keys in which two configs differ, besides where their records go."""
    da, db = a.to_dict(), b.to_dict()
    return [k for k in da if k not in NOT_IDENTITY and da[k] != db[k]]
