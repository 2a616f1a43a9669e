"""Training on the device (``pipeline: device``), one run or a configuration's seeds together.

:func:`train_side_by_side` trains runs that differ only in their seed as one
program: the epoch programs of :mod:`swin_gao_lib.training.epoch_program`,
``jax.vmap``-ed over the seeds' weights, optimizer states, dropout states,
splits and data orders. Each run still gets its own folder with the records a
run trained alone gets (``config.yaml``, ``history.csv``, ``lr.csv``,
``checkpoint/``, ``metrics.json`` or ``failure.json``; docs/records.md), and
resumes from its checkpoint like any run. One run (``train(cfg)`` with
``pipeline: device``) is the same loop without the seed axis.

The host calls the device once per epoch (train) and once per evaluation, and
reads back per-step numbers (running loss and accuracy, the learning rate
applied, whether the step updated) once per epoch, from which it writes the
same rows ``fit``'s callbacks write. Timing: ``compile_s`` is the measured
compile time of the train program (ahead of its first call, in each process's
first epoch); ``train_s`` includes it, ``train_s_steady`` does not. Side by
side, every run of the group records the group's times and peak memory (it
shared them), and ``metrics.json`` says with whom under ``side_by_side``.

Equality. Alone, a device run is a pure function of its config: the same
seed gives bit-identical weights, and a resumed run the weights of an
uninterrupted one. Side by side, each seed's arithmetic is that of the seed
alone up to float32 rounding (XLA batches the seeds' matrix products), which
``tests/test_device.py`` bounds; a seed resumed from a program side by side
trains in that program again, so it too ends bit for bit as uninterrupted,
even when the group's checkpoints stand at different epochs (a kill between
two of their saves: the seeds behind catch up while the others wait), see
:mod:`swin_gao_lib.training.device_runs`.
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
from swin_gao_lib.runtime.machine import PeakMemory
from swin_gao_lib.training.accumulation import build_trainer, optimizer_updates, planned_updates
from swin_gao_lib.training.checkpoint import Checkpoint
from swin_gao_lib.training.groups import check_group
from swin_gao_lib.training.device_runs import (GroupRun, fail, print_epoch, program_slots,
                                               record_epoch, start_records)
from swin_gao_lib.training.epoch_program import EpochPrograms, assign_state, model_state
from swin_gao_lib.training.outcome import Diverged, RunResult, run_metrics, summary
from swin_gao_lib.training.preflight import Preflight, preflight


def train_side_by_side(cfgs: list[RunConfig], *, overwrite: bool = False,
                       verbose: int | str = "auto", log=print,
                       checked: list[Preflight] | None = None,
                       raise_errors: bool = False) -> list[RunResult | RunError]:
    """Train ``cfgs`` (one configuration at several seeds) together on the JAX device.

    Every run is checked first (:func:`preflight`: folder, resume or refuse,
    data) and its folder locked for the whole group. Runs resumed from a
    program side by side train in that program again
    (:func:`~swin_gao_lib.training.device_runs.program_slots`), those whose
    checkpoints stand at earlier epochs catching up first. Returns one entry
    per run, in order: its :class:`RunResult`, or the :class:`RunError` it
    failed with (its ``failure.json`` is written); with ``raise_errors`` the
    first error is raised instead, after every run's records are written.

    Raises:
        InputError: bad input in any run, before anything is written.
    """
    check_group(cfgs)
    checked = checked or [preflight(c, overwrite=overwrite, log=log) for c in cfgs]
    runs = [GroupRun(c, k, Checkpoint(k.folder.checkpoint).load() if k.action == "resume" else None)
            for c, k in zip(cfgs, checked)]
    slots = program_slots(runs)
    first = next(r for r in slots if not r.stand_in)  # the program is built for its seed
    cfg, n_train = first.cfg, len(first.checked.splits.y_train)
    keras.utils.set_random_seed(cfg.seed)
    network = build_swin(cfg)
    model = build_trainer(cfg, network,
                          planned_updates(cfg, steps_per_epoch(n_train, cfg.fit_batch_size)))
    for k in checked:  # the last input check: nothing is written before it
        k.check_checkpoint_room(model)
    with contextlib.ExitStack() as locks:
        for run in runs:  # one writer per run folder
            locks.enter_context(run.checked.folder.lock())
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
        Checkpoint(run.checked.folder.checkpoint).restore(model, run.state)
        state = jax.tree_util.tree_map(np.asarray, model_state(model))
        run.rates = run.checked.folder.trim_to_checkpoint(run.rows,
                                                          optimizer_updates(model.optimizer))
        log(f"resuming {run.checked.folder.name} after epoch {run.first_epoch} of {cfg.epochs}")
        return state
    if run.cfg.seed == cfg.seed:  # the model was built for this seed
        return fresh
    keras.utils.set_random_seed(run.cfg.seed)
    net = build_swin(run.cfg)
    return (*(jax.tree_util.tree_map(np.asarray, [v.value for v in vs])
              for vs in (net.trainable_variables, net.non_trainable_variables)), fresh[2])


def _train_group(slots: list[GroupRun], network: keras.Model, model: keras.Model, verbose,
                 log) -> None:
    """Train the runs of ``slots`` to their end; each run's outcome lands in ``run.outcome``."""
    import jax
    import jax.numpy as jnp

    real = [r for r in slots if not r.stand_in]
    cfg, side = real[0].cfg, len(slots) > 1
    program_seeds = [r.seed for r in slots] if side else None
    n_train = len(real[0].checked.splits.y_train)
    for run in real:
        start_records(run)
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
            times = {"epoch_s": t2 - t0, "train_s": t1 - t0, "compile_s": compile_s,
                     "train_s_steady": t1 - t0 - compile_s, "val_s": t2 - t1}
            together = [slots[i].seed for i in live] if side else None
            for i in live:
                try:
                    record_epoch(slots[i], model, epoch, _seed_of(per_step, i, side),
                                 _seed_of(val, i, side) if val is not None else None, times,
                                 n_train, _seed_of(state, i, side), together, program_seeds)
                except OSError as exc:  # this run's folder failed; the others go on
                    slots[i].outcome = fail(slots[i], exc)
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
                    _seed_of(train_eval, i, side), _seed_of(state, i, side), n_train,
                    fit_s, mem, side, log)
    except BaseException as exc:
        for run in real:
            if run.alive:
                run.outcome = fail(run, exc)
        if isinstance(exc, KeyboardInterrupt):
            log("interrupted; partial outputs kept; run the same command again to resume")
            raise
    for run in real:
        if run.diverged is not None and run.outcome is None:
            try:
                raise Diverged(run.diverged)
            except Diverged as exc:
                run.outcome = fail(run, exc)


def _finish(run: GroupRun, model: keras.Model, network: keras.Model, test: dict,
            train_eval: dict, state: Any, n_train: int, fit_s: float, memory: dict,
            side: bool, log) -> None:
    """Write the run's ``metrics.json`` (its outcome), then drop its checkpoint."""
    assign_state(model, state)
    earlier = sum(r["epoch_s"] for r in run.rows[:run.first_epoch])
    metrics = run_metrics(
        run.cfg, run.checked.folder.path, test=test, train_eval=train_eval,
        run_summary=summary(run.rows, n_train), fit_s=fit_s + earlier,
        updates=optimizer_updates(model.optimizer), micro_steps=run.steps,
        splits=run.checked.splits, network=network, resumed_at=run.resumed_at,
        memory=memory, extra={"side_by_side": run.segments} if run.segments else None)
    try:
        run.checked.folder.write_metrics(metrics)
    except OSError as exc:  # this run's folder failed; the others still finish
        run.outcome = fail(run, exc)
        return
    try:
        run.checked.folder.clear_checkpoint()
    except OSError:  # the run is complete: a checkpoint left behind only takes space
        pass
    log(f"done: {run.checked.folder.name}: test accuracy {metrics['test_accuracy']:.4f}, "
        f"{metrics['optimizer_updates']} optimizer updates, records in "
        f"{run.checked.folder.path}")
    run.outcome = RunResult(run.cfg, run.checked.folder.path, run.rows, metrics,
                            _own_network(network, side))


def _own_network(network: keras.Model, side: bool) -> keras.Model:
    """The network with the current weights: itself alone, a copy side by side."""
    if not side:
        return network
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy
