"""A run's records as it trains and when it ends, whichever loop trains it.

``fit`` (:mod:`swin_gao_lib.training.train`) and the device's epoch programs
(:mod:`swin_gao_lib.training.side_by_side`) both write through
:class:`RunRecords`, so their run folders are the same: ``history.csv``,
``lr.csv``, the checkpoint, ``metrics.json`` or ``failure.json``, and the
same one-line error (:meth:`RunRecords.fail`).
"""

from __future__ import annotations

import contextlib
import errno
import math
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from swin_gao_lib.config import RunConfig
from swin_gao_lib.errors import RunError
from swin_gao_lib.records import RunFolder
from swin_gao_lib.records.history import RUNNING_ACCURACY, history_row
from swin_gao_lib.runtime.machine import environment
from swin_gao_lib.training.accumulation import optimizer_updates
from swin_gao_lib.training.checkpoint import Checkpoint
from swin_gao_lib.training.preflight import Preflight


@dataclass
class RunResult:
    """What a finished run produced (the same numbers as its files)."""

    config: RunConfig
    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    model: keras.Model = field(repr=False)


class Diverged(RuntimeError):
    """The loss became NaN or infinite; ``where`` says at which epoch and step."""

    def __init__(self, where: dict[str, Any]):
        super().__init__(f"the loss became {where['loss']} at epoch {where['epoch']}, step "
                         f"{where['step']}; training stopped there (a smaller learning_rate, or "
                         "reduction: mean instead of sum, usually helps)")
        self.where = where


def epoch_times(start: float, trained: float, end: float, compile_s: float) -> dict[str, float]:
    """An epoch's times from its start, the end of its training and its end (validated).

    ``train_s`` includes ``compile_s``; ``train_s_steady`` does not.
    """
    return {"epoch_s": end - start, "train_s": trained - start, "compile_s": compile_s,
            "train_s_steady": trained - start - compile_s, "val_s": end - trained}


def summary(rows: list[dict[str, Any]], n_train: int) -> dict[str, Any]:
    """The run-level numbers of ``metrics.json`` that the history rows determine."""
    steady = sum(r["train_s_steady"] for r in rows)
    per_epoch = [r["train_s_steady"] for r in rows]
    return {
        "epochs_completed": len(rows),
        "total_time_s": sum(r["epoch_s"] for r in rows),
        "train_time_s": sum(r["train_s"] for r in rows),
        # each process compiles once: a resumed run has several compile times
        "compile_s": sum(r["compile_s"] for r in rows) if rows else None,
        "train_time_per_epoch_s": float(np.median(per_epoch)) if rows else None,
        "images_per_s": n_train * len(rows) / steady if steady > 0 else None,
        "final_train_loss": rows[-1]["loss"] if rows else None,
        "final_train_accuracy": rows[-1][RUNNING_ACCURACY] if rows else None,
        "final_val_loss": rows[-1]["val_loss"] if rows else None,
        "final_val_accuracy": rows[-1]["val_accuracy"] if rows else None,
    }


def weights_digest(network: keras.Model) -> str:
    """SHA-256 of every weight's bytes in order: equal digests mean bit-identical models."""
    import hashlib

    digest = hashlib.sha256()
    for w in network.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(w)).tobytes())
    return digest.hexdigest()


def resume_state(checked: Preflight) -> dict[str, Any] | None:
    """The checkpoint a resumed run continues from (None: a new run, or no epoch finished)."""
    return Checkpoint(checked.folder.checkpoint).load() if checked.action == "resume" else None


class RunRecords:
    """One run's records while it trains: history and ``lr.csv`` rows, checkpoint, outcome.

    ``state``: :func:`resume_state`; the rows, train steps, resumes and
    side-by-side segments recorded before it are carried on from it.
    """

    def __init__(self, cfg: RunConfig, checked: Preflight, state: dict[str, Any] | None):
        self.cfg, self.checked, self.state = cfg, checked, state
        self.folder: RunFolder = checked.folder
        self.checkpoint = Checkpoint(checked.folder.checkpoint)
        self.rows: list[dict[str, Any]] = list(state["history"]) if state else []
        self.rates: list[dict[str, Any]] = []
        self.steps: int = state["steps"] if state else 0  # train steps (micro-steps), in all
        self.resumed_at: list[int] = list(state.get("resumed_at_epochs", [])) if state else []
        # the epochs trained on a seed axis: [{"epochs": [first, last], "seeds": [...]}, ...]
        self.segments: list[dict[str, list[int]]] = [
            {"epochs": list(s["epochs"]), "seeds": list(s["seeds"])}
            for s in (state or {}).get("side_by_side", [])]

    @property
    def first_epoch(self) -> int:
        """The epoch this process starts the run at: its checkpoint's, or 0."""
        return self.state["epoch"] if self.state else 0

    @property
    def n_train(self) -> int:
        return len(self.checked.splits.y_train)

    def open(self) -> None:
        """Open the run's folder: a new run, or the unfinished one it resumes."""
        if self.checked.action == "resume":
            self.folder.reopen(self.cfg)
        else:
            self.folder.start(self.cfg)

    def restore(self, model: keras.Model, log) -> None:
        """Put ``model`` (built by ``build_trainer``) into the checkpoint's state; keep the
        ``lr.csv`` rows up to it."""
        self.checkpoint.restore(model, self.state)
        self.rates = self.folder.trim_to_checkpoint(self.rows, optimizer_updates(model.optimizer))
        self.resumed_at.append(self.first_epoch)
        log(f"resuming {self.folder.name} after epoch {self.first_epoch} of {self.cfg.epochs}")

    def add_update(self, update: int, epoch: int, rate: float, loss: float | None,
                   norm: float) -> None:
        """An ``lr.csv`` row: update ``update`` happened at the current step of ``epoch``."""
        self.rates.append({"update": update, "epoch": epoch, "step": self.steps,
                           "learning_rate": rate, "loss": loss, "update_norm": norm})

    def end_epoch(self, epoch: int, loss, accuracy, val_loss, val_accuracy,
                  times: dict[str, float]) -> None:
        """Epoch ``epoch``'s (from 1) history row; ``history.csv`` and ``lr.csv`` rewritten."""
        self.rows.append(history_row(epoch, loss, accuracy, val_loss, val_accuracy, times,
                                     self.n_train))
        self.folder.write_history(self.rows)
        self.folder.write_learning_rates(self.rates)

    def save(self, model: keras.Model, epoch: int, program_seeds: list[int] | None = None) -> None:
        """The checkpoint after ``epoch`` finished epochs (side by side: with its program's
        seeds and the run's segments)."""
        extra: dict[str, Any] = {"history": self.rows, "steps": self.steps,
                                 "resumed_at_epochs": self.resumed_at}
        if program_seeds is not None:
            extra.update(side_by_side=self.segments, program_seeds=program_seeds)
        self.checkpoint.save(model, epoch, extra)

    def metrics(self, *, test: dict, train_eval: dict, fit_s: float, model: keras.Model,
                network: keras.Model, memory: dict[str, Any],
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The content of ``metrics.json`` (docs/records.md), in its order.

        ``test``, ``train_eval``: loss and accuracy of the final model on the test
        images and, scored the same way, on its training images; ``fit_s``: this
        process's fit time (earlier processes' epochs are added); ``memory``:
        :meth:`PeakMemory.describe`; ``extra``: keys a loop adds (side by side).
        """
        cfg, splits = self.cfg, self.checked.splits
        earlier = sum(r["epoch_s"] for r in self.rows[:self.first_epoch])
        return {
            "run_name": self.folder.name,
            "seed": cfg.seed,
            "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"]),
            "train_eval_loss": float(train_eval["loss"]),
            "train_eval_accuracy": float(train_eval["accuracy"]),
            "generalization_gap": float(train_eval["accuracy"]) - float(test["accuracy"]),
            **summary(self.rows, self.n_train),
            "fit_wall_s": fit_s + earlier,
            "optimizer_updates": optimizer_updates(model.optimizer),
            "optimizer_micro_steps": self.steps,
            "samples": splits.sizes(),
            "batch_size": cfg.batch_size, "micro_batch_size": cfg.micro_batch_size,
            "accumulation_steps": cfg.accumulation_steps,
            "accumulation_mode": cfg.accumulation_mode, "reduction": cfg.reduction,
            "effective_learning_rate": cfg.effective_learning_rate,
            "parameters": network.count_params(),
            "final_weights_sha256": weights_digest(network),
            "resumed": len(self.resumed_at),
            "resumed_at_epochs": self.resumed_at,
            **memory,
            "data": splits.description,
            **(extra or {}),
            "environment": environment(),
        }

    def finish(self, metrics: dict[str, Any], log, named: bool = False) -> None:
        """Write ``metrics.json`` (the run is complete), drop the checkpoint, say so.

        Raises:
            OSError: ``metrics.json`` could not be written.
        """
        self.folder.write_metrics(metrics)
        with contextlib.suppress(OSError):  # complete: a checkpoint left behind only takes space
            self.folder.clear_checkpoint()
        log(f"done: {f'{self.folder.name}: ' if named else ''}test accuracy "
            f"{metrics['test_accuracy']:.4f}, {metrics['optimizer_updates']} optimizer updates, "
            f"records in {self.folder.path}")

    def fail(self, exc: BaseException) -> RunError:
        """Record ``exc`` in ``failure.json``; return the run's error (call inside ``except``).

        A failed write (``OSError``) is the disk's fault: its message is
        :func:`write_failed`'s line, with no traceback chained. Any other failure
        names its exception and keeps it as the cause.
        """
        folder, diverged = self.folder, exc.where if isinstance(exc, Diverged) else None
        failure = {
            "error": f"{type(exc).__name__}: {exc}",
            "diverged": diverged is not None,
            **(diverged or {}),
            "traceback": traceback.format_exc(),
            "epochs_completed": len([r for r in self.rows if r["loss"] is not None
                                     and math.isfinite(float(r["loss"]))]),
        }
        try:  # best effort: the failure may be that nothing can be written
            failure["partial_outputs"] = sorted(p.name for p in folder.path.iterdir())
            folder.write_failure(failure)
            recorded = True
        except OSError:
            recorded = False
        if isinstance(exc, OSError):
            error = RunError(write_failed(exc, self.checkpoint.saved_epoch(), folder.path,
                                          recorded), str(folder.path))
            error.__suppress_context__ = True
            return error
        error = RunError(f"run failed after {failure['epochs_completed']} epoch(s): "
                         f"{type(exc).__name__}: {exc}; partial outputs kept in {folder.path}",
                         str(folder.path))
        error.__cause__ = exc
        return error


def write_failed(exc: OSError, saved_epoch: int | None, run_dir: Path, recorded: bool) -> str:
    """One line for a write that failed mid-run: the path, the cause, what was kept."""
    path = exc.filename or run_dir
    writing = exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM,
                            errno.EFBIG)
    kept = (f"the checkpoint of epoch {saved_epoch} is kept in {run_dir}" if saved_epoch
            else f"no epoch had finished, so {run_dir} holds no checkpoint")
    return (f"{'cannot write ' if writing else ''}{path}: {exc.strerror or exc}; {kept}"
            f"{'' if recorded else ' (failure.json could not be written)'}; free space or make "
            "the folder writable, then run the same command again to resume")

