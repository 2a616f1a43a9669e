"""Training on the device (``pipeline: device``), one run or a configuration's seeds together.

:func:`train_side_by_side` trains runs that differ only in their seed as one
program: the epoch programs of :mod:`swin_gao_lib.training.epoch_program`,
``jax.vmap``-ed over the seeds' states, splits and data orders, one slot each
on a leading seed axis. Each run gets the folder and records a run trained
alone gets, and resumes like any run; one run alone is the same loop without
the seed axis. The host calls the device once per epoch and once per
evaluation; ``compile_s`` is the train program's measured compile time. Side
by side, every run records the group's times and peak memory, and its
``side_by_side`` record (in the checkpoint and ``metrics.json``) lists the
segments of its epochs on the seed axis: ``{"epochs": [first, last], "seeds": [...]}``.

Equality: alone, a device run is a pure function of its config. Side by side,
each seed matches the seed alone up to float32 rounding (``tests/test_device.py``
bounds it): XLA batches the seeds' matrix products, and their rounding can
differ with the program's shape. So a run records its program's seeds
(``program_seeds``) and resumes in a program of those seeds, in that order:
seeds whose checkpoints stand at an earlier epoch catch up while the others
wait (state kept), and a seed not resumed here is held by a stand-in whose
outputs are dropped; every seed ends bit for bit as in the uninterrupted program.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import keras
import numpy as np

from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.arrays import steps_per_epoch
from swin_gao_lib.data.device import DeviceSplits
from swin_gao_lib.errors import RunError
from swin_gao_lib.model import build_swin
from swin_gao_lib.records.history import RUNNING_ACCURACY
from swin_gao_lib.runtime.machine import PeakMemory
from swin_gao_lib.training.accumulation import build_trainer, planned_updates
from swin_gao_lib.training.epoch_program import EpochPrograms, assign_state, model_state, values
from swin_gao_lib.training.groups import check_group
from swin_gao_lib.training.outcome import (Diverged, RunRecords, RunResult, epoch_times,
                                           resume_state)
from swin_gao_lib.training.preflight import Preflight, preflight


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


def train_side_by_side(cfgs: list[RunConfig], *, overwrite: bool = False,
                       verbose: int | str = "auto", log=print,
                       checked: list[Preflight] | None = None,
                       raise_errors: bool = False) -> list[RunResult | RunError]:
    """Train ``cfgs`` (one configuration at several seeds) together on the JAX device.

    Every run is checked first (:func:`preflight`) and its folder locked for
    the whole group. Returns one entry per run, in order: its
    :class:`RunResult`, or the :class:`RunError` it failed with (its
    ``failure.json`` written); with ``raise_errors`` the first error is raised
    instead, after every run's records are written.

    Raises:
        InputError: bad input in any run, before anything is written.
    """
    check_group(cfgs)
    checked = checked or [preflight(c, overwrite=overwrite, log=log) for c in cfgs]
    runs = [GroupRun(c, k, resume_state(k)) for c, k in zip(cfgs, checked)]
    slots = program_slots(runs)
    first = next(r for r in slots if not r.stand_in)  # the program is built for its seed
    cfg = first.cfg
    keras.utils.set_random_seed(cfg.seed)
    network = build_swin(cfg)
    model = build_trainer(cfg, network, planned_updates(
        cfg, steps_per_epoch(first.n_train, cfg.fit_batch_size)))
    for k in checked:  # the last input check: nothing is written before it
        k.check_checkpoint_room(model)
    with contextlib.ExitStack() as locks:
        for run in runs:  # one writer per run folder
            locks.enter_context(run.folder.lock())
        _train_group(slots, network, model, verbose, log)
    results = [run.outcome for run in runs]
    errors = [r for r in results if isinstance(r, RunError)]
    if raise_errors and errors:
        raise errors[0]
    return results  # type: ignore[return-value]


def _stack(states: list, side: bool):
    """The group's state: one seed's values, or every seed's stacked on a leading axis."""
    import jax
    import jax.numpy as jnp

    if not side:
        return jax.tree_util.tree_map(jnp.asarray, states[0])
    return jax.tree_util.tree_map(lambda *a: jnp.stack(a), *states)


def _seed_of(tree: Any, i: int, side: bool) -> Any:
    import jax

    return jax.tree_util.tree_map(lambda a: a[i], tree) if side else tree


def _keep(new: Any, old: Any, waiting: list[bool]) -> Any:
    """``new`` with the slots of waiting runs put back to ``old`` (an exact select)."""
    import jax
    import jax.numpy as jnp

    mask = jnp.asarray(np.array(waiting))
    return jax.tree_util.tree_map(
        lambda n, o: jnp.where(mask.reshape((-1,) + (1,) * (n.ndim - 1)), o, n), new, old)


def _initial_state(run: GroupRun, model: keras.Model, fresh: Any, cfg: RunConfig, log) -> Any:
    """The run's state as it would be trained alone: restored, or new for its seed."""
    import jax

    if run.state is not None:
        run.restore(model, log)
        return jax.tree_util.tree_map(np.asarray, model_state(model))
    if run.cfg.seed == cfg.seed:  # the model was built for this seed
        return fresh
    keras.utils.set_random_seed(run.cfg.seed)
    net = build_swin(run.cfg)
    return (*(jax.tree_util.tree_map(np.asarray, values(vs))
              for vs in (net.trainable_variables, net.non_trainable_variables)), fresh[2])


def _train_group(slots: list[GroupRun], network: keras.Model, model: keras.Model, verbose,
                 log) -> None:
    """Train the runs of ``slots`` to their end; each run's outcome lands in ``run.outcome``."""
    import jax
    import jax.numpy as jnp

    real = [r for r in slots if not r.stand_in]
    cfg, side = real[0].cfg, len(slots) > 1
    program_seeds = [r.seed for r in slots] if side else None
    for run in real:
        run.open()
    n_train = real[0].n_train
    memory = PeakMemory()
    try:
        fresh = jax.tree_util.tree_map(np.asarray, model_state(model))
        states = {id(r): _initial_state(r, model, fresh, cfg, log) for r in real}
        state = _stack([states[id(r if not r.stand_in else real[0])] for r in slots], side)
        data = DeviceSplits.upload([r.checked.splits for r in slots] if side
                                   else slots[0].checked.splits,
                                   pad=max(cfg.fit_batch_size, cfg.micro_batch_size))
        seeds = jnp.asarray(np.array([r.seed for r in slots], np.uint32)) if side \
            else jnp.asarray(np.uint32(cfg.seed))
        programs = EpochPrograms(model, cfg, n_train, seeds=len(slots) if side else 0)
        memory.reset()
        t_fit = time.perf_counter()
        for epoch in range(min(r.first_epoch for r in real), cfg.epochs):
            live = [i for i, r in enumerate(slots) if r.trains_at(epoch)]
            if not live:
                if any(r.alive for r in real):  # those left wait at a later epoch
                    continue
                break
            t0 = time.perf_counter()
            compiled = "train" in programs.compile_s
            before = state
            state, per_step = programs.run_epoch(state, data, seeds, epoch)
            waiting = [r.waits_at(epoch) for r in slots]
            if any(waiting):  # runs ahead of this epoch keep their state
                state = _keep(state, before, waiting)
            per_step = jax.device_get(per_step)  # the epoch's one wait for the device
            t1 = time.perf_counter()
            val = (jax.device_get(programs.run_evaluate(state, data, "validation"))
                   if data.n_val else None)
            t2 = time.perf_counter()
            compile_s = 0.0 if compiled else programs.compile_s["train"]
            times = epoch_times(t0, t1, t2, compile_s)
            together = [slots[i].seed for i in live] if side else None
            for i in live:
                try:
                    record_epoch(slots[i], model, epoch, _seed_of(per_step, i, side),
                                 _seed_of(val, i, side) if val is not None else None, times,
                                 _seed_of(state, i, side), together, program_seeds)
                except OSError as exc:  # this run's folder failed; the others go on
                    slots[i].outcome = slots[i].fail(exc)
            if verbose:
                print_epoch(slots, epoch, cfg.epochs, times, live)
        fit_s = time.perf_counter() - t_fit
        ending = [i for i, r in enumerate(slots) if r.alive]
        if ending:
            test = jax.device_get(programs.run_evaluate(state, data, "test"))
            train_eval = jax.device_get(programs.run_evaluate(state, data, "train"))
        mem = memory.describe()
        for i in ending:
            _finish(slots[i], model, network, _seed_of(test, i, side),
                    _seed_of(train_eval, i, side), _seed_of(state, i, side), fit_s, mem, side,
                    log)
    except BaseException as exc:
        for run in real:
            if run.alive:
                run.outcome = run.fail(exc)
        if isinstance(exc, KeyboardInterrupt):
            log("interrupted; partial outputs kept; run the same command again to resume")
            raise
    for run in real:
        if run.diverged is not None and run.outcome is None:
            try:
                raise Diverged(run.diverged)
            except Diverged as exc:
                run.outcome = run.fail(exc)


def _finish(run: GroupRun, model: keras.Model, network: keras.Model, test: dict,
            train_eval: dict, state: Any, fit_s: float, memory: dict, side: bool, log) -> None:
    """Write the run's ``metrics.json`` (its outcome), then drop its checkpoint."""
    assign_state(model, state)
    metrics = run.metrics(test=test, train_eval=train_eval, fit_s=fit_s, model=model,
                          network=network, memory=memory,
                          extra={"side_by_side": run.segments} if run.segments else None)
    try:
        run.finish(metrics, log, named=True)
    except OSError as exc:  # this run's folder failed; the others still finish
        run.outcome = run.fail(exc)
        return
    run.outcome = RunResult(run.cfg, run.folder.path, run.rows, metrics,
                            _own_network(network, side))


def _own_network(network: keras.Model, side: bool) -> keras.Model:
    """The network with the current weights: itself alone, a copy side by side."""
    if not side:
        return network
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy
