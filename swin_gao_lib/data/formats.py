"""Parsers for the data sets' published file formats, with strict checks.

* **IDX** (MNIST, Fashion-MNIST; LeCun et al.): a big-endian header
  ``0x00 0x00 <type> <ndim>``, then ``ndim`` uint32 sizes, then the raw data.
  Type ``0x08`` is unsigned byte. Images are ``ndim=3`` (magic 2051 =
  0x00000803), labels ``ndim=1`` (magic 2049 = 0x00000801). Files are usually
  gzipped; plain files are read too.
* **CIFAR-10 / CIFAR-100 "python version"** (Krizhevsky): each batch is a
  pickled dict with ``b'data'``, a uint8 ``(N, 3072)`` array holding the 1024
  red, then 1024 green, then 1024 blue values of a 32x32 image, row-major, and
  the labels, a list of N ints: ``b'labels'`` in 0..9 (CIFAR-10) or
  ``b'fine_labels'`` in 0..99 (CIFAR-100, which also has ``b'coarse_labels'``).
  A ``meta`` file (``batches.meta`` for CIFAR-10) is a pickled dict holding the
  class names (``b'label_names'`` / ``b'fine_label_names'``).

Every problem raises :class:`DataError` naming the file and what is wrong.
"""

from __future__ import annotations

import gzip
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np

from swin_gao_lib.errors import DataError

IDX_IMAGES_MAGIC = 0x00000803
IDX_LABELS_MAGIC = 0x00000801


def _read_maybe_gzip(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{path}: the gzip stream is truncated or corrupt ({exc}); "
                        "download the file again") from None


def read_idx(path: str | Path, expect_ndim: int) -> np.ndarray:
    """Read an IDX file of unsigned bytes with ``expect_ndim`` dimensions."""
    path = Path(path)
    data = _read_maybe_gzip(path)
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short for an IDX header")
    zero, dtype_code, ndim = data[0:2], data[2], data[3]
    magic = struct.unpack(">I", data[:4])[0]
    expected_magic = IDX_IMAGES_MAGIC if expect_ndim == 3 else IDX_LABELS_MAGIC
    if zero != b"\x00\x00" or dtype_code != 0x08 or ndim != expect_ndim:
        raise DataError(f"{path}: bad IDX magic number 0x{magic:08x}, expected "
                        f"0x{expected_magic:08x} (unsigned bytes, {expect_ndim} dimension"
                        f"{'s' if expect_ndim > 1 else ''}); is this the right file?")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = int(np.prod(dims))
    body = len(data) - header
    if body != expected:
        kind = "truncated" if body < expected else "has trailing bytes"
        raise DataError(f"{path}: file {kind}: header says {'x'.join(map(str, dims))} = "
                        f"{expected} bytes of data, found {body}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def read_idx_pair(images_path: str | Path, labels_path: str | Path,
                  num_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Read matching IDX image and label files; check counts, 28x28 and label range."""
    images = read_idx(images_path, 3)
    labels = read_idx(labels_path, 1)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, "
                        "expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds "
                        f"{len(labels)} labels")
    if not len(images):
        raise DataError(f"{images_path}: holds no images; download the file again")
    _check_labels(labels, labels_path, num_classes)
    return images, labels


def _check_labels(labels: np.ndarray, path: str | Path, num_classes: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise DataError(f"{path}: label {int(bad)} is outside 0..{num_classes - 1}")


class _ForbiddenObject(pickle.UnpicklingError):
    pass


class _CifarUnpickler(pickle.Unpickler):
    """Unpickle only what a CIFAR batch holds: no arbitrary code from a data file."""

    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy", "ndarray"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy", "dtype"),
                ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
                ("_codecs", "encode")}

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise _ForbiddenObject(f"{module}.{name}")


def _unpickle(path: Path, title: str) -> dict:
    """Load a CIFAR pickle with :class:`_CifarUnpickler`; check that it holds a dict."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        with path.open("rb") as f:
            batch = _CifarUnpickler(f, encoding="bytes").load()
    except _ForbiddenObject as exc:
        raise DataError(f"{path}: holds a pickled {exc}, which no {title} batch contains; "
                        "refusing to load it (a pickle can run code)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, struct.error) as exc:
        raise DataError(f"{path}: not a readable {title} python batch, truncated or corrupt "
                        f"({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict, found {type(batch).__name__}")
    return batch


def read_cifar_batch(path: str | Path, label_key: bytes = b"labels", num_classes: int = 10,
                     title: str = "CIFAR-10") -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR python batch (``data_batch_1``, CIFAR-100's ``train``...): ``(N, 32, 32,
    3)`` uint8 images and their labels (``label_key``), which must lie in ``0 .. num_classes-1``.
    """
    path = Path(path)
    batch = _unpickle(path, title)
    if b"data" not in batch or label_key not in batch:
        raise DataError(f"{path}: expected a dict with b'data' and {label_key!r}, found "
                        f"{sorted(batch)}")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 (N, 3072)")
    if labels.ndim != 1 or len(labels) != len(data):
        raise DataError(f"{path}: {len(data)} images but {labels.size} labels")
    if not len(data):
        raise DataError(f"{path}: holds no images; download the file again")
    _check_labels(labels, path, num_classes)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def read_cifar_meta(path: str | Path, key: bytes, num_classes: int,
                    title: str = "CIFAR-10") -> list[str]:
    """Read the class names of a CIFAR ``meta`` file and check there are ``num_classes``."""
    path = Path(path)
    meta = _unpickle(path, title)
    names = meta.get(key)
    if not isinstance(names, list) or len(names) != num_classes:
        found = f"{len(names)} names" if isinstance(names, list) else f"keys {sorted(meta)}"
        raise DataError(f"{path}: expected {key!r} with {num_classes} class names, found {found}; "
                        f"is this the {title} meta file?")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]
