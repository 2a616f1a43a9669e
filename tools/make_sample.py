"""Build the real-data samples bundled in ``swin_gao_lib/data/sample/``.

The rows are taken, not generated: for each class, the first ``k`` images of
that class in the published file order (so every class is equally present),
kept in file order. Run from the repository root::

    python tools/make_sample.py --shared ../shared/datasets \
        --fashion /usr/share/datasets/fashion-mnist

It writes one compressed ``.npz`` per data set and ``manifest.json`` with the
SHA-256 of every source file and the row indices taken, so the sample can be
checked against the published data.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from swin_gao_lib.config import datasets
from swin_gao_lib.data.sources import cifar_folder, load_raw

# Per class: (train, test); ``None`` takes every row of the source. ~21 MB in all,
# compressed. CIFAR-10 takes the whole offline subset (the first 1,017 rows of each
# published batch), so that the quick suite's CIFAR-10 runs learn (>= 35% test accuracy).
SIZES = {"mnist": (1500, 200), "fashion_mnist": (300, 100), "cifar10": (None, None)}
OUT = Path(__file__).resolve().parents[1] / "swin_gao_lib" / "data" / "sample"


def balanced_rows(labels: np.ndarray, per_class: int | None, num_classes: int) -> np.ndarray:
    """The first ``per_class`` row indices of each class, in file order (all rows: None)."""
    if per_class is None:
        return np.arange(len(labels))
    rows = [np.flatnonzero(labels == c)[:per_class] for c in range(num_classes)]
    if min(len(r) for r in rows) < per_class:
        raise SystemExit(f"not enough rows for {per_class} per class")
    return np.sort(np.concatenate(rows))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path("../shared/datasets"))
    ap.add_argument("--fashion", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    folders = {"mnist": args.shared / "mnist", "fashion_mnist": args.fashion,
               "cifar10": args.shared / "cifar10"}
    manifest = {}
    for name, folder in folders.items():
        spec = datasets.get(name)
        raw = load_raw(name, f"dir:{folder}")
        if spec.layout.format == datasets.CIFAR_PYTHON:
            folder = cifar_folder(folder, name)
        k_tr, k_te = SIZES[name]
        tr = balanced_rows(raw.y_train, k_tr, spec.num_classes)
        te = balanced_rows(raw.y_test, k_te, spec.num_classes)
        out = OUT / f"{name}.npz"
        np.savez_compressed(out, x_train=raw.x_train[tr], y_train=raw.y_train[tr],
                            x_test=raw.x_test[te], y_test=raw.y_test[te])
        files = (list(spec.layout.files()) if spec.layout.format == datasets.CIFAR_PYTHON
                 else [f + ".gz" for f in spec.layout.files()])
        manifest[name] = {
            "from": raw.description,
            "files_sha256": {f: sha256(folder / f) for f in files},
            "selection": ("every image of the source, in file order" if k_tr is None else
                          f"first {k_tr} train and {k_te} test images of each class, "
                          "in file order"),
            "train_rows": tr.tolist(), "test_rows": te.tolist(),
            "bytes": out.stat().st_size,
        }
        print(f"{name}: {len(tr)} train + {len(te)} test -> {out} ({out.stat().st_size / 1e6:.2f} MB)")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
