"""The runs of one device program (``pipeline: device``): their slots, records and segments.

A program trains one run, or several seeds of one configuration side by side,
one slot each on a leading seed axis
(:mod:`swin_gao_lib.training.side_by_side`). This module holds what the loop
keeps per run: the run itself (:class:`GroupRun`), which slots the program
has (:func:`program_slots`), and what an epoch writes (:func:`record_epoch`:
the history row, the ``lr.csv`` rows, the checkpoint).

Why the slots outlive a kill. XLA batches the seeds' matrix products, and
the rounding of a batched product can differ from one seed's alone (and, on a
GPU, with the batch's size), so a run's numbers depend on the shape of the
program it trains in. A run that trained side by side records its program's
seeds in its checkpoint (``program_seeds``), and when it resumes it trains in
a program of those seeds again, in the same order, whatever else happened:
seeds whose checkpoints stand at an earlier epoch catch up while the others
wait in their slots (their state is kept as it was), and the slot of a seed
not resumed here (finished, or not asked for) is held by a stand-in, a copy
of another run whose outputs are dropped. Each slot's arithmetic depends only
on its own values, so every seed ends bit for bit as in the uninterrupted
program.

What a run trained with whom is its ``side_by_side`` record: the segments of
its epochs that ran on the seed axis, each ``{"epochs": [first, last], "seeds":
[...]}`` with the seeds whose epochs they were. It is kept in the checkpoint,
so it spans resumes, and lands in ``metrics.json``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import keras
import numpy as np

from swin_gao_lib.config import RunConfig
from swin_gao_lib.errors import RunError
from swin_gao_lib.training.checkpoint import Checkpoint
from swin_gao_lib.training.epoch_program import assign_state
from swin_gao_lib.training.outcome import RunResult, run_error
from swin_gao_lib.training.preflight import Preflight
from swin_gao_lib.records.history import RUNNING_ACCURACY, history_row


@dataclasses.dataclass
class GroupRun:
    """One slot of a program: a run, its folder and what it has recorded so far.

    A *stand-in* (``stand_in``) holds the slot of seed ``slot_seed``, which is
    not trained here, with a copy of another run's config, data and state; it
    records nothing.
    """

    cfg: RunConfig
    checked: Preflight
    state: dict[str, Any] | None
    stand_in: bool = False
    slot_seed: int | None = None
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    steps: int = 0
    resumed_at: list[int] = dataclasses.field(default_factory=list)
    segments: list[dict[str, list[int]]] = dataclasses.field(default_factory=list)
    diverged: dict[str, Any] | None = None
    outcome: RunResult | RunError | None = None

    @property
    def seed(self) -> int:
        """The seed of the slot (a stand-in's is the absent run's)."""
        return self.slot_seed if self.stand_in else self.cfg.seed

    @property
    def first_epoch(self) -> int:
        """The epoch this process starts the run at: its checkpoint's, or 0."""
        return self.state["epoch"] if self.state else 0

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
    for each seed not among ``runs``. Otherwise (a new group, one run alone, a
    group planned differently since) the slots are ``runs`` as given.
    """
    recorded = {tuple(r.state.get("program_seeds") or ()) for r in runs if r.state is not None}
    by_seed = {r.cfg.seed: r for r in runs}
    if len(recorded) != 1:
        return runs
    seeds = list(recorded.pop())
    if not seeds or not set(by_seed) <= set(seeds):
        return runs
    donor = runs[0]
    return [by_seed.get(s) or GroupRun(donor.cfg, donor.checked, donor.state, stand_in=True,
                                       slot_seed=s) for s in seeds]


def start_records(run: GroupRun) -> None:
    """Open the run's folder (a new run, or the unfinished one it resumes)."""
    folder = run.checked.folder
    if run.checked.action == "resume":
        folder.reopen(run.cfg)
    else:
        folder.start(run.cfg)
    if run.state is not None:
        run.rows, run.steps = list(run.state["history"]), run.state["steps"]
        run.resumed_at = list(run.state.get("resumed_at_epochs", [])) + [run.state["epoch"]]
        run.segments = [{"epochs": list(s["epochs"]), "seeds": list(s["seeds"])}
                        for s in run.state.get("side_by_side", [])]


def add_segment(segments: list[dict[str, list[int]]], epoch: int, seeds: list[int]) -> None:
    """Record that epoch ``epoch`` (from 1) trained with ``seeds``: the last segment grows,
    or a new one starts."""
    last = segments[-1] if segments else None
    if last is not None and last["seeds"] == seeds and last["epochs"][1] == epoch - 1:
        last["epochs"][1] = epoch
    else:
        segments.append({"epochs": [epoch, epoch], "seeds": list(seeds)})


def record_epoch(run: GroupRun, model: keras.Model, epoch: int, per_step: dict,
                 val: dict | None, times: dict[str, float], n_train: int, state: Any,
                 together: list[int] | None, program_seeds: list[int] | None) -> None:
    """The epoch's history row, ``lr.csv`` rows and checkpoint, as ``fit``'s callbacks write.

    ``together``: the seeds whose epoch this was, side by side (None alone);
    ``program_seeds``: the program's slots, kept in the checkpoint.

    Raises:
        OSError: a record of this run could not be written (its earlier
            checkpoint is kept).
    """
    loss = np.asarray(per_step["loss"], np.float64)
    bad = np.flatnonzero(~np.isfinite(loss))
    last = int(bad[0]) if bad.size else len(loss) - 1  # fit stops after a non-finite step
    for k in range(last + 1):
        run.steps += 1
        if per_step["updated"][k]:
            run.rates.append({"update": int(per_step["updates"][k]), "epoch": epoch + 1,
                              "step": run.steps, "learning_rate": float(per_step["rate"][k]),
                              "loss": float(per_step["loss"][k]),
                              "update_norm": float(per_step["update_norm"][k])})
    run.rows.append(history_row(
        epoch + 1, float(per_step["loss"][last]), float(per_step["accuracy"][last]),
        None if val is None else float(val["loss"]),
        None if val is None else float(val["accuracy"]), times, n_train))
    if together is not None:
        add_segment(run.segments, epoch + 1, together)
    folder = run.checked.folder
    folder.write_history(run.rows)
    folder.write_learning_rates(run.rates)
    if bad.size:  # never save a diverged state
        run.diverged = {"epoch": epoch + 1, "step": last + 1, "loss": str(float(loss[last]))}
        return
    assign_state(model, state)
    extra: dict[str, Any] = {"history": run.rows, "steps": run.steps,
                             "resumed_at_epochs": run.resumed_at}
    if program_seeds is not None:
        extra.update(side_by_side=run.segments, program_seeds=program_seeds)
    Checkpoint(folder.checkpoint).save(model, epoch + 1, extra)


def fail(run: GroupRun, exc: BaseException) -> RunError:
    """Record ``exc`` as the run's failure (call inside its ``except`` block)."""
    folder = run.checked.folder
    return run_error(folder, exc, run.rows, Checkpoint(folder.checkpoint).saved_epoch())


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
