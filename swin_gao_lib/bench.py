"""Benchmark: the time and memory cost of gradient accumulation, per Keras backend.

Variants, for a full batch B and N micro-batches of m = B/N:

* ``plain_full``  — ordinary ``fit`` at batch B (what accumulation emulates);
* ``plain_micro`` — ordinary ``fit`` at batch m (what fits in memory);
* ``in_step``     — this kit's accumulation: one step takes B, runs N micro-batches;
* ``optimizer``   — Keras's ``gradient_accumulation_steps=N`` with batches of m;

each on every ``--backend`` (TensorFlow with ``jit_compile`` off and/or on; JAX,
always XLA-compiled), in float32 and optionally mixed precision.

Method. Every measurement runs in a **fresh process** (so one variant's memory
peak never hides another's, and each process's own compile and state are
its own), and the repeats are **interleaved**: round r runs every variant
once, in a shuffled order, before round r+1 starts, so the machine's drift
falls evenly on all of them. A worker sets its backend before Keras is
imported, trains on the bundled CIFAR-10 (or MNIST) sample through the kit's
pipeline of that backend (tf.data; NumPy batches on JAX), drops the warm-up
*updates* (tracing, compilation, caches) and times each further update: one
step for plain and in-step, N micro-steps including the apply for optimizer
mode, so every variant is timed per optimizer update of B samples (plain_micro
per step of m). Each step's loss is read back, which waits for the device.

Reported per variant: the median time per sample over all repeats' measured
updates, its interquartile range, the median of each process's median and their
spread *between* processes (max - min over the median); the step-time trend
within the measured updates (last third over first third: near 1 when warm-up
removed compile and drift; a worker past +-10% is flagged); images/s, time per
update; peak memory as the absolute peak and as the increase over the idle
process (CPU: the RSS high-water mark over the RSS before training; GPU: the
allocator's peak over its use before training); ratios to ``plain_micro``
(same micro-batch) and ``plain_full`` (same batch) *within* a backend, and,
for JAX rows, JAX / TensorFlow for the same variant (against TF with XLA off
and on).

The input-pipeline check runs ``plain_full`` once more on in-memory arrays
(already scaled, no augmentation), so the pipeline's overhead is the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swin_gao_lib.backend import BACKENDS

MODELS = {
    # the keras-io / paper size (the kit's defaults)
    "paper": {},
    # a larger hierarchical Swin: 3 stages, embed 96
    "large": {"embed_dim": 96, "depths": [2, 2, 2], "num_heads": [3, 6, 12], "window_size": 4,
              "shift_size": 2, "mlp_dim": 384, "merge_after_last_stage": False},
}
VARIANTS = ("plain_full", "plain_micro", "in_step", "optimizer")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class Spec:
    """One measurement: a backend, a model, a batch, N, a variant, and the options."""

    model: str
    batch: int
    n: int
    variant: str
    jit: bool = False
    precision: str = "float32"
    data: str = "pipeline"  # or "tensors"
    dataset: str = "cifar10"
    steps: int = 10
    warmup: int = 5
    backend: str = "tensorflow"

    @property
    def key(self) -> str:
        opts = ("+xla" if self.jit and self.backend == "tensorflow" else "")
        opts += f"+{self.precision}" if self.precision != "float32" else ""
        opts += "+tensors" if self.data == "tensors" else ""
        return f"{self.backend}/{self.model}/B{self.batch}/N{self.n}/{self.variant}{opts}"

    def step_samples(self) -> int:
        """Samples per timed unit: an update of B, or a plain step of m."""
        return self.batch // self.n if self.variant == "plain_micro" else self.batch

    def micro_steps_per_unit(self) -> int:
        """Train steps ``fit`` takes per timed unit (N in optimizer mode, else 1)."""
        return self.n if self.variant == "optimizer" else 1

    def config(self):
        from swin_gao_lib.config import make_config

        values = dict(MODELS[self.model], dataset=self.dataset, source="sample", epochs=1,
                      jit_compile=self.jit, validation_split=0.0, backend=self.backend)
        if self.variant == "plain_full":
            values.update(batch_size=self.batch)
        elif self.variant == "plain_micro":
            values.update(batch_size=self.batch // self.n)
        elif self.variant == "in_step":
            values.update(batch_size=self.batch, accumulation_steps=self.n)
        else:
            values.update(batch_size=self.batch, accumulation_steps=self.n,
                          accumulation_mode="optimizer")
        return make_config(values)


def plan(models, batch: int, ns, jit_modes, precisions, steps: int, warmup: int,
         dataset: str = "cifar10", pipeline_check: bool = True,
         backends=("tensorflow",)) -> list[Spec]:
    """Every spec of a benchmark; N=1 has only ``plain_full`` (the others coincide).

    ``jit_modes`` apply to TensorFlow; JAX is always XLA-compiled (one mode).
    ``precisions``: Keras dtype policies, e.g. ``["float32", "mixed_bfloat16"]``.
    """
    from swin_gao_lib.errors import InputError

    for n in ns:
        if batch % n:
            raise InputError(f"--n: batch {batch} is not divisible by N={n}; give "
                             "N values that divide --batch")
    specs = []
    for backend in backends:
        modes = list(jit_modes) if backend == "tensorflow" else [True]
        for model in models:
            for jit in modes:
                for precision in precisions:
                    common = dict(model=model, batch=batch, jit=jit, precision=precision,
                                  steps=steps, warmup=warmup, dataset=dataset, backend=backend)
                    specs.append(Spec(n=1, variant="plain_full", **common))
                    specs += [Spec(n=n, variant=v, **common)
                              for n in ns if n != 1 for v in VARIANTS[1:]]
            if pipeline_check:
                specs.append(Spec(model=model, batch=batch, n=1, variant="plain_full",
                                  data="tensors", steps=steps, warmup=warmup, dataset=dataset,
                                  backend=backend, jit=modes[-1]))
    return specs


# ---------------------------------------------------------------- worker (fresh process)
def measure(spec: Spec) -> dict[str, Any]:
    """Run one spec in this process; return per-update times and memory.

    Sets the spec's backend first: call it before anything imports Keras.
    """
    from swin_gao_lib.backend import use_backend

    use_backend(spec.backend)
    import keras
    import numpy as np

    from swin_gao_lib.accumulation import build_trainer
    from swin_gao_lib.data.sources import load_sample
    from swin_gao_lib.data.splits import split
    from swin_gao_lib.machine import PeakMemory, environment
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
    model = build_trainer(cfg, build_swin(cfg))
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
    env = environment()
    mem = memory.describe()
    return {"spec": asdict(spec), "key": spec.key, "step_times_s": times,
            "warmup_times_s": [b - a for a, b in zip(marks[:spec.warmup], marks[1:spec.warmup + 1])],
            "step_samples": spec.step_samples(), "peak_memory_mib": mem["peak_memory_mib"],
            "peak_memory_increase_mib": mem["peak_memory_increase_mib"],
            "peak_memory_kind": mem["peak_memory_kind"],
            "device": env["device"],
            "versions": {k: env.get(k) for k in ("python", "keras", "keras_backend",
                                                  "backend_version", "numpy")},
            "cpu_count": env["cpu_count"], "losses_finite": bool(np.all(np.isfinite(losses)))}


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


# ---------------------------------------------------------------- driver
def _quantile(values, q):
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


#: A worker whose step times drift more than this between the first and last third of its
#: measured updates is flagged: its warm-up was too short, or the machine was not quiet.
TREND_LIMIT = 0.10


def trend(times: list[float]) -> float | None:
    """Median of the last third of ``times`` over the median of the first third (None if < 3)."""
    k = len(times) // 3
    if k < 1:
        return None
    return statistics.median(times[-k:]) / statistics.median(times[:k])


def _row_key(row: dict[str, Any], variant: str, n: int, backend: str | None = None,
             jit: bool | None = None) -> str:
    """The key of the row like ``row`` but for another variant/N (and backend, XLA mode)."""
    spec = Spec(model=row["model"], batch=row["batch"], n=n, variant=variant,
                jit=row["jit"] if jit is None else jit, precision=row["precision"],
                data=row["data"], backend=backend or row["backend"])
    return spec.key


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate the repeats of each spec and add the ratios (within and across backends)."""
    by_key: dict[str, list[dict]] = {}
    for r in results:
        by_key.setdefault(r["key"], []).append(r)
    rows = {}
    for key, reps in by_key.items():
        ok = [r for r in reps if "error" not in r]
        spec = {**asdict(Spec("", 1, 1, "")), **reps[0]["spec"]}
        row = {"key": key, **{k: spec[k] for k in ("backend", "model", "batch", "n", "variant",
                                                    "jit", "precision", "data")},
               "micro_batch": spec["batch"] // spec["n"], "repeats": len(ok)}
        if not ok:
            row["error"] = reps[0]["error"]
            rows[key] = row
            continue
        per_sample = [t / r["step_samples"] for r in ok for t in r["step_times_s"]]
        per_process = [statistics.median(r["step_times_s"]) / r["step_samples"] for r in ok]
        trends = [trend(r["step_times_s"]) for r in ok]
        trends = [t for t in trends if t is not None]
        med = statistics.median(per_sample)
        increases = [r.get("peak_memory_increase_mib") for r in ok]
        row.update({
            "s_per_sample": med,
            "s_per_sample_q25": _quantile(per_sample, 0.25),
            "s_per_sample_q75": _quantile(per_sample, 0.75),
            "s_per_sample_process_median": statistics.median(per_process),
            "between_process_spread": (max(per_process) - min(per_process))
            / statistics.median(per_process),
            "step_time_trend": [round(t, 3) for t in trends],
            "trend_flagged": any(abs(t - 1) > TREND_LIMIT for t in trends),
            "images_per_s": 1.0 / med,
            "s_per_update": med * spec["batch"],
            "peak_memory_mib": statistics.median(r["peak_memory_mib"] for r in ok),
            "peak_memory_range_mib": [min(r["peak_memory_mib"] for r in ok),
                                      max(r["peak_memory_mib"] for r in ok)],
            "peak_memory_increase_mib": (statistics.median(increases)
                                         if None not in increases else None),
            "peak_memory_kind": ok[0].get("peak_memory_kind"),
        })
        rows[key] = row

    def ratio(row, base, field):
        if base and base.get(field) and row.get(field) is not None:
            return row[field] / base[field]
        return None

    for row in rows.values():
        if "s_per_sample" not in row or row["data"] == "tensors":
            continue
        full = rows.get(_row_key(row, "plain_full", 1))
        micro = row if row["variant"] == "plain_micro" else rows.get(
            _row_key(row, "plain_micro", row["n"]))
        if row["n"] == 1:
            micro = full
        for name, base in (("vs_plain_micro", micro), ("vs_plain_full", full)):
            if base and "s_per_sample" in base:
                row[f"time_{name}"] = ratio(row, base, "s_per_sample")
                row[f"memory_{name}"] = ratio(row, base, "peak_memory_mib")
                row[f"memory_increase_{name}"] = ratio(row, base, "peak_memory_increase_mib")
        if row["backend"] == "jax":  # the same variant on TensorFlow, XLA off and on
            for jit in (False, True):
                tf_row = rows.get(_row_key(row, row["variant"], row["n"], "tensorflow", jit))
                if tf_row and "s_per_sample" in tf_row:
                    tag = "xla" if jit else "no_xla"
                    row[f"time_jax_vs_tf_{tag}"] = ratio(row, tf_row, "s_per_sample")
                    row[f"memory_jax_vs_tf_{tag}"] = ratio(row, tf_row, "peak_memory_mib")
    for row in rows.values():  # input pipeline overhead
        if row["data"] == "tensors" and "s_per_sample" in row:
            pipe = rows.get(row["key"].replace("+tensors", ""))
            if pipe and "s_per_sample" in pipe:
                row["pipeline_overhead"] = pipe["s_per_sample"] / row["s_per_sample"] - 1.0
    return list(rows.values())


def run_benchmark(specs: list[Spec], repeats: int, out: Path, seed: int = 0,
                  timeout: float = 1800, log=print) -> dict[str, Any]:
    """Measure every spec ``repeats`` times, interleaved, each in a fresh process."""
    rng = random.Random(seed)
    results = []
    t0 = time.perf_counter()
    for rep in range(repeats):
        order = specs[:]
        rng.shuffle(order)
        for i, spec in enumerate(order):
            r = _run_worker(spec, timeout)
            r["repeat"] = rep
            results.append(r)
            status = r.get("error", "").splitlines()[-1:] if "error" in r else \
                f"{statistics.median(r['step_times_s']) * 1000:.0f} ms/step, {r['peak_memory_mib']:.0f} MiB"
            log(f"[round {rep + 1}/{repeats} {i + 1}/{len(order)}] {spec.key}: {status}")
    first_ok = next((r for r in results if "error" not in r), {})
    report = {
        "method": "fresh process per measurement; repeats interleaved in shuffled rounds; "
                  "timed per optimizer update after the warm-up updates; median over all "
                  "measured updates, spread between processes, step-time trend checked",
        "repeats": repeats, "wall_s": time.perf_counter() - t0,
        "device": first_ok.get("device"), "cpu_count": first_ok.get("cpu_count"),
        "versions": {r["spec"]["backend"]: r["versions"] for r in results if "error" not in r},
        "summary": summarise(results), "raw": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    from swin_gao_lib.files import write_json

    write_json(out / "bench.json", report)
    return report


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The summary as a Markdown table (times in ms per sample), then the cross-backend ratios."""
    head = ("| backend | model | B | N | micro | variant | XLA | precision | ms/sample (IQR) "
            "| between processes | trend | images/s | peak MiB | +MiB over idle "
            "| time vs plain@micro | time vs plain@B | mem vs plain@micro | mem vs plain@B |\n"
            "|---|---|---:|---:|---:|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows = sorted((r for r in report["summary"] if r["data"] == "pipeline"),
                  key=lambda r: (r["backend"], r["model"], r["jit"], r["precision"], r["n"],
                                 order[r["variant"]]))
    for r in rows:
        xla = "on" if r["jit"] or r["backend"] == "jax" else "off"
        lead = (f"| {r['backend']} | {r['model']} | {r['batch']} | {r['n']} | {r['micro_batch']} | "
                f"{r['variant']} | {xla} | {r['precision']} |")
        if "error" in r:
            lines.append(f"{lead} failed: {r['error'][:60]} |")
            continue
        trend_text = ", ".join(f"{t:.2f}" for t in r["step_time_trend"]) or "–"
        lines.append(
            f"{lead} {r['s_per_sample'] * 1e3:.2f} ({r['s_per_sample_q25'] * 1e3:.2f}–"
            f"{r['s_per_sample_q75'] * 1e3:.2f}) | ±{r['between_process_spread'] * 50:.1f}% "
            f"({r['repeats']}) | {trend_text}{' ⚠' if r['trend_flagged'] else ''} | "
            f"{r['images_per_s']:.0f} | {r['peak_memory_mib']:.0f} | "
            f"{_fmt(r.get('peak_memory_increase_mib'), 0)} | {_fmt(r.get('time_vs_plain_micro'))} | "
            f"{_fmt(r.get('time_vs_plain_full'))} | {_fmt(r.get('memory_vs_plain_micro'))} | "
            f"{_fmt(r.get('memory_vs_plain_full'))} |")
    text = head + "\n".join(lines) + "\n"
    cross = [r for r in rows if r["backend"] == "jax" and ("time_jax_vs_tf_no_xla" in r
                                                           or "time_jax_vs_tf_xla" in r)]
    if cross:
        text += ("\nJAX ÷ TensorFlow, same variant (time per sample; peak memory):\n\n"
                 "| model | B | N | variant | precision | time ÷ TF (XLA off) | time ÷ TF (XLA on) "
                 "| memory ÷ TF (XLA off) | memory ÷ TF (XLA on) |\n"
                 "|---|---:|---:|---|---|---:|---:|---:|---:|\n")
        text += "\n".join(
            f"| {r['model']} | {r['batch']} | {r['n']} | {r['variant']} | {r['precision']} | "
            f"{_fmt(r.get('time_jax_vs_tf_no_xla'))} | {_fmt(r.get('time_jax_vs_tf_xla'))} | "
            f"{_fmt(r.get('memory_jax_vs_tf_no_xla'))} | {_fmt(r.get('memory_jax_vs_tf_xla'))} |"
            for r in cross) + "\n"
    checks = [r for r in report["summary"] if "pipeline_overhead" in r]
    text += "".join(f"\nInput pipeline ({r['backend']}, {r['model']}, B={r['batch']}): the "
                    f"pipeline adds {r['pipeline_overhead'] * 100:+.1f}% time per sample over "
                    "in-memory arrays." for r in checks)
    kinds = sorted({f"{r['backend']}: {r['peak_memory_kind']}" for r in rows
                    if r.get("peak_memory_kind")})
    text += ("\n\nTimes are per optimizer update of B samples (optimizer mode: N micro-steps "
             "including the apply), per sample; 'between processes' is ±half the range of the "
             f"per-process medians (processes); 'trend' is each process's last-third over "
             f"first-third step time (⚠: beyond ±{TREND_LIMIT:.0%}). Memory: "
             + "; ".join(kinds) + ".\n")
    return text


def plot(report: dict[str, Any], stem: Path) -> list[Path]:
    """Time per sample and peak memory vs N, one line per variant."""
    import pandas as pd
    from matplotlib.figure import Figure

    from swin_gao_lib.plots import save

    df = pd.DataFrame([r for r in report["summary"] if "s_per_sample" in r and r["data"] == "pipeline"])
    if df.empty:
        return []
    groups = list(df.groupby(["backend", "model", "jit", "precision"]))
    fig = Figure(figsize=(11, 3.8 * len(groups)))
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (key, sub), (t_ax, m_ax) in zip(groups, axes):
        backend, model, jit, precision = key
        full = sub[sub["variant"] == "plain_full"]
        for variant in VARIANTS:
            v = sub[sub["variant"] == variant].sort_values("n")
            if variant == "plain_full":  # one value: draw it across N
                v = pd.concat([full.assign(n=n) for n in sorted(set(sub["n"]))])
            if v.empty:
                continue
            style = "--" if variant == "plain_full" else "-"
            t_ax.errorbar(v["n"], v["s_per_sample"] * 1e3, fmt="o" + style, capsize=3, label=variant,
                          yerr=[(v["s_per_sample"] - v["s_per_sample_q25"]) * 1e3,
                                (v["s_per_sample_q75"] - v["s_per_sample"]) * 1e3])
            m_ax.plot(v["n"], v["peak_memory_mib"], "o" + style, label=variant)
        title = (f"{backend}, {model} model, B={int(sub['batch'].iloc[0])}, XLA "
                 f"{'on' if jit or backend == 'jax' else 'off'}, {precision}")
        for ax, ylabel in ((t_ax, "time per sample (ms), median and IQR"), (m_ax, "peak memory (MiB)")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(set(sub["n"])), [str(n) for n in sorted(set(sub["n"]))])
            ax.set_xlabel("N (micro-batches per update)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Cost of gradient accumulation on {report['device']}", y=1.0)
    fig.tight_layout()
    return save(fig, stem)


def at_least(low: int):
    """An argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def add_arguments(ap: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The benchmark's options, on ``ap`` (``swin-gao bench`` and ``python -m``)."""
    from swin_gao_lib.datasets import with_sample

    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["paper"], choices=sorted(MODELS),
                    help="model sizes: 'paper' (the kit's defaults, keras-io size) and/or 'large' "
                    "(3 stages, embed 96) (default: %(default)s)")
    ap.add_argument("--batch", type=at_least(1), default=128,
                    help="B, the samples per optimizer update (default: %(default)s)")
    ap.add_argument("--n", nargs="+", type=at_least(1), default=[1, 2, 4, 8],
                    help="N values, micro-batches per update; each must divide --batch "
                    "(default: %(default)s)")
    ap.add_argument("--backend", nargs="+", default=["tensorflow"], choices=BACKENDS,
                    help="Keras backends to measure, each in its own worker processes; with "
                    "both, the table gives JAX / TensorFlow per variant (default: %(default)s)")
    ap.add_argument("--jit", choices=("off", "on", "both"), default="both",
                    help="XLA compilation of TensorFlow's train step; JAX always compiles "
                    "(default: %(default)s)")
    ap.add_argument("--precision", nargs="+", default=["float32"], choices=PRECISIONS,
                    help="Keras dtype policies to measure; mixed ones are meant for a GPU "
                    "(default: %(default)s)")
    ap.add_argument("--mixed-precision", action="store_true",
                    help="also measure mixed_float16 (same as adding it to --precision)")
    ap.add_argument("--steps", type=at_least(1), default=10,
                    help="measured optimizer updates per process, after the warm-up "
                    "(default: %(default)s)")
    ap.add_argument("--warmup", type=at_least(0), default=5,
                    help="updates discarded per process: tracing, compilation, caches; the "
                    "table's trend column checks it was enough (default: %(default)s)")
    ap.add_argument("--repeats", type=at_least(1), default=3,
                    help="fresh processes per variant, interleaved in shuffled rounds "
                    "(default: %(default)s)")
    ap.add_argument("--dataset", default="cifar10", choices=with_sample(),
                    help="the bundled sample to train on (default: %(default)s)")
    ap.add_argument("--out", default="outputs/bench",
                    help="folder for bench.json, bench.md and the figure (default: %(default)s)")
    return ap


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (or, with ``--worker``, one measurement) for parsed options."""
    if args.worker:
        print(json.dumps(measure(Spec(**json.loads(args.worker)))))
        return 0
    jit = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
    precisions = list(dict.fromkeys(args.precision + (["mixed_float16"] if args.mixed_precision
                                                      else [])))
    specs = plan(args.models, args.batch, args.n, jit, precisions, args.steps, args.warmup,
                 args.dataset, backends=list(dict.fromkeys(args.backend)))
    print(f"{len(specs)} variants x {args.repeats} repeats, each in a fresh process", flush=True)
    report = run_benchmark(specs, args.repeats, Path(args.out), log=lambda s: print(s, flush=True))
    table = markdown_table(report)
    from swin_gao_lib.files import atomic_write_text

    atomic_write_text(Path(args.out) / "bench.md", f"Device: {report['device']} "
                      f"({report['cpu_count']} CPUs); versions: {report['versions']}\n\n" + table)
    files = plot(report, Path(args.out) / "bench")
    print(table)
    print("written:", Path(args.out) / "bench.json", Path(args.out) / "bench.md", *files)
    failed = [r for r in report["summary"] if "error" in r]
    return 1 if failed else 0


def main(argv=None) -> int:
    """``python -m swin_gao_lib.bench`` (the worker entry point) and ``benchmarks/accumulation.py``."""
    ap = add_arguments(argparse.ArgumentParser(prog="swin-gao bench",
                                               description=__doc__.splitlines()[0]))
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
