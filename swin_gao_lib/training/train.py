"""One training run: data, model, accumulating train step, and its records.

``train(config)`` writes the run folder ``<output_dir>/<run_name>/``
(:mod:`swin_gao_lib.records` owns its files): the resolved config first, the
history, the learning rate of every update (``lr.csv``) and a checkpoint after every epoch (:mod:`swin_gao_lib.training.checkpoint`),
and the metrics last, on success only (or a failure record instead).

Resume. When the folder holds an unfinished run of the same resolved config
(killed, kernel died, Colab disconnected), ``train`` continues it from its last
finished epoch instead of starting over: the weights, the optimizer state, the
random state of every layer and the data order are restored, so the result is
the same as that of an uninterrupted run, bit for bit on the same machine. The
epochs before the interruption keep their recorded times; the metrics say how
often and where the run was resumed.

A loss that becomes NaN or infinite stops the run at once: ``failure.json``
names the epoch and step, and :class:`RunError` is raised.

Timing: each epoch's training wall time is split from its validation time.
The first train step in each process also traces and compiles the step
function; ``compile_s`` estimates that cost as the first step's time minus the
mean of the epoch's other steps, and ``train_s_steady`` excludes it. Images/s
is computed from the steady times.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, NamedTuple

import keras
import numpy as np

from swin_gao_lib.training.accumulation import build_trainer, optimizer_updates, planned_updates
from swin_gao_lib.training.checkpoint import Checkpoint
from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.pipeline import make_datasets
from swin_gao_lib.errors import RunError
from swin_gao_lib.runtime.machine import DIE_WITH_PARENT, PeakMemory, die_with_parent
from swin_gao_lib.model import build_swin
from swin_gao_lib.training.outcome import (Diverged as _Diverged, RunResult, run_error,
                                           run_metrics, summary as _summary, weights_digest)
from swin_gao_lib.training.preflight import Preflight, preflight
from swin_gao_lib.records import RunFolder
from swin_gao_lib.records.history import history_row

__all__ = ["RunResult", "train", "weights_digest"]


class EpochRecorder(keras.callbacks.Callback):
    """Record per-epoch metrics and times; rewrite ``history.csv`` after every epoch."""

    def __init__(self, folder: RunFolder, n_train: int, rows: list[dict[str, Any]] | None = None,
                 steps: int = 0):
        super().__init__()
        self.folder, self.n_train = folder, n_train
        self.rows: list[dict[str, Any]] = list(rows or [])
        # Train steps taken (optimizer mode applies one micro-step per step), all processes.
        self.steps = steps
        self.first_epoch = len(self.rows)  # the first epoch this process runs (compiles)

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
        if epoch == self.first_epoch and len(self.step_ends) > 1:
            first = self.step_ends[0] - self.t_epoch
            typical = (last - self.step_ends[0]) / (len(self.step_ends) - 1)
            compile_s = max(first - typical, 0.0)
        times = {"epoch_s": now - self.t_epoch, "train_s": train_s, "compile_s": compile_s,
                 "train_s_steady": train_s - compile_s, "val_s": now - last}
        self.rows.append(history_row(epoch + 1, logs.get("loss"), logs.get("accuracy"),
                                     logs.get("val_loss"), logs.get("val_accuracy"), times,
                                     self.n_train))
        self.folder.write_history(self.rows)


class LearningRateRecorder(keras.callbacks.Callback):
    """Record every optimizer update in ``lr.csv``; rewrite it every epoch.

    Per update: the learning rate it applied, the training ``loss`` Keras
    reports after it (the epoch's running mean so far, as the progress bar
    shows it), and ``update_norm``, the L2 norm of the change the update made
    to the trainable weights -- cheap (two copies of the weights per step) and
    what tells a summed gradient's N x step from Adam's scale invariance, one
    update at a time (the deterministic arm).

    Before each train step the optimizer's ``learning_rate`` is what that step
    will apply, should it update (Keras evaluates a schedule at its step
    counter, which the step increments afterwards); the row is kept when the
    step did update (the update count rose), so optimizer mode records one
    row per N micro-steps, at the micro-step where the update happened.
    """

    def __init__(self, folder: RunFolder, rows: list[dict[str, Any]] | None = None,
                 steps: int = 0):
        super().__init__()
        self.folder, self.rows, self.steps = folder, list(rows or []), steps

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _weights(self) -> np.ndarray:
        return np.concatenate([np.ravel(keras.ops.convert_to_numpy(w)).astype(np.float64)
                               for w in self.model.trainable_weights])

    def on_train_batch_begin(self, batch, logs=None):
        optimizer = self.model.optimizer
        self.updates = optimizer_updates(optimizer)
        self.rate = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        self.before = self._weights()

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if optimizer_updates(self.model.optimizer) > self.updates:
            loss = (logs or {}).get("loss")
            self.rows.append({"update": self.updates, "epoch": self.epoch + 1,
                              "step": self.steps, "learning_rate": self.rate,
                              "loss": float(loss) if loss is not None else None,
                              "update_norm": float(np.linalg.norm(self._weights() - self.before))})

    def on_epoch_end(self, epoch, logs=None):
        self.folder.write_learning_rates(self.rows)


class DivergenceGuard(keras.callbacks.Callback):
    """Stop training at the first step whose loss is NaN or infinite, and say where."""

    def __init__(self):
        super().__init__()
        self.where: dict[str, Any] | None = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if self.where is None and loss is not None and not math.isfinite(float(loss)):
            self.where = {"epoch": self.epoch + 1, "step": batch + 1, "loss": str(float(loss))}
            self.model.stop_training = True


class EpochCheckpoint(keras.callbacks.Callback):
    """Save the run's state after every finished epoch (after the recorder's row)."""

    def __init__(self, checkpoint: Checkpoint, recorder: EpochRecorder, guard: DivergenceGuard,
                 resumed_at: list[int]):
        super().__init__()
        self.checkpoint, self.recorder, self.guard = checkpoint, recorder, guard
        self.resumed_at = resumed_at

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.where is not None:  # never save a diverged state
            return
        self.checkpoint.save(self.model, epoch + 1, {
            "history": self.recorder.rows, "steps": self.recorder.steps,
            "resumed_at_epochs": self.resumed_at,
        })


def train(cfg: RunConfig, *, overwrite: bool = False, verbose: int | str = "auto",
          log=print, checked: Preflight | None = None) -> RunResult:
    """Train one configuration (or resume it) and write its records (see module docstring).

    Args:
        overwrite: replace the records of a run already in the folder instead
            of resuming it (or refusing a complete or different one).
        checked: the result of :func:`swin_gao_lib.training.preflight.preflight` for
            ``cfg`` when the caller already ran it (the CLI does, before the
            backend is imported).

    Raises:
        InputError: bad output folder or data, before anything is written.
        RunError: the run failed or diverged; ``failure.json``, the finished
            epochs' ``history.csv`` and the last checkpoint stay in
            ``RunError.run_dir``, and a new start resumes from there.
    """
    checked = checked or preflight(cfg, overwrite=overwrite, log=log)
    if os.environ.get(DIE_WITH_PARENT):  # a Dask task's kernel: never outlive the task
        die_with_parent()
    try:
        if cfg.pipeline == "device":  # the epoch programs on the JAX device: their own loop
            from swin_gao_lib.training.side_by_side import train_side_by_side

            return train_side_by_side([cfg], verbose=verbose, log=log, checked=[checked],
                                      raise_errors=True)[0]
        start = _build(cfg, checked)
        with checked.folder.lock():  # one writer per run folder
            return _train(cfg, checked, start, verbose=verbose, log=log)
    except OSError as exc:  # before training began (the lock, the config): one line too
        raise RunError(f"cannot write {exc.filename or checked.folder.path}: "
                       f"{exc.strerror or exc}; nothing was trained; free space or make the "
                       "folder writable, then run the same command again",
                       str(checked.folder.path)) from None


class _Start(NamedTuple):
    """What a run starts from, made before anything is written."""

    state: dict | None  # the checkpoint's state.json of a resumed run
    data: Any  # swin_gao_lib.data.pipeline's datasets
    network: keras.Model
    model: keras.Model


def _build(cfg: RunConfig, checked: Preflight) -> _Start:
    """The data and the model, then the last input check: room for the checkpoints."""
    state = Checkpoint(checked.folder.checkpoint).load() if checked.action == "resume" else None
    data = make_datasets(cfg, splits=checked.splits,
                         first_epoch=state["epoch"] if state is not None else 0)
    keras.utils.set_random_seed(cfg.seed)
    network = build_swin(cfg)
    model = build_trainer(cfg, network, planned_updates(cfg, data.steps_per_epoch))
    checked.check_checkpoint_room(model)
    return _Start(state, data, network, model)


def _train(cfg: RunConfig, checked: Preflight, start: _Start, *, verbose: int | str,
           log) -> RunResult:
    folder = checked.folder
    run_dir = folder.path
    checkpoint = Checkpoint(folder.checkpoint)
    state, data, network, model = start
    initial_epoch = state["epoch"] if state is not None else 0
    if checked.action == "resume":
        folder.reopen(cfg)
    else:
        folder.start(cfg)

    n_train = len(data.splits.y_train)
    resumed_at = list(state.get("resumed_at_epochs", [])) if state else []
    recorder = EpochRecorder(folder, n_train, rows=state["history"] if state else None,
                             steps=state["steps"] if state else 0)
    guard = DivergenceGuard()
    memory = PeakMemory()
    try:
        rates = LearningRateRecorder(folder, steps=recorder.steps)
        if state is not None:
            checkpoint.restore(model, state)
            rates.rows = folder.trim_to_checkpoint(recorder.rows,
                                                   optimizer_updates(model.optimizer))
            resumed_at.append(initial_epoch)
            log(f"resuming {run_dir.name} after epoch {initial_epoch} of {cfg.epochs}")
        elif checked.action == "resume":
            log(f"resuming {run_dir.name}: no epoch had finished, starting at epoch 1")
        memory.reset()
        t0 = time.perf_counter()
        model.fit(data.train, validation_data=data.validation, epochs=cfg.epochs,
                  initial_epoch=initial_epoch, steps_per_epoch=data.steps_per_epoch,
                  verbose=verbose, shuffle=False,  # the pipeline orders the data (by seed, epoch)
                  callbacks=[recorder, rates, guard,
                             EpochCheckpoint(checkpoint, recorder, guard, resumed_at)])
        # Earlier processes' fit time: their epochs' recorded wall times.
        fit_s = time.perf_counter() - t0 + sum(r["epoch_s"] for r in recorder.rows[:initial_epoch])
        if guard.where is not None:
            raise _Diverged(guard.where)
        test = model.evaluate(data.test, verbose=0, return_dict=True)
        # The history's train accuracy is a running mean over an epoch with dropout
        # and augmentation on; the train-test gap that tests "overfitting" needs the
        # final model scored on its train images the way test images are scored.
        train_eval = model.evaluate(data.train_eval, verbose=0, return_dict=True)
        metrics = run_metrics(
            cfg, run_dir, test=test, train_eval=train_eval,
            run_summary=_summary(recorder.rows, n_train), fit_s=fit_s,
            updates=optimizer_updates(model.optimizer), micro_steps=recorder.steps,
            splits=data.splits, network=network, resumed_at=resumed_at,
            memory=memory.describe())
        folder.write_metrics(metrics)
    except BaseException as exc:
        error = run_error(folder, exc, recorder.rows, checkpoint.saved_epoch())
        if isinstance(exc, KeyboardInterrupt):
            log(f"interrupted; partial outputs kept in {run_dir}; run the same command again "
                "to resume")
            raise
        raise error from error.__cause__
    try:
        folder.clear_checkpoint()
    except OSError:  # the run is complete: a checkpoint left behind only takes space
        pass
    log(f"done: test accuracy {metrics['test_accuracy']:.4f}, "
        f"{metrics['optimizer_updates']} optimizer updates, records in {run_dir}")
    return RunResult(cfg, run_dir, recorder.rows, metrics, network)

