"""One training run: data, model, accumulating train step, and its records.

``train(config)`` writes the run folder ``<output_dir>/<run_name>/``
(:mod:`swin_gao_lib.records` owns its files): the resolved config first, the
history after every epoch, and the metrics last, on success only (or a
failure record instead).

Timing: each epoch's training wall time is split from its validation time.
The first train step of a run also traces and compiles the step function;
``compile_s`` estimates that cost as the first step's time minus the mean of
the epoch's other steps, and ``train_s_steady`` excludes it. Images/s is
computed from the steady times.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from swin_gao_lib.accumulation import build_trainer, optimizer_updates
from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.pipeline import Datasets, make_datasets
from swin_gao_lib.errors import ConfigError, RunError
from swin_gao_lib.machine import PeakMemory, environment
from swin_gao_lib.model import build_swin
from swin_gao_lib.records import RunFolder


@dataclass
class RunResult:
    """What a finished run produced (the same numbers as its files)."""

    config: RunConfig
    run_dir: Path
    history: list[dict[str, Any]]
    metrics: dict[str, Any]
    model: keras.Model = field(repr=False)


class EpochRecorder(keras.callbacks.Callback):
    """Record per-epoch metrics and times; rewrite ``history.csv`` after every epoch."""

    def __init__(self, folder: RunFolder, n_train: int):
        super().__init__()
        self.folder, self.n_train = folder, n_train
        self.rows: list[dict[str, Any]] = []
        # Train steps taken: optimizer mode applies one micro-step per step.
        self.steps = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.t_epoch = time.perf_counter()
        self.step_ends: list[float] = []

    def on_train_batch_end(self, batch, logs=None):
        self.step_ends.append(time.perf_counter())
        self.steps += 1

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        logs = logs or {}
        last = self.step_ends[-1] if self.step_ends else now
        train_s = last - self.t_epoch
        compile_s = 0.0
        if epoch == 0 and len(self.step_ends) > 1:
            first = self.step_ends[0] - self.t_epoch
            typical = (last - self.step_ends[0]) / (len(self.step_ends) - 1)
            compile_s = max(first - typical, 0.0)
        steady = train_s - compile_s
        row = {
            "epoch": epoch + 1,
            "loss": logs.get("loss"), "accuracy": logs.get("accuracy"),
            "val_loss": logs.get("val_loss"), "val_accuracy": logs.get("val_accuracy"),
            "epoch_s": now - self.t_epoch, "train_s": train_s, "compile_s": compile_s,
            "train_s_steady": steady, "val_s": now - last,
            "images_per_s": self.n_train / steady if steady > 0 else None,
        }
        self.rows.append(row)
        self.folder.write_history(self.rows)


def _summary(rows: list[dict[str, Any]], n_train: int) -> dict[str, Any]:
    steady = sum(r["train_s_steady"] for r in rows)
    per_epoch = [r["train_s_steady"] for r in rows]
    return {
        "epochs_completed": len(rows),
        "total_time_s": sum(r["epoch_s"] for r in rows),
        "train_time_s": sum(r["train_s"] for r in rows),
        "compile_s": rows[0]["compile_s"] if rows else None,
        "train_time_per_epoch_s": float(np.median(per_epoch)) if rows else None,
        "images_per_s": n_train * len(rows) / steady if steady > 0 else None,
        "final_train_loss": rows[-1]["loss"] if rows else None,
        "final_train_accuracy": rows[-1]["accuracy"] if rows else None,
        "final_val_loss": rows[-1]["val_loss"] if rows else None,
        "final_val_accuracy": rows[-1]["val_accuracy"] if rows else None,
    }


def prepare(cfg: RunConfig, overwrite: bool = False, log=print) -> tuple[RunFolder, Datasets]:
    """Every check that can fail on input, before anything trains: output folder, then data."""
    folder = RunFolder.of(cfg)
    existing = folder.existing_records()
    if existing and not overwrite:
        raise ConfigError(
            f"output: {folder.path} already holds a run ({', '.join(existing)}); choose another "
            "run_name or output_dir, or pass --overwrite to replace it"
        )
    data = make_datasets(cfg)
    sizes = data.splits.sizes()
    log(f"data: {data.splits.description}")
    log(f"data: using {sizes['train']} train, {sizes['validation']} validation, "
        f"{sizes['test']} test images at {cfg.input_shape}")
    return folder, data


def train(cfg: RunConfig, *, overwrite: bool = False, verbose: int | str = "auto",
          log=print) -> RunResult:
    """Train one configuration and write its records (see module docstring).

    Raises:
        InputError: bad output folder or data, before training starts.
        RunError: the run failed; ``failure.json`` and the finished epochs'
            ``history.csv`` stay in ``RunError.run_dir``.
    """
    folder, data = prepare(cfg, overwrite=overwrite, log=log)
    run_dir = folder.path
    folder.start(cfg)

    n_train = len(data.splits.y_train)
    recorder = EpochRecorder(folder, n_train)
    memory = PeakMemory()
    try:
        keras.utils.set_random_seed(cfg.seed)
        network = build_swin(cfg)
        model = build_trainer(cfg, network)
        memory.reset()
        t0 = time.perf_counter()
        model.fit(data.train, validation_data=data.validation, epochs=cfg.epochs,
                  callbacks=[recorder], verbose=verbose)
        fit_s = time.perf_counter() - t0
        test = model.evaluate(data.test, verbose=0, return_dict=True)
        # The history's train accuracy is a running mean over an epoch with dropout
        # and augmentation on; the train-test gap that tests "overfitting" needs the
        # final model scored on its train images the way test images are scored.
        train_eval = model.evaluate(data.train_eval, verbose=0, return_dict=True)
        metrics = {
            "run_name": run_dir.name,
            "seed": cfg.seed,
            "test_loss": float(test["loss"]), "test_accuracy": float(test["accuracy"]),
            "train_eval_loss": float(train_eval["loss"]),
            "train_eval_accuracy": float(train_eval["accuracy"]),
            "generalization_gap": float(train_eval["accuracy"]) - float(test["accuracy"]),
            **_summary(recorder.rows, n_train),
            "fit_wall_s": fit_s,
            "optimizer_updates": optimizer_updates(model.optimizer),
            "optimizer_micro_steps": recorder.steps,
            "samples": data.splits.sizes(),
            "batch_size": cfg.batch_size, "micro_batch_size": cfg.micro_batch_size,
            "accumulation_steps": cfg.accumulation_steps,
            "accumulation_mode": cfg.accumulation_mode, "reduction": cfg.reduction,
            "effective_learning_rate": cfg.effective_learning_rate,
            "parameters": network.count_params(),
            **memory.describe(),
            "data": data.splits.description,
            "environment": environment(),
        }
    except BaseException as exc:
        failure = {
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(),
            "epochs_completed": len(recorder.rows),
            "partial_outputs": sorted(p.name for p in run_dir.iterdir()),
        }
        folder.write_failure(failure)
        if isinstance(exc, KeyboardInterrupt):
            log(f"interrupted; partial outputs kept in {run_dir}")
            raise
        raise RunError(f"run failed after {len(recorder.rows)} epoch(s): {type(exc).__name__}: "
                       f"{exc}; partial outputs kept in {run_dir}", str(run_dir)) from exc
    folder.write_metrics(metrics)
    log(f"done: test accuracy {metrics['test_accuracy']:.4f}, "
        f"{metrics['optimizer_updates']} optimizer updates, records in {run_dir}")
    return RunResult(cfg, run_dir, recorder.rows, metrics, network)
