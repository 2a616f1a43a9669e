"""How long ``fit`` waits at its end for tf.data's autotuning thread, with autotuning on and off.

tf.data's autotuning runs an optimisation thread per iterator whose sleep between rounds
doubles up to a minute; the iterator's destructor waits for it to wake. A ``fit`` longer
than about a minute therefore ended, after its last epoch, with a wait of 0-60 s inside
``model.fit`` -- seen in ``metrics.json`` as ``fit_wall_s`` minus the sum of the epochs'
``epoch_s``. The kit's pipelines now run without autotuning
(``swin_gao_lib.data.pipeline._without_autotune``). This script trains the same run twice
side by side (one process each, started together, one backend thread each, as the Dask
workers run them): the kit as it is, and the same with autotuning turned back on, and
reports per pair each one's wait, its time per epoch and whether the final weights are the
same (they must be: every batch is a pure function of its key).

    python benchmarks/tfdata_teardown.py --epochs 12 --pairs 2 --out benchmarks/results/cpu-tfdata

The wait is a draw between 0 and the thread's sleep at that moment (up to 60 s), so
report every pair, not a mean of few. ``--scan FOLDER`` reads the wait off records that
already exist instead (every ``metrics.json`` under FOLDER; it needs no training)::

    python benchmarks/tfdata_teardown.py --scan examples
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

ARM = r"""
import json, os, sys
from swin_gao_lib.runtime.machine import thread_environment
os.environ.update(thread_environment(1), TF_CPP_MIN_LOG_LEVEL="3")
import swin_gao_lib.data.pipeline as pipeline
arm, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
if arm == "autotune on":  # the kit before: tf.data's defaults
    pipeline._without_autotune = lambda ds: ds
from swin_gao_lib.config.params import load_config
from swin_gao_lib.training.train import train
cfg = load_config("params/study-quick/mnist-paper.yaml", {
    "accumulation_steps": 1, "reduction": "mean", "seed": 0, "epochs": epochs,
    "output_dir": out, "run_name": "r"})
m = train(cfg, overwrite=True, verbose=0, log=lambda *a: None).metrics
print(json.dumps({"arm": arm, "fit_wall_s": m["fit_wall_s"], "epochs_s": m["total_time_s"],
                  "wait_s": m["fit_wall_s"] - m["total_time_s"],
                  "epoch_s": m["train_time_per_epoch_s"],
                  "weights": m["final_weights_sha256"], "test_accuracy": m["test_accuracy"]}))
"""
ARMS = ("autotune off (the kit)", "autotune on")


def pair(epochs: int, scratch: Path) -> list[dict]:
    """Both arms at once, one process each; their results in ARMS order."""
    procs = [subprocess.Popen([sys.executable, "-c", ARM, arm, str(scratch / str(i)), str(epochs)],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i, arm in enumerate(ARMS)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode:
            raise SystemExit(f"an arm failed:\n{err[-2000:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def scan(folder: Path, longer_than: float = 90.0) -> str:
    """The wait at the end of ``fit`` in the records under ``folder`` (fits over ``longer_than`` s)."""
    fits = []
    for path in sorted(folder.rglob("metrics.json")):
        m = json.loads(path.read_text())
        if "fit_wall_s" in m and "total_time_s" in m and not m.get("resumed"):
            fits.append((m["fit_wall_s"], m["fit_wall_s"] - m["total_time_s"]))
    long = [(fit, wait) for fit, wait in fits if fit > longer_than]
    waited = [wait for _, wait in long if wait > 5]
    return (f"{folder}: {len(fits)} complete runs never resumed, {len(long)} with fit > "
            f"{longer_than:g} s; {len(waited)} of those waited > 5 s after their last epoch "
            f"(up to {max((w for _, w in long), default=0):.0f} s); the waits sum to "
            f"{sum(w for _, w in long):.0f} s of {sum(f for f, _ in long):.0f} s of fit")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/swin-gao-tfdata-teardown"))
    ap.add_argument("--scan", type=Path, help="read the waits off existing records instead")
    args = ap.parse_args(argv)
    if args.scan is not None:
        print(scan(args.scan))
        return 0
    if args.out is None:
        ap.error("--out is required unless --scan")
    pairs = [pair(args.epochs, args.scratch / f"pair{k}") for k in range(args.pairs)]
    args.out.mkdir(parents=True, exist_ok=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                            capture_output=True).stdout.strip()
    (args.out / "teardown.json").write_text(json.dumps(
        {"commit": commit, "epochs": args.epochs, "pairs": pairs}, indent=1) + "\n")
    lines = [f"# fit's wait for tf.data's autotuning thread (commit `{commit}`)", "",
             f"`params/study-quick/mnist-paper.yaml`, seed 0, N = 1, {args.epochs} epochs; "
             "both arms side by side, one backend thread each.", "",
             "| pair | arm | wait at the end of fit (s) | fit (s) | time per epoch (s) | "
             "test accuracy | final weights |", "|---:|---|---:|---:|---:|---:|---|"]
    for k, results in enumerate(pairs, 1):
        for r in results:
            lines.append(f"| {k} | {r['arm']} | {r['wait_s']:.1f} | {r['fit_wall_s']:.1f} | "
                         f"{r['epoch_s']:.2f} | {r['test_accuracy']:.4f} | {r['weights'][:12]} |")
    same = all(len({r["weights"] for r in results}) == 1 for results in pairs)
    lines += ["", f"Final weights the same in both arms of every pair: {'yes' if same else 'NO'}."]
    (args.out / "teardown.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
