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
shared them), and ``metrics.json`` says so under ``side_by_side``.

Equality. Alone, a device run is a pure function of its config: the same
seed gives bit-identical weights, and a resumed run the weights of an
uninterrupted one. Side by side, each seed's arithmetic is that of the seed
alone up to float32 rounding (XLA batches the seeds' matrix products), which
``tests/test_device.py`` bounds. Runs of a group whose checkpoints stand at
different epochs (a kill between two of their saves) resume as separate groups.
"""

from __future__ import annotations

import contextlib
import dataclasses
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
from swin_gao_lib.training.epoch_program import EpochPrograms, assign_state, model_state
from swin_gao_lib.training.outcome import Diverged, RunResult, run_error, run_metrics, summary
from swin_gao_lib.training.preflight import Preflight, preflight

@dataclasses.dataclass
class _Run:
    """One run of a group: its config, folder and what it has recorded so far."""

    cfg: RunConfig
    checked: Preflight
    state: dict[str, Any] | None
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rates: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    steps: int = 0
    resumed_at: list[int] = dataclasses.field(default_factory=list)
    diverged: dict[str, Any] | None = None

    @property
    def epoch(self) -> int:
        return self.state["epoch"] if self.state else 0


def train_side_by_side(cfgs: list[RunConfig], *, overwrite: bool = False,
                       verbose: int | str = "auto", log=print,
                       checked: list[Preflight] | None = None,
                       raise_errors: bool = False) -> list[RunResult | RunError]:
    """Train ``cfgs`` (one configuration at several seeds) together on the JAX device.

    Every run is checked first (:func:`preflight`: folder, resume or refuse,
    data) and its folder locked for the whole group. Returns one entry per
    run, in order: its :class:`RunResult`, or the :class:`RunError` it failed
    with (its ``failure.json`` is written); with ``raise_errors`` the first
    error is raised instead, after every run's records are written.

    Raises:
        InputError: bad input in any run, before anything is written.
    """
    check_group(cfgs)
    checked = checked or [preflight(c, overwrite=overwrite, log=log) for c in cfgs]
    runs = [_Run(c, k, Checkpoint(k.folder.checkpoint).load() if k.action == "resume" else None)
            for c, k in zip(cfgs, checked)]
    results: list[RunResult | RunError] = [None] * len(runs)  # type: ignore[list-item]
    with contextlib.ExitStack() as locks:
        for run in runs:  # one writer per run folder
            locks.enter_context(run.checked.folder.lock())
        for epoch in sorted({r.epoch for r in runs}):  # a group resumes at one epoch
            part = [i for i, r in enumerate(runs) if r.epoch == epoch]
            for i, result in zip(part, _train_group([runs[i] for i in part], verbose, log)):
                results[i] = result
    errors = [r for r in results if isinstance(r, RunError)]
    if raise_errors and errors:
        raise errors[0]
    return results


def _start(run: _Run) -> None:
    folder = run.checked.folder
    if run.checked.action == "resume":
        folder.reopen(run.cfg)
    else:
        folder.start(run.cfg)
    if run.state is not None:
        run.rows, run.steps = list(run.state["history"]), run.state["steps"]
        run.resumed_at = list(run.state.get("resumed_at_epochs", [])) + [run.state["epoch"]]


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


def _train_group(runs: list[_Run], verbose, log) -> list[RunResult | RunError]:
    import jax
    import jax.numpy as jnp

    cfg, side = runs[0].cfg, len(runs) > 1
    for run in runs:
        _start(run)
    first_epoch = runs[0].epoch
    n_train = len(runs[0].checked.splits.y_train)
    memory = PeakMemory()
    out: list[RunResult | RunError | None] = [None] * len(runs)
    try:
        keras.utils.set_random_seed(cfg.seed)
        network = build_swin(cfg)
        model = build_trainer(cfg, network,
                              planned_updates(cfg, steps_per_epoch(n_train, cfg.fit_batch_size)))
        fresh = jax.tree_util.tree_map(np.asarray, model_state(model))
        states = []
        for i, run in enumerate(runs):  # each seed's state, as it would be trained alone
            if run.state is not None:
                Checkpoint(run.checked.folder.checkpoint).restore(model, run.state)
                states.append(jax.tree_util.tree_map(np.asarray, model_state(model)))
                done = optimizer_updates(model.optimizer)  # a row written after the checkpoint goes
                run.rates = [r for r in run.checked.folder.read_learning_rates()
                             if r["update"] < done]
                run.checked.folder.write_learning_rates(run.rates)
                run.checked.folder.write_history(run.rows)
                log(f"resuming {run.checked.folder.name} after epoch {first_epoch} of "
                    f"{cfg.epochs}")
            elif i == 0:
                states.append(fresh)
            else:
                keras.utils.set_random_seed(run.cfg.seed)
                net = build_swin(run.cfg)
                states.append((*(jax.tree_util.tree_map(np.asarray, [v.value for v in vs])
                                 for vs in (net.trainable_variables,
                                            net.non_trainable_variables)), fresh[2]))
        state = _stack(states, side)
        data = DeviceSplits.upload([r.checked.splits for r in runs] if side
                                   else runs[0].checked.splits,
                                   pad=max(cfg.fit_batch_size, cfg.micro_batch_size))
        seeds = jnp.asarray(np.array([r.cfg.seed for r in runs], np.uint32)) if side \
            else jnp.asarray(np.uint32(cfg.seed))
        programs = EpochPrograms(model, cfg, n_train, seeds=len(runs) if side else 0)
        memory.reset()
        t_fit = time.perf_counter()
        for epoch in range(first_epoch, cfg.epochs):
            live = [i for i, r in enumerate(runs) if r.diverged is None]
            if not live:
                break
            t0 = time.perf_counter()
            compiled = "train" in programs.compile_s
            state, per_step = programs.run_epoch(state, data, seeds, epoch)
            per_step = jax.device_get(per_step)  # the epoch's one wait for the device
            t1 = time.perf_counter()
            val = (jax.device_get(programs.run_evaluate(state, data, "validation"))
                   if data.n_val else None)
            t2 = time.perf_counter()
            compile_s = 0.0 if compiled else programs.compile_s["train"]
            times = {"epoch_s": t2 - t0, "train_s": t1 - t0, "compile_s": compile_s,
                     "train_s_steady": t1 - t0 - compile_s, "val_s": t2 - t1}
            for i in live:
                _record_epoch(runs[i], model, epoch, _seed_of(per_step, i, side),
                              _seed_of(val, i, side) if val is not None else None, times,
                              n_train, _seed_of(state, i, side))
            if verbose:
                _print_epoch(runs, epoch, cfg.epochs, times, live)
        fit_s = time.perf_counter() - t_fit
        test = jax.device_get(programs.run_evaluate(state, data, "test"))
        train_eval = jax.device_get(programs.run_evaluate(state, data, "train"))
        mem = memory.describe()
        extra = {"side_by_side": {"runs": len(runs), "seeds": [r.cfg.seed for r in runs]}} \
            if side else None
        for i, run in enumerate(runs):
            if run.diverged is not None:
                continue
            assign_state(model, _seed_of(state, i, side))
            earlier = sum(r["epoch_s"] for r in run.rows[:first_epoch])
            metrics = run_metrics(
                run.cfg, run.checked.folder.path, test=_seed_of(test, i, side),
                train_eval=_seed_of(train_eval, i, side),
                run_summary=summary(run.rows, n_train), fit_s=fit_s + earlier,
                updates=optimizer_updates(model.optimizer), micro_steps=run.steps,
                splits=run.checked.splits, network=network, resumed_at=run.resumed_at,
                memory=mem, extra=extra)
            run.checked.folder.write_metrics(metrics)
            try:
                run.checked.folder.clear_checkpoint()
            except OSError:  # the run is complete: a checkpoint left behind only takes space
                pass
            log(f"done: {run.checked.folder.name}: test accuracy {metrics['test_accuracy']:.4f}, "
                f"{metrics['optimizer_updates']} optimizer updates, records in "
                f"{run.checked.folder.path}")
            out[i] = RunResult(run.cfg, run.checked.folder.path, run.rows, metrics,
                               _own_network(network, side))
    except BaseException as exc:
        for i, run in enumerate(runs):
            if out[i] is None and run.diverged is None:
                out[i] = _fail(run, exc)
        if isinstance(exc, KeyboardInterrupt):
            log("interrupted; partial outputs kept; run the same command again to resume")
            raise
    for i, run in enumerate(runs):
        if run.diverged is not None:
            try:
                raise Diverged(run.diverged)
            except Diverged as exc:
                out[i] = _fail(run, exc)
    return out  # type: ignore[return-value]


def _fail(run: _Run, exc: BaseException) -> RunError:
    folder = run.checked.folder
    return run_error(folder, exc, run.rows, Checkpoint(folder.checkpoint).saved_epoch())


def _record_epoch(run: _Run, model: keras.Model, epoch: int, per_step: dict, val: dict | None,
                  times: dict[str, float], n_train: int, state: Any) -> None:
    """The epoch's history row, ``lr.csv`` rows and checkpoint, as ``fit``'s callbacks write."""
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
    steady = times["train_s_steady"]
    run.rows.append({
        "epoch": epoch + 1,
        "loss": float(per_step["loss"][last]), "accuracy": float(per_step["accuracy"][last]),
        "val_loss": None if val is None else float(val["loss"]),
        "val_accuracy": None if val is None else float(val["accuracy"]),
        **times, "images_per_s": n_train / steady if steady > 0 else None,
    })
    folder = run.checked.folder
    folder.write_history(run.rows)
    folder.write_learning_rates(run.rates)
    if bad.size:  # never save a diverged state
        run.diverged = {"epoch": epoch + 1, "step": last + 1, "loss": str(float(loss[last]))}
        return
    assign_state(model, state)
    Checkpoint(folder.checkpoint).save(model, epoch + 1, {
        "history": run.rows, "steps": run.steps, "resumed_at_epochs": run.resumed_at})


def _print_epoch(runs: list[_Run], epoch: int, epochs: int, times: dict, live: list[int]):
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
          f"{span('loss')} - accuracy: {span('accuracy')} - val_loss: {span('val_loss')} - "
          f"val_accuracy: {span('val_accuracy')}", flush=True)


def _own_network(network: keras.Model, side: bool) -> keras.Model:
    """The network with the current weights: itself alone, a copy side by side."""
    if not side:
        return network
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy
