"""Shrink a study's params folder into a smoke test of the whole pipeline.

Before hours of runs, run the same suite -- every file, grid, study block and comparison
-- on a sliver of the data for an epoch or two, through ``run-all`` (Dask included) and the
report, so that the real run cannot fail on code::

    python tools/study_smoke.py params/study-quick /tmp/smoke/params
    swin-gao run-all /tmp/smoke/params --output /tmp/smoke/out --executor dask --workers 2

Each file keeps its structure; what changes: ``seeds`` (the first two), epochs (divided by
the smallest epoch count of the file, so a run N x longer stays N x longer, as equal-updates
controls need), the training and test images (``--train`` and ``--test``; a multiple of every
batch), warm-ups (to one update). The study blocks change the same way, so their comparisons
still name runs of the grid. The header comments are not kept: the copy is for the code, not
for reading.
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_gao_lib.config.params import read_params  # noqa: E402


def _shrink(values: dict, unit: int, train: int, test: int) -> dict:
    out = dict(values)
    if "epochs" in out:
        out["epochs"] = max(1, out["epochs"] // unit)
    if out.get("warmup_updates"):
        out["warmup_updates"] = 1
    return out


def shrink(values: dict, train: int = 512, test: int = 256, seeds: int = 2) -> dict:
    """A small copy of a params mapping (module docstring)."""
    values = copy.deepcopy(values)
    blocks = values.get("grid", [])
    blocks = [blocks] if isinstance(blocks, dict) else blocks
    epochs = [values.get("epochs", 40)] + [e for b in blocks for e in b.get("epochs", [])]
    unit = max(1, min(epochs))
    values = _shrink(values, unit, train, test)
    values.update(max_train_samples=train, max_test_samples=test)
    if "seeds" in values:
        values["seeds"] = values["seeds"][:seeds]
    for block in blocks:
        if "epochs" in block:
            block["epochs"] = [max(1, e // unit) for e in block["epochs"]]
        if "warmup_updates" in block:
            block["warmup_updates"] = [min(w, 1) for w in block["warmup_updates"]]
    if "grid" in values:
        values["grid"] = blocks
    for c in values.get("study", {}).get("comparisons", []):
        c["arm"], c["versus"] = (_shrink(c[k], unit, train, test) for k in ("arm", "versus"))
    return values


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("params", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--train", type=int, default=512, help="training images per run")
    ap.add_argument("--test", type=int, default=256, help="test images per run")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args(argv)
    files = [args.params] if args.params.is_file() else sorted(args.params.glob("*.yaml"))
    args.out.mkdir(parents=True, exist_ok=True)
    for f in files:
        small = shrink(read_params(f), args.train, args.test, args.seeds)
        (args.out / f.name).write_text(yaml.safe_dump(small, sort_keys=False))
        print(args.out / f.name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
