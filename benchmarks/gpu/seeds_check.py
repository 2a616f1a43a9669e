"""Seeds side by side against each seed trained alone, on this machine's JAX device.

``python benchmarks/gpu/seeds_check.py OUT.json WORKDIR [--smoke]``: the paper-size
model with its dropout, drop path and augmentation, on the first 1,024 images of
the bundled CIFAR-10 sample's training split, 3 epochs, batch 128 and in-step
N = 4 (``sum``): seeds 0 and 1 each alone (``pipeline: device``), then both
side by side. Prints and writes the largest difference between a seed alone and
the same seed side by side, per history column, for the final test loss and
accuracy and over all weights, next to the tolerances ``tests/test_device.py``
holds the CPU to (1e-5 for the history and test numbers, 5e-5 for the weights).
On a GPU the matrix products run at JAX's default precision (TF32 on recent
NVIDIA cards), as in training, so the differences are reported, not judged.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HISTORY, WEIGHTS = 1e-5, 5e-5


def main(argv: list[str]) -> int:
    out, workdir = Path(argv[0]), Path(argv[1])
    smoke = "--smoke" in argv
    from swin_gao_lib.runtime.backend import use_backend

    use_backend("jax")
    import jax
    import numpy as np

    from swin_gao_lib.config import make_config
    from swin_gao_lib.training.side_by_side import train_side_by_side
    from swin_gao_lib.training.train import train

    size = dict(embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8) if smoke else {}
    base = dict(size, dataset="cifar10", source="sample", max_train_samples=128 if smoke else 1024,
                max_test_samples=128 if smoke else None, epochs=2 if smoke else 3,
                batch_size=32 if smoke else 128, accumulation_steps=4, reduction="sum",
                backend="jax", pipeline="device", output_dir=str(workdir))
    quiet = dict(verbose=0, log=lambda *a: None, overwrite=True)
    t0 = time.perf_counter()
    alone = [train(make_config(base, seed=s, run_name=f"alone{s}"), **quiet) for s in (0, 1)]
    t1 = time.perf_counter()
    side = train_side_by_side([make_config(base, seed=s, run_name=f"side{s}") for s in (0, 1)],
                              **quiet)
    t2 = time.perf_counter()
    result = {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
              "config": base, "alone_s": t1 - t0, "side_by_side_s": t2 - t1,
              "tolerance_history": HISTORY, "tolerance_weights": WEIGHTS, "seeds": {}}
    for seed, a, s in zip((0, 1), alone, side):
        diffs = {k: max(abs(ra[k] - rs[k]) for ra, rs in zip(a.history, s.history))
                 for k in ("loss", "running_accuracy", "val_loss", "val_accuracy")}
        for k in ("test_loss", "test_accuracy"):
            diffs[k] = abs(a.metrics[k] - s.metrics[k])
        diffs["weights"] = max(float(np.abs(p - q).max())
                               for p, q in zip(a.model.get_weights(), s.model.get_weights()))
        diffs["lr_csv_equal"] = ((workdir / f"alone{seed}" / "lr.csv").read_text()
                                 == (workdir / f"side{seed}" / "lr.csv").read_text())
        within = all(v <= (WEIGHTS if k == "weights" else HISTORY)
                     for k, v in diffs.items() if k != "lr_csv_equal")
        result["seeds"][seed] = {**diffs, "within_cpu_tolerance": within}
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.2e}" for k, v in diffs.items()
                                           if k != "lr_csv_equal")
              + f"; lr.csv equal: {diffs['lr_csv_equal']}; within the CPU test's tolerance: "
              f"{within}", flush=True)
    print(f"alone (2 runs, one after the other): {t1 - t0:.1f} s; side by side: {t2 - t1:.1f} s "
          "(compilation included in both)", flush=True)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
