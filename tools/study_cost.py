"""What a suite will cost on this machine: per-image training cost measured side by side, and the
suite's time with 2 Dask workers, before a single run of it starts.

A suite's runs differ in what they cost per training image (model, image size, batch,
micro-batches, optimizer) and in how many images they train on (images x epochs). This
tool groups the runs of a params folder into such *cost classes*, measures each class's
CPU time per training image and per evaluated image in fresh processes with one backend
thread (as each Dask worker runs), interleaved round by round with a *reference* class
whose wall time per image under the same conditions is on record (the earlier study's
runs, 2 Dask workers on the same 2 cores), and scales by the reference's ratio::

    wall per image (class) = CPU per image (class) x recorded wall / CPU per image (reference)

so a machine busy with other work during the measurement slows reference and class alike,
and the ratio holds. Per run: training images x epochs x that cost, plus validation every
epoch and the final test and train-set evaluations at the evaluation cost, plus a fixed
start-up cost per run (kernel, imports, data, compiling the step), read from the
reference suite as its wall time x workers minus its summed fit time, over its runs. The
suite's time is the sum over runs divided by the workers (and never less than its longest
run).

    python tools/study_cost.py params/study-quick --reference examples/study-quick \\
        --reference-wall-min 83 --out examples/study-tuning/cost/study-quick

writes ``cost.json`` (every measurement) and ``cost.md`` (the table and the arithmetic).
A changed design whose cost classes were all measured before (other epochs, seeds or
rates) is priced from that measurement without measuring again::

    python tools/study_cost.py params/study-quick \
        --prices examples/study-tuning/cost/study-quick/cost.json \
        --out examples/study-tuning/cost/study-quick-16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_gao_lib.config import RunConfig, from_yaml  # noqa: E402
from swin_gao_lib.config.params import resolve  # noqa: E402
from swin_gao_lib.data.sources import expected_train_images, sample_manifest  # noqa: E402

#: What a run's cost per image depends on; the rest of its config (rates, seeds, epochs,
#: reduction, schedule) changes what it learns, not what a step costs.
COST_KEYS = ("dataset", "image_handling", "augment", "crop_padding", "patch_size", "embed_dim",
             "depths", "num_heads", "window_size", "shift_size", "mlp_dim", "head_units",
             "merge_after_last_stage", "batch_size", "accumulation_steps", "accumulation_mode",
             "optimizer", "jit_compile")

WORKER = r"""
import json, os, sys, time
from swin_gao_lib.runtime.machine import thread_environment
os.environ.update(thread_environment(1), TF_CPP_MIN_LOG_LEVEL="3")
import keras
from swin_gao_lib.config import make_config
from swin_gao_lib.data.pipeline import make_datasets
from swin_gao_lib.model import build_swin
from swin_gao_lib.training.accumulation import build_trainer, planned_updates
values, steps, warmup = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
cfg = make_config({**values, "epochs": 1, "run_name": "cost"})
data = make_datasets(cfg)
keras.utils.set_random_seed(0)
model = build_trainer(cfg, build_swin(cfg), planned_updates(cfg, data.steps_per_epoch))
marks = {}
class Clock(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 == warmup:
            marks["t0"] = time.process_time()
    def on_train_end(self, logs=None):
        marks["t1"] = time.process_time()
per_step = cfg.fit_batch_size
model.fit(data.train, epochs=1, steps_per_epoch=steps + warmup, verbose=0, shuffle=False,
          callbacks=[Clock()])
model.evaluate(data.test, steps=1, verbose=0)  # trace the evaluation once
t = time.process_time()
model.evaluate(data.test, steps=4, verbose=0)
eval_ms = 1000 * (time.process_time() - t) / (4 * per_step)
print(json.dumps({"train_ms": 1000 * (marks["t1"] - marks["t0"]) / (steps * per_step),
                  "eval_ms": eval_ms}))
"""


def cost_class(cfg: RunConfig) -> str:
    return json.dumps({k: getattr(cfg, k) for k in COST_KEYS}, default=list, sort_keys=True)


def measure(values: dict, steps: int, warmup: int) -> dict:
    """One fresh process: CPU ms per training image and per evaluated image."""
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(values), str(steps),
                           str(warmup)], capture_output=True, text=True, cwd=ROOT, timeout=1800,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    if proc.returncode:
        raise SystemExit(f"cost worker failed for {values}:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def reference(folder: Path, wall_min: float, workers: int) -> dict:
    """The reference class (the earlier study's MNIST baseline) and its recorded costs."""
    runs = sorted(p.parent for p in folder.glob("*/metrics.json"))
    fit = [json.loads((r / "metrics.json").read_text()) for r in runs]
    overhead = (wall_min * 60 * workers - sum(m["fit_wall_s"] for m in fit)) / len(runs)
    base = [(r, m) for r, m in zip(runs, fit)
            if m["accumulation_steps"] == 1 and m["batch_size"] == 128
            and (r / "config.yaml").read_text().count("dataset: mnist")
            and "optimizer: adamw" in (r / "config.yaml").read_text()
            and "lr_schedule: constant" in (r / "config.yaml").read_text()]
    cfg = from_yaml((base[0][0] / "config.yaml").read_text())
    wall_ms = statistics.median(1000 * m["train_time_per_epoch_s"] / m["samples"]["train"]
                                for _, m in base)
    return {"config": cfg, "runs": [r.name for r, _ in base], "wall_ms": wall_ms,
            "overhead_s": overhead, "suite_runs": len(runs), "suite_wall_min": wall_min,
            "suite_fit_s": sum(m["fit_wall_s"] for m in fit)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", type=Path, help="a params folder (or file) of the suite")
    ap.add_argument("--reference", type=Path, help="an earlier suite's records")
    ap.add_argument("--reference-wall-min", type=float,
                    help="that suite's measured wall time, minutes")
    ap.add_argument("--prices", type=Path, help="an earlier cost.json whose measured classes "
                    "and reference price this suite (instead of --reference: nothing is measured)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    files = [args.params] if args.params.is_file() else sorted(args.params.glob("*.yaml"))
    if (args.prices is None) == (args.reference is None or args.reference_wall_min is None):
        ap.error("give either --reference and --reference-wall-min (measure now) or --prices "
                 "(an earlier cost.json)")
    runs = [r.config for f in files for r in resolve(f, {"output_dir": tempfile.gettempdir()})]
    classes: dict[str, RunConfig] = {}
    for cfg in runs:
        classes.setdefault(cost_class(cfg), cfg)
    if args.prices is not None:
        earlier = json.loads(args.prices.read_text())
        ref, scale = earlier["reference"], earlier["scale_wall_per_cpu"]
        samples = {k: v["samples"] for k, v in earlier["classes"].items()}
        missing = [k for k in classes if k not in samples]
        if missing:
            print(f"study_cost: {args.prices} has no measurement of {len(missing)} cost "
                  f"class(es) of {args.params}, e.g. {missing[0]}; measure with --reference",
                  file=sys.stderr)
            return 2
        source = f"prices measured for `{earlier['params']}` (`{args.prices}`)"
    else:
        ref = reference(args.reference, args.reference_wall_min, args.workers)
        ref_key = "reference: " + cost_class(ref["config"])
        todo = {**{k: c for k, c in classes.items()}, ref_key: ref["config"]}
        samples = {k: [] for k in todo}
        rng = random.Random(0)
        for round_ in range(args.repeats):
            order = list(todo)
            rng.shuffle(order)  # interleaved: every class once per round, in a new order
            for key in order:
                values = {k: v for k, v in todo[key].to_dict().items()
                          if k not in ("run_name", "output_dir", "epochs")}
                samples[key].append(measure(values, args.steps, args.warmup))
                print(f"round {round_ + 1}/{args.repeats}: {key[:90]} {samples[key][-1]}",
                      flush=True)
        scale = ref["wall_ms"] / statistics.median(s["train_ms"] for s in samples[ref_key])
        source = (f"{len(ref['runs'])} MNIST baselines of `{args.reference}` "
                  f"({ref['wall_ms']:.3f} ms per training image, 2 workers, recorded); measured "
                  f"now {statistics.median(s['train_ms'] for s in samples[ref_key]):.3f} CPU ms")
    med = {k: {m: statistics.median(s[m] for s in v) for m in ("train_ms", "eval_ms")}
           for k, v in samples.items()}
    rows, total = [], 0.0
    for cfg in runs:
        c = med[cost_class(cfg)]
        n = expected_train_images(cfg.dataset, cfg.source, cfg.validation_split,
                                  cfg.max_train_samples)
        total_train = expected_train_images(cfg.dataset, cfg.source, 0.0, None)
        val = int(round(total_train * cfg.validation_split))
        test = len(sample_manifest().get(cfg.dataset, {}).get("test_rows", ())) or 10_000
        train_s = n * cfg.epochs * c["train_ms"] * scale / 1000
        eval_s = (val * cfg.epochs + n + (cfg.max_test_samples or test)) * c["eval_ms"] * scale / 1000
        seconds = train_s + eval_s + ref["overhead_s"]
        total += seconds
        rows.append({"run": cfg.run_name, "images_x_epochs": n * cfg.epochs,
                     "train_s": train_s, "eval_s": eval_s, "run_s": seconds})
    wall = max(total / args.workers, max(r["run_s"] for r in rows))
    out = {"reference": {k: v for k, v in ref.items() if k != "config"},
           "scale_wall_per_cpu": scale, "classes": {k: {"cpu_ms": med[k], "samples": samples[k]}
                                                    for k in samples},
           "runs": rows, "worker_seconds": total, "workers": args.workers,
           "estimated_wall_s": wall, "params": str(args.params)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cost.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    lines = [f"# Estimated cost of `{args.params}` ({len(rows)} runs, {args.workers} workers)", "",
             f"Reference: {source}: scale {scale:.3f}. Start-up per run "
             f"{ref['overhead_s']:.1f} s ({ref['suite_wall_min']:g} min x {args.workers} workers "
             f"- {ref['suite_fit_s']:.0f} s of fits, over {ref['suite_runs']} runs).", "",
             "| class | CPU ms/train image | CPU ms/eval image | wall ms/train image | runs | "
             "images x epochs | worker-seconds |", "|---|---:|---:|---:|---:|---:|---:|"]
    for key in classes:
        members = [r for cfg, r in zip(runs, rows) if cost_class(cfg) == key]
        short = ", ".join(f"{k}={v}" for k, v in json.loads(key).items()
                          if k in ("dataset", "batch_size", "accumulation_steps",
                                   "accumulation_mode", "optimizer", "patch_size", "embed_dim"))
        lines.append(f"| {short} | {med[key]['train_ms']:.3f} | {med[key]['eval_ms']:.3f} | "
                     f"{med[key]['train_ms'] * scale:.3f} | {len(members)} | "
                     f"{sum(r['images_x_epochs'] for r in members):,} | "
                     f"{sum(r['run_s'] for r in members):,.0f} |")
    lines += ["", f"Sum over runs: {total:,.0f} worker-seconds; / {args.workers} workers = "
              f"**{wall / 3600:.2f} h** ({wall / 60:.0f} min)."]
    (args.out / "cost.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
