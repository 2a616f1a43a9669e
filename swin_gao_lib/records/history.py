"""One row of ``history.csv`` per epoch: its columns, built in one place, and older rows read.

Both training loops (Keras's ``fit`` in :mod:`swin_gao_lib.training.train`, the
device programs in :mod:`swin_gao_lib.training.device_runs`) build their rows with
:func:`history_row`, so the file has one schema:

* ``epoch`` (from 1);
* ``loss`` and ``running_accuracy``: the epoch's *running means* over its
  training batches, as Keras's progress bar shows them -- measured with dropout
  on, on augmented images, while the weights change. They are not the final
  model's train accuracy: ``metrics.json``'s ``train_eval_accuracy`` is that
  (the final model re-scored on the training images like the test images);
* ``val_loss`` and ``val_accuracy``: the model at the epoch's end on the
  validation images (empty without a validation split);
* ``epoch_s``, ``train_s``, ``compile_s``, ``train_s_steady``, ``val_s``: the
  epoch's wall time, its training part, the first step's compile time (first
  epoch of a process only), training without it, and validation;
* ``images_per_s``: training images per steady second.

Runs recorded before the running mean had its own name call it ``accuracy``;
:func:`current_rows` (for a checkpoint's copy of the rows, in
:meth:`swin_gao_lib.training.checkpoint.Checkpoint.load`) and
:func:`current_columns` (for ``history.csv``, in
:meth:`swin_gao_lib.records.RunFolder.read`) read those under the new name, so a
resumed older run writes one schema and older records report as before.
"""

from __future__ import annotations

from typing import Any, Mapping

#: The running mean of the training batches' accuracy within an epoch.
RUNNING_ACCURACY = "running_accuracy"
#: Column names of older records, and what they are called now.
RENAMED = {"accuracy": RUNNING_ACCURACY}
#: The times of an epoch, in seconds, that every row carries.
TIMES = ("epoch_s", "train_s", "compile_s", "train_s_steady", "val_s")


def history_row(epoch: int, loss: float | None, running_accuracy: float | None,
                val_loss: float | None, val_accuracy: float | None,
                times: Mapping[str, float], n_train: int) -> dict[str, Any]:
    """The row of ``history.csv`` for ``epoch`` (from 1); ``times`` holds :data:`TIMES`."""
    missing = [k for k in TIMES if k not in times]
    if missing:
        raise ValueError(f"history_row: times lacks {', '.join(missing)}")
    steady = times["train_s_steady"]
    return {"epoch": epoch, "loss": loss, RUNNING_ACCURACY: running_accuracy,
            "val_loss": val_loss, "val_accuracy": val_accuracy,
            **{k: times[k] for k in TIMES},
            "images_per_s": n_train / steady if steady > 0 else None}


def current_rows(rows: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """History rows (a checkpoint's copy) with older column names renamed."""
    return [{RENAMED.get(k, k): v for k, v in r.items()} for r in rows]


def current_columns(history: Any) -> Any:
    """A ``history.csv`` DataFrame with older column names renamed."""
    return history.rename(columns=RENAMED)
