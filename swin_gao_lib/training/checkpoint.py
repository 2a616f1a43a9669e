"""Checkpoints at the end of every epoch, so an interrupted run resumes where it stopped.

A run folder's ``checkpoint/`` holds the state after the last finished epoch:

* ``epoch-NNNNN.weights.h5`` — Keras's own weights file (``model.save_weights``):
  the network's weights **and the optimizer's state** (its iteration counter,
  learning rate, moments, and in optimizer mode the gradient accumulators);
* ``epoch-NNNNN.rng.npz`` — what Keras's weights file leaves out: the state of
  every ``SeedGenerator`` (the model's non-trainable variables: dropout,
  attention dropout, drop path), so the next epoch draws the same masks;
* ``state.json`` — written last, and atomically: the epoch the files belong
  to, the history rows so far, the train steps taken, how often the run was
  resumed. It is the commit point: a crash while the two files above are
  written leaves it pointing at the previous epoch's files, which are deleted
  only after it moved on.

The data order needs no file: epoch ``e``'s order and crops are stateless
draws keyed by ``(seed, e)`` (:func:`swin_gao_lib.data.pipeline.train_pipeline`),
so the resumed run builds its pipeline from the saved epoch on. ``keras.callbacks.BackupAndRestore`` covers the weights and the
epoch, but writes them in place and as two separate files, and not the seed
generators; this module uses the same Keras weights file and adds the rest.
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

STATE = "state.json"


def _random_state_variables(model: keras.Model) -> list:
    """Variables the weights file does not hold: the seed generators' states."""
    return list(model.non_trainable_variables)


class Checkpoint:
    """The ``checkpoint/`` folder of one run."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _names(self, epoch: int) -> tuple[str, str]:
        return f"epoch-{epoch:05d}.weights.h5", f"epoch-{epoch:05d}.rng.npz"

    def save(self, model: keras.Model, epoch: int, extra: dict[str, Any]) -> None:
        """Save the state after ``epoch`` finished epochs (files first, then ``state.json``)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        weights, rng = self._names(epoch)
        tmp = self.folder / f".tmp-{weights}"  # Keras wants the .weights.h5 ending
        model.save_weights(tmp)
        with open(tmp, "rb+") as f:  # on disk before state.json points at it
            os.fsync(f.fileno())
        os.replace(tmp, self.folder / weights)
        states = io.BytesIO()
        np.savez(states, *[keras.ops.convert_to_numpy(v) for v in _random_state_variables(model)])
        atomic_write_bytes(self.folder / rng, states.getvalue())
        write_json(self.folder / STATE, {"epoch": epoch, "weights": weights, "rng": rng, **extra})
        for old in self.folder.iterdir():  # earlier epochs' files, now superseded
            if old.name not in (weights, rng, STATE) and CHECKPOINT_FILE.fullmatch(old.name):
                old.unlink()

    def load(self) -> dict[str, Any] | None:
        """The saved state, or None when no epoch has finished yet."""
        path = self.folder / STATE
        if not path.is_file():
            return None
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
            files = [self.folder / state["weights"], self.folder / state["rng"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise RunError(f"{path} is unreadable ({exc}); delete the checkpoint folder (or pass "
                           "--overwrite) to start the run again") from None
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise RunError(f"checkpoint {path} names missing files {missing}; delete the "
                           "checkpoint folder (or pass --overwrite) to start the run again")
        return state

    def restore(self, model: keras.Model, state: dict[str, Any], input_shape) -> None:
        """Put ``model`` (compiled, not yet trained) into the saved state."""
        # Build the model and its optimizer so their variables exist; an inference call
        # draws no random numbers (dropout and drop path are off at inference).
        model(np.zeros((1, *input_shape), "float32"), training=False)
        model.optimizer.build(model.trainable_variables)
        model.load_weights(self.folder / state["weights"])
        variables = _random_state_variables(model)
        with np.load(self.folder / state["rng"]) as saved:
            values = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        if len(values) != len(variables) or any(
                tuple(v.shape) != a.shape for v, a in zip(variables, values)):
            raise RunError(f"checkpoint in {self.folder} does not fit this model (random-state "
                           "variables differ); pass --overwrite to start the run again")
        for variable, value in zip(variables, values):
            variable.assign(value)
