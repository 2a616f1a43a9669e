"""Where the images come from: ``keras``, ``dir:<path>`` or the bundled ``sample``.

The source is the one asked for, never swapped for another (full CIFAR-10 must never
silently become the sample). Loaders return uint8 arrays ``x (N, H, W, C)``, ``y (N,)``
exactly as published; padding to 32x32 happens in :mod:`swin_gao_lib.data.splits`.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from swin_gao_lib.config import datasets
from swin_gao_lib.config.datasets import CIFAR_PYTHON, DatasetSpec
from swin_gao_lib.data.formats import read_cifar_batch, read_cifar_meta, read_idx_pair
from swin_gao_lib.errors import DataError

_SAMPLES = Path(str(resources.files("swin_gao_lib.data") / "sample"))
OFFLINE_HINT = ("offline sources: 'sample' (real subset bundled with the kit) or "
                "'dir:<path>' (the published files on disk)")


@dataclass(frozen=True)
class RawData:
    """A data set as published: uint8 images NHWC and uint8 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str

    def __post_init__(self):
        for x in (self.x_train, self.x_test):
            if x.ndim != 4 or x.dtype != np.uint8:
                raise DataError(f"images must be uint8 (N, H, W, C), got {x.dtype} {x.shape}")


def _with_channels(x: np.ndarray) -> np.ndarray:
    return x[..., None] if x.ndim == 3 else x


def _folder(folder: str | Path) -> Path:
    """A ``dir:`` source's folder, which must exist."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: folder not found (source dir:{folder})")
    return folder


# ------------------------------------------------------------------ dir:<path>
def _find(folder: Path, stem: str, spec: DatasetSpec) -> Path:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    # Some mirrors name them t10k-images.idx3-ubyte; say what we looked for.
    expected = ", ".join(f + ".gz" for f in spec.layout.files())
    raise DataError(f"{folder}: missing {stem}.gz (or {stem}); expected the {spec.title} "
                    f"published IDX files {expected}")


def load_idx_dir(folder: str | Path, dataset: str = "mnist") -> RawData:
    """Load MNIST or Fashion-MNIST from a folder holding the four published IDX files."""
    spec = datasets.get(dataset)
    folder = _folder(folder)
    layout = spec.layout
    xtr, ytr = read_idx_pair(*(_find(folder, f, spec) for f in layout.train), spec.num_classes)
    xte, yte = read_idx_pair(*(_find(folder, f, spec) for f in layout.test), spec.num_classes)
    return RawData(_with_channels(xtr), ytr, _with_channels(xte), yte,
                   f"{spec.title} from {folder}: {len(xtr)} train + {len(xte)} test images")


def cifar_folder(folder: str | Path, dataset: str = "cifar10") -> Path:
    """The folder holding the batches: ``folder`` itself, or the archive's subfolder in it."""
    layout = datasets.get(dataset).layout
    folder = Path(folder).expanduser()
    if (not (folder / layout.test[0]).exists() and layout.subfolder
            and (folder / layout.subfolder).is_dir()):
        folder = folder / layout.subfolder
    return folder


def load_cifar_dir(folder: str | Path, dataset: str = "cifar10") -> RawData:
    """Load CIFAR-10 or CIFAR-100 from their python-version files: ``folder`` is the unpacked
    archive or the folder holding it; a ``meta`` file must name the registry's class count.
    """
    spec = datasets.get(dataset)
    layout = spec.layout
    folder = cifar_folder(_folder(folder), dataset)
    for name in layout.files():
        if not (folder / name).is_file():
            raise DataError(f"{folder}: missing {name}; expected the {spec.title} python-version "
                            f"files {', '.join(layout.train)} and {', '.join(layout.test)}")
    if layout.meta and (folder / layout.meta[0]).is_file():
        read_cifar_meta(folder / layout.meta[0], layout.meta[1], spec.num_classes, spec.title)

    def read(names):
        parts = [read_cifar_batch(folder / n, layout.label_key, spec.num_classes, spec.title)
                 for n in names]
        return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])

    (xtr, ytr), (xte, yte) = read(layout.train), read(layout.test)
    return RawData(xtr, ytr, xte, yte,
                   f"{spec.title} from {folder}: {len(xtr)} train + {len(xte)} test images")


# ------------------------------------------------------------------ sample
def sample_path(dataset: str) -> Path:
    """Path of the bundled sample file of ``dataset``, which must be there."""
    path = _SAMPLES / f"{dataset}.npz"
    if not path.is_file():
        raise DataError(f"{path}: the bundled sample of {dataset} is missing; reinstall the kit")
    return path


def sample_manifest() -> dict:
    """Provenance of the bundled samples (source files, their SHA-256, row selection)."""
    return json.loads((_SAMPLES / "manifest.json").read_text())


@functools.lru_cache(maxsize=None)
def _sample_train_count(dataset: str) -> int:
    """Training images in the bundled sample of ``dataset`` (the manifest, read once)."""
    return len(sample_manifest().get(dataset, {}).get("train_rows", ()))


def expected_train_images(dataset: str, source: str, validation_split: float,
                          max_train_samples: int | None) -> int:
    """How many images one epoch of a run will train on, without loading the data.

    Exact for ``sample`` (the manifest counts its rows) and ``keras``; for ``dir:``
    the published size is the estimate (the batch runner weighs its progress with it).
    """
    spec = datasets.get(dataset)
    n = spec.train_images
    if source == "sample" and spec.sample:
        n = _sample_train_count(dataset) or n
    n -= int(round(n * validation_split))
    return n if max_train_samples is None else min(n, max_train_samples)


def load_sample(dataset: str) -> RawData:
    """Load the real subset bundled with the package, and say how small it is."""
    if not datasets.get(dataset).sample:
        raise DataError(f"source sample: no sample of {dataset} ships with the kit (samples: "
                        f"{', '.join(datasets.with_sample())}); use source: keras or dir:<path>")
    path = sample_path(dataset)
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError) as exc:
        raise DataError(f"{path}: bundled sample is unreadable ({exc}); reinstall the kit") from None
    n_tr, n_te = len(arrays["x_train"]), len(arrays["x_test"])
    desc = (f"SAMPLE of {dataset}: {n_tr} train + {n_te} test real images bundled with the kit "
            f"(not the full data set; use source: keras or dir:<path> for that)")
    return RawData(arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], desc)


# ------------------------------------------------------------------ keras
def load_keras(dataset: str) -> RawData:
    """Download (or read from ``~/.keras/datasets``) the full data set via ``keras.datasets``."""
    import keras

    spec = datasets.get(dataset)
    module = getattr(keras.datasets, spec.keras_loader)
    try:
        (xtr, ytr), (xte, yte) = module.load_data(**spec.keras_kwargs)
    except Exception as exc:  # network errors come in many types (URLError, OSError, ...)
        raise DataError(f"source keras: could not download {dataset} ({type(exc).__name__}: "
                        f"{exc}); {OFFLINE_HINT}") from None
    return RawData(_with_channels(xtr), ytr.reshape(-1).astype(np.uint8), _with_channels(xte),
                   yte.reshape(-1).astype(np.uint8),
                   f"{dataset} from keras.datasets: {len(xtr)} train + {len(xte)} test images")


def check_source(dataset: str, source: str) -> None:
    """Look at a source without reading it (cheap, for every run of a suite before the first):
    a ``dir:`` folder must hold the published files."""
    spec = datasets.get(dataset)
    if source == "sample" and spec.sample:
        sample_path(dataset)
    if not source.startswith("dir:"):
        return
    folder = _folder(source[4:])
    if spec.layout.format == CIFAR_PYTHON:
        folder = cifar_folder(folder, dataset)
        missing = [n for n in spec.layout.files() if not (folder / n).is_file()]
    else:
        missing = [n for n in spec.layout.files()
                   if not (folder / n).is_file() and not (folder / (n + ".gz")).is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)} of the published {spec.title} "
                        f"files (source dir:{folder})")


def load_raw(dataset: str, source: str) -> RawData:
    """Load ``dataset`` from exactly the ``source`` asked for."""
    if dataset not in datasets.DATASETS:
        raise DataError(f"unknown dataset '{dataset}'; one of {', '.join(datasets.DATASETS)}")
    spec = datasets.get(dataset)
    if source == "sample":
        return load_sample(dataset)
    if source == "keras":
        return load_keras(dataset)
    if source.startswith("dir:"):
        folder = source[4:]
        if spec.layout.format == CIFAR_PYTHON:
            return load_cifar_dir(folder, dataset)
        return load_idx_dir(folder, dataset)
    raise DataError(f"unknown source '{source}'; use keras, sample or dir:<path>")
