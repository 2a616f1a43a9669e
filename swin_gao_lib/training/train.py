"""One training run with Keras's ``fit``: data, model, accumulating train step, its records.

``train(config)`` writes the run folder ``<output_dir>/<run_name>/``
(:class:`~swin_gao_lib.training.outcome.RunRecords`; files in docs/records.md)
and resumes an unfinished run of the same config from its last finished
epoch, bit for bit as an uninterrupted run on the same machine. A NaN or
infinite loss stops the run at once (``failure.json`` names the epoch and
step). ``compile_s`` estimates the first step's tracing and compilation as
its time minus the mean of the epoch's other steps; ``train_s_steady``
excludes it. ``pipeline: device`` runs :mod:`swin_gao_lib.training.side_by_side`.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import keras
import numpy as np

from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.pipeline import make_datasets
from swin_gao_lib.errors import RunError
from swin_gao_lib.model import build_swin
from swin_gao_lib.runtime.machine import DIE_WITH_PARENT, PeakMemory, die_with_parent
from swin_gao_lib.training.accumulation import build_trainer, optimizer_updates, planned_updates
from swin_gao_lib.training.outcome import (Diverged, RunRecords, RunResult, epoch_times,
                                           resume_state)
from swin_gao_lib.training.preflight import Preflight, preflight

__all__ = ["RunResult", "train"]


class Recorder(keras.callbacks.Callback):
    """``fit``'s side of :class:`RunRecords`: per step and per epoch, what the run records.

    Per update, an ``lr.csv`` row: the rate the optimizer applied (read before
    the step; Keras evaluates a schedule at its counter, then increments it),
    the running ``loss`` after it, and ``update_norm``, the L2 norm of the
    change to the trainable weights. A step counts as an update when the update
    count rose (optimizer mode: one row per N micro-steps). A non-finite loss
    stops training (``diverged`` says where), and no checkpoint is saved after it.
    """

    def __init__(self, records: RunRecords):
        super().__init__()
        self.records = records
        self.first_epoch = len(records.rows)  # the first epoch this process runs (compiles)
        self.diverged: dict[str, Any] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.t_epoch = epoch, time.perf_counter()
        self.step_ends: list[float] = []

    def _weights(self) -> np.ndarray:
        return np.concatenate([np.ravel(keras.ops.convert_to_numpy(w)).astype(np.float64)
                               for w in self.model.trainable_weights])

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.updates = optimizer_updates(optimizer)
        self.rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        self.before = self._weights()

    def on_train_batch_end(self, batch, logs=None):
        self.step_ends.append(time.perf_counter())
        self.records.steps += 1
        loss = (logs or {}).get("loss")
        if optimizer_updates(self.model.optimizer) > self.updates:
            self.records.add_update(self.updates, self.epoch + 1, self.rate,
                                    float(loss) if loss is not None else None,
                                    float(np.linalg.norm(self._weights() - self.before)))
        if self.diverged is None and loss is not None and not math.isfinite(float(loss)):
            self.diverged = {"epoch": self.epoch + 1, "step": batch + 1, "loss": str(float(loss))}
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        logs = logs or {}
        last = self.step_ends[-1] if self.step_ends else now
        compile_s = 0.0
        if epoch == self.first_epoch and len(self.step_ends) > 1:
            first = self.step_ends[0] - self.t_epoch
            typical = (last - self.step_ends[0]) / (len(self.step_ends) - 1)
            compile_s = max(first - typical, 0.0)
        self.records.end_epoch(epoch + 1, logs.get("loss"), logs.get("accuracy"),
                               logs.get("val_loss"), logs.get("val_accuracy"),
                               epoch_times(self.t_epoch, last, now, compile_s))
        if self.diverged is None:  # never save a diverged state
            self.records.save(self.model, epoch + 1)


def train(cfg: RunConfig, *, overwrite: bool = False, verbose: int | str = "auto",
          log=print, checked: Preflight | None = None) -> RunResult:
    """Train one configuration (or resume it) and write its records (see module docstring).

    ``overwrite``: replace a run already in the folder instead of resuming it (or
    refusing a complete or different one); ``checked``: :func:`preflight` of
    ``cfg`` when the caller already ran it (the CLI does, before Keras is imported).

    Raises:
        InputError: bad output folder or data, before anything is written.
        RunError: the run failed or diverged; its records and last checkpoint
            stay in ``RunError.run_dir``, and a new start resumes from there.
    """
    checked = checked or preflight(cfg, overwrite=overwrite, log=log)
    if os.environ.get(DIE_WITH_PARENT):  # a Dask task's kernel: never outlive the task
        die_with_parent()
    try:
        if cfg.pipeline == "device":  # the epoch programs on the JAX device: their own loop
            from swin_gao_lib.training.side_by_side import train_side_by_side

            return train_side_by_side([cfg], verbose=verbose, log=log, checked=[checked],
                                      raise_errors=True)[0]
        return _train(cfg, checked, verbose=verbose, log=log)
    except OSError as exc:  # before training began (the lock, the config): one line too
        raise RunError(f"cannot write {exc.filename or checked.folder.path}: "
                       f"{exc.strerror or exc}; nothing was trained; free space or make the "
                       "folder writable, then run the same command again",
                       str(checked.folder.path)) from None


def _train(cfg: RunConfig, checked: Preflight, *, verbose: int | str, log) -> RunResult:
    records = RunRecords(cfg, checked, resume_state(checked))
    initial_epoch = records.first_epoch
    data = make_datasets(cfg, splits=checked.splits, first_epoch=initial_epoch)
    keras.utils.set_random_seed(cfg.seed)
    network = build_swin(cfg)
    model = build_trainer(cfg, network, planned_updates(cfg, data.steps_per_epoch))
    checked.check_checkpoint_room(model)  # the last input check: nothing is written before it
    with checked.folder.lock():  # one writer per run folder
        return _fit(cfg, checked, records, data, network, model, verbose=verbose, log=log)


def _fit(cfg: RunConfig, checked: Preflight, records: RunRecords, data: Any,
         network: keras.Model, model: keras.Model, *, verbose: int | str, log) -> RunResult:
    records.open()
    initial_epoch = records.first_epoch
    recorder = Recorder(records)
    memory = PeakMemory()
    try:
        if records.state is not None:
            records.restore(model, log)
        elif checked.action == "resume":
            log(f"resuming {records.folder.name}: no epoch had finished, starting at epoch 1")
        memory.reset()
        t0 = time.perf_counter()
        model.fit(data.train, validation_data=data.validation, epochs=cfg.epochs,
                  initial_epoch=initial_epoch, steps_per_epoch=data.steps_per_epoch,
                  verbose=verbose, shuffle=False,  # the pipeline orders the data (by seed, epoch)
                  callbacks=[recorder])
        fit_s = time.perf_counter() - t0
        if recorder.diverged is not None:
            raise Diverged(recorder.diverged)
        test = model.evaluate(data.test, verbose=0, return_dict=True)
        # The history's train accuracy is a running mean with dropout and augmentation
        # on; the train-test gap needs the final model scored on its train images.
        train_eval = model.evaluate(data.train_eval, verbose=0, return_dict=True)
        metrics = records.metrics(test=test, train_eval=train_eval, fit_s=fit_s, model=model,
                                  network=network, memory=memory.describe())
        records.finish(metrics, log)
    except BaseException as exc:
        error = records.fail(exc)
        if isinstance(exc, KeyboardInterrupt):
            log(f"interrupted; partial outputs kept in {records.folder.path}; run the same "
                "command again to resume")
            raise
        raise error from error.__cause__
    return RunResult(cfg, records.folder.path, records.rows, metrics, network)
