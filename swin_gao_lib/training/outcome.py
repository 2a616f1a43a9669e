"""What a finished (or failed) run records, whichever loop trained it.

``fit`` (:mod:`swin_gao_lib.training.train`) and the device's epoch programs
(:mod:`swin_gao_lib.training.side_by_side`) write the same run folder: the
same ``metrics.json`` (:func:`run_metrics`), the same ``failure.json``
(:func:`failure_record`), the same digest of the final weights, and fail with
the same one-line error (:func:`run_error`).
"""

from __future__ import annotations

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
from swin_gao_lib.data.splits import Splits
from swin_gao_lib.records import RunFolder
from swin_gao_lib.records.history import RUNNING_ACCURACY
from swin_gao_lib.runtime.machine import environment


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


def finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


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


def run_metrics(cfg: RunConfig, run_dir: Path, *, test: dict, train_eval: dict,
                run_summary: dict[str, Any], fit_s: float, updates: int, micro_steps: int,
                splits: Splits, network: keras.Model, resumed_at: list[int],
                memory: dict[str, Any], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The content of ``metrics.json`` (docs/records.md), in its order.

    ``test`` and ``train_eval``: loss and accuracy of the final model on the
    test images and, scored the same way, on its own training images;
    ``run_summary``: :func:`summary` of the history; ``memory``:
    :meth:`PeakMemory.describe`; ``extra``: keys a loop adds (side by side).
    """
    return {
        "run_name": run_dir.name,
        "seed": cfg.seed,
        "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"]),
        "train_eval_loss": float(train_eval["loss"]),
        "train_eval_accuracy": float(train_eval["accuracy"]),
        "generalization_gap": float(train_eval["accuracy"]) - float(test["accuracy"]),
        **run_summary,
        "fit_wall_s": fit_s,
        "optimizer_updates": updates,
        "optimizer_micro_steps": micro_steps,
        "samples": splits.sizes(),
        "batch_size": cfg.batch_size, "micro_batch_size": cfg.micro_batch_size,
        "accumulation_steps": cfg.accumulation_steps,
        "accumulation_mode": cfg.accumulation_mode, "reduction": cfg.reduction,
        "effective_learning_rate": cfg.effective_learning_rate,
        "parameters": network.count_params(),
        "final_weights_sha256": weights_digest(network),
        "resumed": len(resumed_at),
        "resumed_at_epochs": resumed_at,
        **memory,
        "data": splits.description,
        **(extra or {}),
        "environment": environment(),
    }


def failure_record(exc: BaseException, rows: list[dict[str, Any]], run_dir: Path) -> dict:
    """The content of ``failure.json`` for ``exc`` (call inside its ``except`` block)."""
    diverged = exc.where if isinstance(exc, Diverged) else None
    return {
        "error": f"{type(exc).__name__}: {exc}",
        "diverged": diverged is not None,
        **(diverged or {}),
        "traceback": traceback.format_exc(),
        "epochs_completed": len([r for r in rows if finite(r["loss"])]),
    }


def record_failure(folder: RunFolder, failure: dict[str, Any]) -> bool:
    """Write ``failure.json``, best effort: the failure may be that nothing can be written."""
    try:
        failure["partial_outputs"] = sorted(p.name for p in folder.path.iterdir())
        folder.write_failure(failure)
        return True
    except OSError:
        return False


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


def run_error(folder: RunFolder, exc: BaseException, rows: list[dict[str, Any]],
              saved_epoch: int | None) -> RunError:
    """Record ``exc`` in ``failure.json`` and return the run's error (call inside ``except``).

    A write that failed (``OSError``: a full disk, a read-only folder) is the
    disk's fault, not the run's: its message is :func:`write_failed`'s one
    line, and no traceback is chained for the command line to print. Any
    other failure names its exception and keeps it as the cause.

    Args:
        rows: the history rows recorded so far (for ``epochs_completed``).
        saved_epoch: the epoch of the checkpoint on disk, if any.
    """
    failure = failure_record(exc, rows, folder.path)
    recorded = record_failure(folder, failure)
    if isinstance(exc, OSError):
        error = RunError(write_failed(exc, saved_epoch, folder.path, recorded), str(folder.path))
        error.__suppress_context__ = True
        return error
    error = RunError(f"run failed after {failure['epochs_completed']} epoch(s): "
                     f"{type(exc).__name__}: {exc}; partial outputs kept in {folder.path}",
                     str(folder.path))
    error.__cause__ = exc
    return error
