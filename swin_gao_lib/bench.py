"""Benchmark: the time and memory cost of gradient accumulation.

Variants, for a full batch B and N micro-batches of m = B/N:

* ``plain_full``  — ordinary ``fit`` at batch B (what accumulation emulates);
* ``plain_micro`` — ordinary ``fit`` at batch m (what fits in memory);
* ``in_step``     — this kit's accumulation: one step takes B, runs N micro-batches;
* ``optimizer``   — Keras's ``gradient_accumulation_steps=N`` with batches of m;

each with ``jit_compile`` off or on (and, on a GPU, optionally mixed precision).

Method. Every measurement runs in a **fresh process** (so one variant's memory
peak never hides another's), and the repeats are **interleaved**: round r runs
every variant once, in a shuffled order, before round r+1 starts, so the
machine's drift falls evenly on all of them. A worker trains on the real
bundled CIFAR-10 (or MNIST) sample through the kit's tf.data pipeline, drops
the warm-up steps (tracing, compilation, caches), and records the wall time of
each further step. Reported per variant: the median time per sample over all
repeats' steps with its interquartile range, images/s, time per optimizer
update, peak memory (CPU: the process's RSS high-water mark; GPU: TensorFlow's
allocator peak), and each as a ratio to ``plain_micro`` (same micro-batch) and
``plain_full`` (same batch).

The input-pipeline check runs ``plain_full`` once more on in-memory tensors
(already scaled, no augmentation), so the pipeline's overhead is the ratio of
the two.
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

MODELS = {
    # the keras-io / paper size (the kit's defaults)
    "paper": {},
    # a larger hierarchical Swin: 3 stages, embed 96
    "large": {"embed_dim": 96, "depths": [2, 2, 2], "num_heads": [3, 6, 12], "window_size": 4,
              "shift_size": 2, "mlp_dim": 384, "merge_after_last_stage": False},
}
VARIANTS = ("plain_full", "plain_micro", "in_step", "optimizer")


@dataclass(frozen=True)
class Spec:
    """One measurement: a model, a batch, N, a variant, and the options."""

    model: str
    batch: int
    n: int
    variant: str
    jit: bool = False
    mixed_precision: bool = False
    data: str = "pipeline"  # or "tensors"
    dataset: str = "cifar10"
    steps: int = 10
    warmup: int = 3

    @property
    def key(self) -> str:
        opts = ("+xla" if self.jit else "") + ("+mp" if self.mixed_precision else "")
        opts += "+tensors" if self.data == "tensors" else ""
        return f"{self.model}/B{self.batch}/N{self.n}/{self.variant}{opts}"

    def step_samples(self) -> int:
        return self.batch if self.variant in ("plain_full", "in_step") else self.batch // self.n

    def config(self):
        from swin_gao_lib.config import make_config

        values = dict(MODELS[self.model], dataset=self.dataset, source="sample", epochs=1,
                      jit_compile=self.jit, validation_split=0.0)
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


def plan(models, batch: int, ns, jit_modes, mixed_precision: bool, steps: int, warmup: int,
         dataset: str = "cifar10", pipeline_check: bool = True) -> list[Spec]:
    """Every spec of a benchmark; N=1 has only ``plain_full`` (the others coincide)."""
    specs = []
    for model in models:
        for jit in jit_modes:
            for mp in ([False, True] if mixed_precision else [False]):
                common = dict(model=model, batch=batch, jit=jit, mixed_precision=mp, steps=steps,
                              warmup=warmup, dataset=dataset)
                specs.append(Spec(n=1, variant="plain_full", **common))
                for n in ns:
                    if n == 1:
                        continue
                    if batch % n:
                        from swin_gao_lib.errors import InputError

                        raise InputError(f"--n: batch {batch} is not divisible by N={n}; give "
                                         "N values that divide --batch")
                    specs += [Spec(n=n, variant=v, **common) for v in VARIANTS[1:]]
        if pipeline_check:
            specs.append(Spec(model=model, batch=batch, n=1, variant="plain_full", data="tensors",
                              steps=steps, warmup=warmup, dataset=dataset))
    return specs


# ---------------------------------------------------------------- worker (fresh process)
def measure(spec: Spec) -> dict[str, Any]:
    """Run one spec in this process; return per-step times and peak memory."""
    import keras
    import numpy as np
    import tensorflow as tf

    from swin_gao_lib.accumulation import build_trainer
    from swin_gao_lib.data.pipeline import train_pipeline
    from swin_gao_lib.data.splits import split
    from swin_gao_lib.data.sources import load_sample
    from swin_gao_lib.model import build_swin
    from swin_gao_lib.machine import PeakMemory, environment

    if spec.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    cfg = spec.config()
    keras.utils.set_random_seed(0)
    data = split(load_sample(cfg.dataset), cfg)
    per_step = cfg.fit_batch_size
    total_steps = spec.warmup + spec.steps
    if spec.data == "tensors":
        n = min(len(data.y_train), per_step * total_steps)
        x = tf.constant(data.x_train[:n].astype("float32") / 255.0)
        y = tf.one_hot(data.y_train[:n].astype("int32"), cfg.num_classes)
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(per_step).cache().repeat()
    else:
        ds = train_pipeline(data.x_train, data.y_train, cfg, per_step)  # epochs without end
    model = build_trainer(cfg, build_swin(cfg))
    memory = PeakMemory()
    memory.reset()
    ends: list[float] = []
    cb = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs=None: ends.append(time.perf_counter()))
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=total_steps, epochs=1, verbose=0, callbacks=[cb])
    marks = [start] + ends
    times = [b - a for a, b in zip(marks[spec.warmup:], marks[spec.warmup + 1:])]
    env = environment()
    return {"spec": asdict(spec), "key": spec.key, "step_times_s": times,
            "step_samples": spec.step_samples(), "peak_memory_mib": memory.peak_mib(),
            "peak_memory_kind": memory.describe()["peak_memory_kind"],
            "device": env["device"], "versions": {k: env[k] for k in ("python", "tensorflow", "keras")},
            "cpu_count": env["cpu_count"], "losses_finite": bool(np.isfinite(model.evaluate(
                ds.take(1), verbose=0, return_dict=True)["loss"]))}


def _run_worker(spec: Spec, timeout: float) -> dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
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


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate the repeats of each spec and add the ratios to plain training."""
    by_key: dict[str, list[dict]] = {}
    for r in results:
        by_key.setdefault(r["key"], []).append(r)
    rows = {}
    for key, reps in by_key.items():
        ok = [r for r in reps if "error" not in r]
        spec = reps[0]["spec"]
        row = {"key": key, **{k: spec[k] for k in ("model", "batch", "n", "variant", "jit",
                                                    "mixed_precision", "data")},
               "micro_batch": spec["batch"] // spec["n"], "repeats": len(ok)}
        if not ok:
            row["error"] = reps[0]["error"]
            rows[key] = row
            continue
        per_sample = [t / r["step_samples"] for r in ok for t in r["step_times_s"]]
        med = statistics.median(per_sample)
        row.update({
            "s_per_sample": med,
            "s_per_sample_q25": _quantile(per_sample, 0.25),
            "s_per_sample_q75": _quantile(per_sample, 0.75),
            "images_per_s": 1.0 / med,
            "s_per_update": med * spec["batch"],
            "peak_memory_mib": statistics.median(r["peak_memory_mib"] for r in ok),
            "peak_memory_range_mib": [min(r["peak_memory_mib"] for r in ok),
                                      max(r["peak_memory_mib"] for r in ok)],
        })
        rows[key] = row

    def ref(row, variant, n):
        opts = ("+xla" if row["jit"] else "") + ("+mp" if row["mixed_precision"] else "")
        return rows.get(f"{row['model']}/B{row['batch']}/N{n}/{variant}{opts}")

    for row in rows.values():
        if "s_per_sample" not in row or row["data"] == "tensors":
            continue
        full = ref(row, "plain_full", 1)
        micro = row if row["variant"] == "plain_micro" else ref(row, "plain_micro", row["n"])
        if row["n"] == 1:
            micro = full
        for name, base in (("vs_plain_micro", micro), ("vs_plain_full", full)):
            if base and "s_per_sample" in base:
                row[f"time_{name}"] = row["s_per_sample"] / base["s_per_sample"]
                row[f"memory_{name}"] = row["peak_memory_mib"] / base["peak_memory_mib"]
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
                  "median over all measured steps after warm-up",
        "repeats": repeats, "wall_s": time.perf_counter() - t0,
        "device": first_ok.get("device"), "cpu_count": first_ok.get("cpu_count"),
        "versions": first_ok.get("versions"),
        "summary": summarise(results), "raw": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    from swin_gao_lib.files import write_json

    write_json(out / "bench.json", report)
    return report


def markdown_table(report: dict[str, Any]) -> str:
    """The summary as a Markdown table (times in ms per sample)."""
    head = ("| model | B | N | micro | variant | XLA | ms/sample (IQR) | images/s | peak MiB "
            "| time vs plain@micro | time vs plain@B | mem vs plain@micro | mem vs plain@B |\n"
            "|---|---:|---:|---:|---|---|---|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows = sorted((r for r in report["summary"] if r["data"] == "pipeline"),
                  key=lambda r: (r["model"], r["jit"], r["mixed_precision"], r["n"], order[r["variant"]]))
    fmt = lambda v: "–" if v is None else f"{v:.2f}"
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | {r['batch']} | {r['n']} | {r['micro_batch']} | "
                         f"{r['variant']} | {'on' if r['jit'] else 'off'} | failed: {r['error'][:60]} |")
            continue
        lines.append(
            f"| {r['model']} | {r['batch']} | {r['n']} | {r['micro_batch']} | {r['variant']}"
            f"{' (mp)' if r['mixed_precision'] else ''} | {'on' if r['jit'] else 'off'} | "
            f"{r['s_per_sample'] * 1e3:.2f} ({r['s_per_sample_q25'] * 1e3:.2f}–"
            f"{r['s_per_sample_q75'] * 1e3:.2f}) | {r['images_per_s']:.0f} | "
            f"{r['peak_memory_mib']:.0f} | {fmt(r.get('time_vs_plain_micro'))} | "
            f"{fmt(r.get('time_vs_plain_full'))} | {fmt(r.get('memory_vs_plain_micro'))} | "
            f"{fmt(r.get('memory_vs_plain_full'))} |")
    checks = [r for r in report["summary"] if "pipeline_overhead" in r]
    tail = "".join(f"\nInput pipeline ({r['model']}, B={r['batch']}): tf.data adds "
                   f"{r['pipeline_overhead'] * 100:+.1f}% time per sample over in-memory tensors."
                   for r in checks)
    return head + "\n".join(lines) + "\n" + tail + "\n"


def plot(report: dict[str, Any], stem: Path) -> list[Path]:
    """Time per sample and peak memory vs N, one line per variant."""
    import pandas as pd
    from matplotlib.figure import Figure

    from swin_gao_lib.plots import save

    df = pd.DataFrame([r for r in report["summary"] if "s_per_sample" in r and r["data"] == "pipeline"])
    if df.empty:
        return []
    groups = list(df.groupby(["model", "jit", "mixed_precision"]))
    fig = Figure(figsize=(11, 3.8 * len(groups)))
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (key, sub), (t_ax, m_ax) in zip(groups, axes):
        model, jit, mp = key
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
        title = f"{model} model, B={int(sub['batch'].iloc[0])}, XLA {'on' if jit else 'off'}" + \
            (", mixed precision" if mp else "")
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
    ap.add_argument("--jit", choices=("off", "on", "both"), default="both",
                    help="XLA compilation of the train step (default: %(default)s)")
    ap.add_argument("--mixed-precision", action="store_true",
                    help="also measure mixed_float16 (meaningful on a GPU)")
    ap.add_argument("--steps", type=at_least(1), default=10,
                    help="measured steps per process, after the warm-up (default: %(default)s)")
    ap.add_argument("--warmup", type=at_least(0), default=3,
                    help="steps discarded per process: tracing, compilation, caches "
                    "(default: %(default)s)")
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
    specs = plan(args.models, args.batch, args.n, jit, args.mixed_precision, args.steps,
                 args.warmup, args.dataset)
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
