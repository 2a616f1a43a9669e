"""One row of ``history.csv`` per epoch, built here for both training loops; older rows read.

``loss`` and ``running_accuracy`` are the epoch's running means over its
training batches (dropout on, weights changing: not the final model's train
accuracy, which is ``metrics.json``'s ``train_eval_accuracy``). Older records
call the running mean ``accuracy``: :func:`current_rows` and
:func:`current_columns` read them under the new name. Columns: docs/records.md.
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
