"""Checkpoints at the end of every epoch, so an interrupted run resumes where it stopped.

A run folder's ``checkpoint/`` holds the state after the last finished epoch:

* ``epoch-NNNNN.variables.npz`` — every variable of the model, in order: the
  weights, the state of every ``SeedGenerator`` (dropout, attention dropout,
  drop path), and the optimizer's (its iteration counter, learning rate,
  moments, and in optimizer mode the gradient accumulators);
* ``state.json`` — written last, and atomically: the epoch the file belongs
  to, the history rows so far, the train steps taken, how often the run was
  resumed. It is the commit point: a crash or a failed write while the file
  above is written leaves it pointing at the previous epoch's file, which is
  deleted only after it moved on.

Why not Keras's weights file. ``model.save_weights`` writes through h5py
straight to the disk, and on a full disk h5py can crash the process (a
segfault) instead of raising; it also leaves out the seed generators, which
needed a second file. Here the whole state is serialised in memory first and
written with one ordinary write to a temporary name, flushed and renamed
(:func:`swin_gao_lib.files.atomic_write_bytes`): a full or read-only disk is
a Python ``OSError`` naming the file, the temporary file is removed, and the
previous checkpoint stays whole. Keras's own weights file saves the same
variables in the same order (it stores them by index), so the restored state
is the same; checkpoints written by earlier versions of the kit (a
``.weights.h5`` and a ``.rng.npz``) are still restored.

The data order needs no file: epoch ``e``'s order and crops are stateless
draws keyed by ``(seed, e)`` (:func:`swin_gao_lib.data.pipeline.train_pipeline`),
so the resumed run builds its pipeline from the saved epoch on.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np

from swin_gao_lib.errors import RunError
from swin_gao_lib.files import atomic_write_bytes, write_json
from swin_gao_lib.records import CHECKPOINT_FILE
from swin_gao_lib.records.history import current_rows

STATE = "state.json"


def _random_state_variables(model: keras.Model) -> list:
    """Variables Keras's weights file does not hold: the seed generators' states."""
    return list(model.non_trainable_variables)


def _variables(model: keras.Model) -> list:
    """Every variable a checkpoint holds, in a fixed order: the model's, then the optimizer's."""
    return list(model.variables) + list(model.optimizer.variables)


#: The npz format's headers per stored array (zip entry, central directory, npy header).
ARRAY_OVERHEAD = 512


def checkpoint_bytes(model: keras.Model) -> int:
    """An upper bound of the size of one variables file of the built trainer ``model``."""
    variables = _variables(model)
    data = sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)
    return data + ARRAY_OVERHEAD * len(variables)


class Checkpoint:
    """The ``checkpoint/`` folder of one run."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    @staticmethod
    def file_name(epoch: int) -> str:
        return f"epoch-{epoch:05d}.variables.npz"

    def save(self, model: keras.Model, epoch: int, extra: dict[str, Any]) -> None:
        """Save the state after ``epoch`` finished epochs (the variables, then ``state.json``).

        Raises:
            OSError: the disk is full or the folder cannot be written; the
                checkpoint of the epoch before is kept whole, and no file of this
                epoch is left behind.
        """
        buffer = io.BytesIO()
        np.savez(buffer, *[keras.ops.convert_to_numpy(v) for v in _variables(model)])
        name = self.file_name(epoch)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.folder / name, buffer.getvalue())
            write_json(self.folder / STATE, {"epoch": epoch, "variables": name, **extra})
        except OSError:
            if self._committed() != name:  # state.json still names the epoch before
                try:
                    (self.folder / name).unlink(missing_ok=True)
                except OSError:
                    pass
            raise
        for old in self.folder.iterdir():  # earlier epochs' files, now superseded
            if old.name not in (name, STATE) and CHECKPOINT_FILE.fullmatch(old.name):
                try:
                    old.unlink()
                except OSError:  # a read-only folder: they are never read again
                    pass

    def saved_epoch(self) -> int | None:
        """The epoch of the last committed checkpoint, or None (none, or unreadable)."""
        try:
            return int(json.loads((self.folder / STATE).read_text(encoding="utf-8"))["epoch"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _committed(self) -> str | None:
        """The variables file ``state.json`` names now, if it can be read."""
        try:
            return json.loads((self.folder / STATE).read_text(encoding="utf-8")).get("variables")
        except (OSError, ValueError, AttributeError):
            return None

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when no epoch has finished yet.

        Its copy of the history rows comes with older column names renamed
        (:func:`swin_gao_lib.records.history.current_rows`), so a resumed older run
        writes ``history.csv`` in one schema whichever loop resumes it.
        """
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            names = ([state["variables"]] if "variables" in state
                     else [state["weights"], state["rng"]])  # written by an earlier kit
            files = [self.folder / n for n in names]
        except (ValueError, KeyError, TypeError) as exc:
            raise RunError(f"{path} is unreadable ({exc}); delete the checkpoint folder (or pass "
                           "--overwrite) to start the run again") from None
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise RunError(f"checkpoint {path} names missing files {missing}; delete the "
                           "checkpoint folder (or pass --overwrite) to start the run again")
        if "history" in state:
            state["history"] = current_rows(state["history"])
        return state

    def restore(self, model: keras.Model, state: dict[str, Any]) -> None:
        """Put ``model`` (as ``build_trainer`` returns it: every variable built, not yet
        trained) into the saved state."""
        if "variables" not in state:
            self._restore_keras_weights(model, state)
            return
        self._assign(_variables(model), state["variables"], "its variables")

    def _restore_keras_weights(self, model: keras.Model, state: dict[str, Any]) -> None:
        """A checkpoint of an earlier kit: Keras's weights file plus the seed generators."""
        model.load_weights(self.folder / state["weights"])
        self._assign(_random_state_variables(model), state["rng"], "random-state variables")

    def _assign(self, variables: list, file: str, what: str) -> None:
        """Assign the arrays of ``file`` (an ``.npz`` in the checkpoint folder) in order."""
        with np.load(self.folder / file) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(variables) or any(
                tuple(v.shape) != a.shape for v, a in zip(variables, values)):
            raise RunError(f"checkpoint in {self.folder} does not fit this model ({what} "
                           "differ); pass --overwrite to start the run again")
        for variable, value in zip(variables, values):
            variable.assign(value)
