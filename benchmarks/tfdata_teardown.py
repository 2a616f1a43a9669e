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
report every pair, not a mean of few.
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/swin-gao-tfdata-teardown"))
    args = ap.parse_args(argv)
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
