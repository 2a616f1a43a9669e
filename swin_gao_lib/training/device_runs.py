"""The runs of one device program (``pipeline: device``): their slots and an epoch's records.

A program trains one run, or several seeds of one configuration side by side,
one slot each on a leading seed axis (:mod:`swin_gao_lib.training.side_by_side`).

Why slots outlive a kill: XLA batches the seeds' matrix products, and their
rounding can differ with the program's shape, so a run that trained side by
side records its program's seeds (``program_seeds``) in its checkpoint and
resumes in a program of those seeds, in that order. Seeds whose checkpoints
stand at an earlier epoch catch up while the others wait (their state kept),
and the slot of a seed not resumed here is held by a stand-in whose outputs
are dropped. Each slot's arithmetic depends only on its own values, so every
seed ends bit for bit as in the uninterrupted program.

A run's ``side_by_side`` record lists the segments of its epochs trained on
the seed axis, ``{"epochs": [first, last], "seeds": [...]}``; it spans resumes
(it is kept in the checkpoint) and lands in ``metrics.json``.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from swin_gao_lib.config import RunConfig
from swin_gao_lib.errors import RunError
from swin_gao_lib.records.history import RUNNING_ACCURACY
from swin_gao_lib.training.epoch_program import assign_state
from swin_gao_lib.training.outcome import RunRecords, RunResult
from swin_gao_lib.training.preflight import Preflight


class GroupRun(RunRecords):
    """One slot of a program: a run and its records.

    A stand-in (``slot_seed`` given) holds the slot of that seed, not trained
    here, with another run's config, data and state; it records nothing.
    """

    def __init__(self, cfg: RunConfig, checked: Preflight, state: dict[str, Any] | None,
                 slot_seed: int | None = None):
        super().__init__(cfg, checked, state)
        self.stand_in = slot_seed is not None
        self.seed = cfg.seed if slot_seed is None else slot_seed
        self.diverged: dict[str, Any] | None = None
        self.outcome: RunResult | RunError | None = None

    @property
    def alive(self) -> bool:
        """A run still to be trained or finished here (not a stand-in, diverged or ended)."""
        return not self.stand_in and self.diverged is None and self.outcome is None

    def trains_at(self, epoch: int) -> bool:
        return self.alive and self.first_epoch <= epoch

    def waits_at(self, epoch: int) -> bool:
        """Whether the run's checkpoint is past ``epoch``: its slot must keep its state."""
        return not self.stand_in and self.first_epoch > epoch


def program_slots(runs: list[GroupRun]) -> list[GroupRun]:
    """The slots of the program that trains ``runs``: the program they last trained in.

    When every resumed run names the same ``program_seeds`` and those hold all
    of ``runs``, the program has those seeds, in that order, with a stand-in
    for each seed not among ``runs``; otherwise the slots are ``runs``.
    """
    recorded = {tuple(r.state.get("program_seeds") or ()) for r in runs if r.state is not None}
    by_seed = {r.cfg.seed: r for r in runs}
    if len(recorded) != 1:
        return runs
    seeds = list(recorded.pop())
    if not seeds or not set(by_seed) <= set(seeds):
        return runs
    donor = runs[0]
    return [by_seed.get(s) or GroupRun(donor.cfg, donor.checked, donor.state, slot_seed=s)
            for s in seeds]


def add_segment(segments: list[dict[str, list[int]]], epoch: int, seeds: list[int]) -> None:
    """Epoch ``epoch`` (from 1) trained with ``seeds``: the last segment grows, or one starts."""
    last = segments[-1] if segments else None
    if last is not None and last["seeds"] == seeds and last["epochs"][1] == epoch - 1:
        last["epochs"][1] = epoch
    else:
        segments.append({"epochs": [epoch, epoch], "seeds": list(seeds)})


def record_epoch(run: GroupRun, model: keras.Model, epoch: int, per_step: dict,
                 val: dict | None, times: dict[str, float], state: Any,
                 together: list[int] | None, program_seeds: list[int] | None) -> None:
    """The epoch's history row, ``lr.csv`` rows and checkpoint, as ``fit``'s callbacks write.

    ``together``: the seeds whose epoch this was, side by side (None alone);
    ``program_seeds``: the program's slots, kept in the checkpoint.

    Raises:
        OSError: a record could not be written (the earlier checkpoint is kept).
    """
    loss = np.asarray(per_step["loss"], np.float64)
    bad = np.flatnonzero(~np.isfinite(loss))
    last = int(bad[0]) if bad.size else len(loss) - 1  # fit stops after a non-finite step
    for k in range(last + 1):
        run.steps += 1
        if per_step["updated"][k]:
            run.add_update(int(per_step["updates"][k]), epoch + 1, float(per_step["rate"][k]),
                           float(per_step["loss"][k]), float(per_step["update_norm"][k]))
    if together is not None:
        add_segment(run.segments, epoch + 1, together)
    run.end_epoch(epoch + 1, float(per_step["loss"][last]), float(per_step["accuracy"][last]),
                  None if val is None else float(val["loss"]),
                  None if val is None else float(val["accuracy"]), times)
    if bad.size:  # never save a diverged state
        run.diverged = {"epoch": epoch + 1, "step": last + 1, "loss": str(float(loss[last]))}
        return
    assign_state(model, state)
    run.save(model, epoch + 1, program_seeds)


def print_epoch(runs: list[GroupRun], epoch: int, epochs: int, times: dict,
                live: list[int]) -> None:
    """One line per epoch, as ``fit`` prints it; side by side, each value's range."""
    rows = [runs[i].rows[-1] for i in live]

    def span(key: str) -> str:
        vals = [r[key] for r in rows if r[key] is not None]
        if not vals:
            return "-"
        lo, hi = min(vals), max(vals)
        return f"{lo:.4f}" if lo == hi else f"{lo:.4f}..{hi:.4f}"

    who = f" - {len(live)} seeds side by side" if len(runs) > 1 else ""
    compile_note = f" ({times['compile_s']:.1f}s compile)" if times["compile_s"] else ""
    print(f"Epoch {epoch + 1}/{epochs}{who} - {times['epoch_s']:.2f}s{compile_note} - loss: "
          f"{span('loss')} - accuracy: {span(RUNNING_ACCURACY)} - val_loss: {span('val_loss')} - "
          f"val_accuracy: {span('val_accuracy')}", flush=True)
