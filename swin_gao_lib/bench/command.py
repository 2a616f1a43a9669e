"""The benchmark's driver and options: interleaved rounds of fresh worker processes."""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from swin_gao_lib.runtime.backend import BACKENDS

from swin_gao_lib.bench.specs import MODELS, PRECISIONS, VARIANTS, Spec, plan
from swin_gao_lib.bench.summary import summarise
from swin_gao_lib.bench.tables import markdown_table, plot
from swin_gao_lib.bench.worker import _run_worker, measure


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
            _write(results, repeats, t0, out)  # so far: a run stopped early keeps its results
    return _write(results, repeats, t0, out)


def _write(results: list[dict[str, Any]], repeats: int, t0: float, out: Path) -> dict[str, Any]:
    """``bench.json`` of the results so far."""
    first_ok = next((r for r in results if "error" not in r), {})
    report = {
        "method": "fresh process per measurement; repeats interleaved in shuffled rounds; "
                  "timed per optimizer update after the warm-up updates (step level) or per "
                  "epoch after the first, records included (fit level); median over all "
                  "measured units, spread between processes, step-time trend checked",
        "repeats": repeats, "wall_s": time.perf_counter() - t0,
        "device": first_ok.get("device"), "cpu_count": first_ok.get("cpu_count"),
        "versions": {r["spec"]["backend"]: r["versions"] for r in results if "error" not in r},
        "summary": summarise(results), "raw": results,
    }
    out.mkdir(parents=True, exist_ok=True)
    from swin_gao_lib.files import write_json

    write_json(out / "bench.json", report)
    return report




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
    from swin_gao_lib.config.datasets import with_sample

    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--models", nargs="+", default=["paper"], choices=sorted(MODELS),
                    help="model sizes: 'paper' (the kit's defaults, keras-io size) and/or 'large' "
                    "(3 stages, embed 96); 'tiny' for smoke checks (default: %(default)s)")
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
    ap.add_argument("--level", nargs="+", default=["step"], choices=("step", "fit"),
                    help="'step': the train step under fit, timed per update; 'fit': the kit's "
                    "train() with validation, records and checkpoints, timed per epoch (what "
                    "a user waits for) (default: %(default)s)")
    ap.add_argument("--pipeline", nargs="+", default=["host"], choices=("host", "device"),
                    help="fit level: batches made on the host (tf.data, NumPy) and/or on the "
                    "device (JAX epoch programs; docs/backends.md) (default: %(default)s)")
    ap.add_argument("--seeds", nargs="+", type=at_least(1), default=[1],
                    help="fit level, device pipeline: runs trained side by side in one program, "
                    "e.g. 1 10 (default: %(default)s)")
    ap.add_argument("--epochs", type=at_least(2), default=3,
                    help="fit level: epochs per process; the first compiles and is not timed "
                    "(default: %(default)s)")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS,
                    help="measure only these variants (plain_full is every ratio's reference) "
                    "(default: all)")
    ap.add_argument("--train-samples", type=at_least(1), default=None, metavar="N",
                    help="fit level: train on the first N images of the sample's training split "
                    "(default: all of them)")
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
                 args.dataset, backends=list(dict.fromkeys(args.backend)),
                 levels=list(dict.fromkeys(args.level)),
                 pipelines=list(dict.fromkeys(args.pipeline)),
                 seeds=list(dict.fromkeys(args.seeds)), epochs=args.epochs,
                 train_samples=args.train_samples, variants=args.variants)
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
