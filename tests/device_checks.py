"""The device pipeline's checks (JAX) in a fresh process, for tests/test_device.py:
``tests/no_tensorflow.py tests/device_checks.py PART OUT.json WORKDIR [ARGS]``, PART one of
``train``, ``kill`` / ``resume``, ``kill-side`` / ``resume-alone`` (see each function)."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Every part's configuration: 200 images in batches of 32 (the last of 8, split 4+4),
#: dropout, drop path and augmentation on.
BASE = dict(dataset="mnist", source="sample", max_train_samples=200, max_test_samples=64,
            validation_split=0.01, embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8,
            dropout=0.1, attention_dropout=0.1, drop_path_rate=0.1, augment=True, epochs=3,
            batch_size=32, accumulation_steps=2, reduction="sum", backend="jax",
            pipeline="device", seed=1)


def config(workdir: str, **kw):
    from swin_gao_lib.config import make_config

    return make_config({**BASE, "output_dir": workdir, **kw})


def _digest_run(run: Path) -> dict:
    import csv

    history = list(csv.DictReader((run / "history.csv").open()))
    metrics = json.loads((run / "metrics.json").read_text()) if (run / "metrics.json").exists() \
        else None
    return {"files": sorted(p.name for p in run.iterdir()), "history": history,
            "lr": (run / "lr.csv").read_text(), "metrics": metrics,
            "failure": json.loads((run / "failure.json").read_text())
            if (run / "failure.json").exists() else None}


def train_checks(workdir: str) -> dict:
    """A run twice, another seed, both seeds side by side, a run that diverges."""
    import numpy as np

    from swin_gao_lib.training.side_by_side import train_side_by_side
    from swin_gao_lib.training.train import train

    quiet = dict(verbose=0, log=lambda *a: None)
    alone = {name: train(config(workdir, run_name=name, seed=seed), **quiet)
             for name, seed in (("a", 1), ("b", 1), ("c", 2))}
    group = train_side_by_side([config(workdir, run_name=f"side{s}", seed=s) for s in (1, 2)],
                               **quiet)
    diverged = train_side_by_side([config(workdir, run_name="diverged", learning_rate=1e30)],
                                  **quiet)
    out = {name: _digest_run(Path(workdir) / name)
           for name in ("a", "b", "c", "side1", "side2", "diverged")}
    out["diverged_error"] = str(diverged[0])
    for name, side in (("a", group[0]), ("c", group[1])):
        pairs = zip(alone[name].model.get_weights(), side.model.get_weights())
        out[f"{name}_vs_side_max_weight_diff"] = max(float(np.abs(p - q).max()) for p, q in pairs)
    out["side_vs_alone"] = side_vs_alone(out)
    out["tensorflow_imported"] = "tensorflow" in sys.modules
    return out


def side_vs_alone(out: dict) -> dict:
    """The largest differences between each seed side by side and alone (docs/backends.md)."""
    import numpy as np

    def lr_column(run: dict, k: int) -> np.ndarray:
        return np.array([float(line.split(",")[k]) for line in run["lr"].splitlines()[1:]])

    def history(run: dict, key: str) -> np.ndarray:
        return np.array([float(row[key]) for row in run["history"]])

    diff: dict = {}
    for alone, side in (("a", "side1"), ("c", "side2")):
        a, s = out[alone], out[side]
        found = {f"history {k}": float(np.abs(history(a, k) - history(s, k)).max())
                 for k in ("loss", "running_accuracy", "val_loss", "val_accuracy")}
        found.update({f"lr.csv {name}": float(np.abs(lr_column(a, k) - lr_column(s, k)).max())
                      for name, k in (("learning_rate", 3), ("loss", 4), ("update_norm", 5))})
        found.update({k: abs(a["metrics"][k] - s["metrics"][k])
                      for k in ("test_loss", "test_accuracy", "train_eval_loss")})
        found["weights"] = out[f"{alone}_vs_side_max_weight_diff"]
        found["lr.csv identical"] = a["lr"] == s["lr"]
        for k, v in found.items():
            diff[k] = (diff.get(k, v) and v) if isinstance(v, bool) else max(diff.get(k, 0.0), v)
    return diff


def kill_at_second_epoch(workdir: str) -> None:
    """The run killed the instant its second history row is on disk, while lr.csv is written."""
    from swin_gao_lib import files
    from swin_gao_lib.training.train import train

    history = Path(workdir) / "killed" / "history.csv"
    replace = os.replace

    def killing(src, dst):
        # epoch 1's checkpoint the last one saved; nothing catches SIGKILL
        if Path(dst).name == "lr.csv" and len(history.read_text().splitlines()) == 3:
            os.kill(os.getpid(), signal.SIGKILL)
        return replace(src, dst)

    files.os.replace = killing
    train(config(workdir, run_name="killed"), verbose=0, log=lambda *a: None)


def kill_side_by_side(output: str, params: str) -> None:
    """The side-by-side executor killed after seed 1's epoch-2 checkpoint, before seed 2's."""
    from swin_gao_lib import cli
    from swin_gao_lib.training import checkpoint

    save = checkpoint.Checkpoint.save

    def killing(self, model, epoch, extra):
        if epoch == 2 and self.folder.parent.name.endswith("-s2"):
            os.kill(os.getpid(), signal.SIGKILL)
        return save(self, model, epoch, extra)

    checkpoint.Checkpoint.save = killing
    cli.main(["run-all", params, "--executor", "side-by-side", "--output", output])


def resume_alone(output: str, run_name: str, seed: int) -> dict:
    """One seed of a killed side-by-side suite resumed on its own (``train``)."""
    from swin_gao_lib.training.train import train

    logs: list[str] = []
    train(config(output, run_name=run_name, seed=seed), verbose=0, log=logs.append)
    return {"run": _digest_run(Path(output) / run_name), "log": logs}


def resume(workdir: str) -> dict:
    from swin_gao_lib.training.train import train

    logs: list[str] = []
    train(config(workdir, run_name="killed"), verbose=0, log=logs.append)
    return {"killed": _digest_run(Path(workdir) / "killed"), "log": logs}


def main(argv: list[str]) -> int:
    part, out, workdir = argv[:3]
    from swin_gao_lib.runtime.backend import use_backend

    use_backend("jax")
    if part == "train":
        result = train_checks(workdir)
    elif part == "kill":
        kill_at_second_epoch(workdir)
        result = {"killed": False}  # not reached
    elif part == "kill-side":
        kill_side_by_side(workdir, argv[3])
        result = {"killed": False}  # not reached
    elif part == "resume-alone":
        result = resume_alone(workdir, argv[3], int(argv[4]))
    else:
        result = resume(workdir)
    Path(out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
