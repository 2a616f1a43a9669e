"""One measurement in a fresh process: train a spec, time each update, read its memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from swin_gao_lib.bench.specs import Spec


def measure(spec: Spec) -> dict[str, Any]:
    """Run one spec in this process; return per-update times and memory.

    Sets the spec's backend first: call it before anything imports Keras.
    """
    from swin_gao_lib.runtime.backend import use_backend

    use_backend(spec.backend)
    if spec.level == "fit":
        return measure_fit(spec)
    import keras

    from swin_gao_lib.training.accumulation import build_trainer
    from swin_gao_lib.data.sources import load_sample
    from swin_gao_lib.data.splits import split
    from swin_gao_lib.runtime.machine import PeakMemory
    from swin_gao_lib.model import build_swin

    if spec.precision != "float32":
        keras.mixed_precision.set_global_policy(spec.precision)
    cfg = spec.config()
    keras.utils.set_random_seed(0)
    data = split(load_sample(cfg.dataset), cfg)
    per_step = cfg.fit_batch_size
    unit = spec.micro_steps_per_unit()
    total_steps = (spec.warmup + spec.steps) * unit
    if spec.data == "tensors":  # in memory, scaled, no augmentation: the pipeline's floor
        from swin_gao_lib.data.arrays import to_model

        rows = np.resize(np.arange(len(data.y_train)), per_step * total_steps)
        x, y = to_model(data.x_train[rows], data.y_train[rows], cfg.num_classes)
        fit_data = dict(x=x, y=y, batch_size=per_step, shuffle=False)
    else:  # the kit's pipeline of this backend, epochs without end
        fit_data = dict(x=_endless(data, cfg, per_step), shuffle=False)
    model = build_trainer(cfg, build_swin(cfg, precision=spec.precision))
    memory = PeakMemory()
    memory.reset()
    ends: list[float] = []
    losses: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))  # waits for the step to finish on the device
            ends.append(time.perf_counter())

    start = time.perf_counter()
    model.fit(**fit_data, steps_per_epoch=total_steps, epochs=1, verbose=0, callbacks=[Clock()])
    marks = [start] + ends[unit - 1::unit]  # the end of every update
    times = [b - a for a, b in zip(marks[spec.warmup:], marks[spec.warmup + 1:])]
    warmup = [b - a for a, b in zip(marks[:spec.warmup], marks[1:spec.warmup + 1])]
    return _record(spec, times, warmup, spec.step_samples(), {}, memory.describe(),
                   bool(np.all(np.isfinite(losses))))


def _record(spec: Spec, times: list[float], warmup: list[float], samples: int,
            extra: dict[str, Any], memory: dict[str, Any], finite: bool) -> dict[str, Any]:
    """One measurement as ``bench.json``'s ``raw`` holds it."""
    from swin_gao_lib.runtime.machine import environment

    env = environment()
    return {"spec": asdict(spec), "key": spec.key, "step_times_s": times,
            "warmup_times_s": warmup, "step_samples": samples, **extra,
            **{k: memory[k] for k in ("peak_memory_mib", "peak_memory_increase_mib",
                                      "peak_memory_kind")},
            "device": env["device"],
            "versions": {k: env.get(k) for k in ("python", "keras", "keras_backend",
                                                  "backend_version", "numpy")},
            "cpu_count": env["cpu_count"], "losses_finite": finite}


def measure_fit(spec: Spec) -> dict[str, Any]:
    """The fit level: the kit's ``train()`` (or ``seeds`` side by side), records and all,
    timed per epoch after the first (which compiles), from checkpoint to checkpoint."""
    import dataclasses
    import tempfile

    from swin_gao_lib.training import checkpoint
    from swin_gao_lib.training.side_by_side import train_side_by_side
    from swin_gao_lib.training.train import train

    ends: dict[int, float] = {}
    save = checkpoint.Checkpoint.save

    def timed_save(self, model, epoch, extra):
        save(self, model, epoch, extra)
        ends[epoch] = time.perf_counter()  # the group's last run's save ends the epoch

    checkpoint.Checkpoint.save = timed_save
    base = spec.config()
    quiet = dict(verbose=0, log=lambda *a: None)
    with tempfile.TemporaryDirectory(prefix="swin-gao-bench-") as out:
        cfgs = [dataclasses.replace(base, seed=s, output_dir=out, run_name=f"seed{s}")
                for s in range(spec.seeds)]
        start = time.perf_counter()
        if spec.seeds > 1:
            results = train_side_by_side(cfgs, **quiet)
            failed = [r for r in results if not hasattr(r, "metrics")]
            if failed:
                raise failed[0]
        else:
            results = [train(cfgs[0], **quiet)]
    marks = [start] + [ends[e] for e in sorted(ends)]
    times = [b - a for a, b in zip(marks[1:], marks[2:])]  # epochs 2..E
    m = results[0].metrics
    extra = {"train_images_per_s": sum(r.metrics["images_per_s"] for r in results),
             "compile_s": m["compile_s"],
             "test_accuracy": [r.metrics["test_accuracy"] for r in results]}
    return _record(spec, times, [marks[1] - marks[0]],  # the first epoch: compile
                   spec.seeds * m["samples"]["train"], extra, m,
                   all(np.isfinite(r.metrics["final_train_loss"]) for r in results))


def _endless(data: Any, cfg: Any, per_step: int) -> Any:
    """The training batches of ``cfg`` without an end (tf.data or NumPy, as the backend feeds)."""
    import keras

    if keras.backend.backend() == "tensorflow":
        from swin_gao_lib.data.pipeline import train_pipeline

        return train_pipeline(data.x_train, data.y_train, cfg, per_step)
    from swin_gao_lib.data.arrays import TrainBatches

    return TrainBatches(data.x_train, data.y_train, cfg, per_step)


def _run_worker(spec: Spec, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND=spec.backend)
    proc = subprocess.run([sys.executable, "-m", "swin_gao_lib.bench", "--worker",
                           json.dumps(asdict(spec))], capture_output=True, text=True,
                          timeout=timeout, env=env)
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"key": spec.key, "spec": asdict(spec), "error": tail or f"exit {proc.returncode}"}
    return json.loads(proc.stdout.strip().splitlines()[-1])
