"""Train, validation and test splits as uint8 arrays (no TensorFlow: a bad data file or an
empty split is reported before the backend starts).

Under ``image_handling: pad32`` the 28x28 digits are zero-padded by 2 pixels to 32x32
(exact: they sit in a zero border). Validation is carved from train by a permutation
keyed by the seed alone, so it is the same for every run with that seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.sources import RawData, load_raw
from swin_gao_lib.errors import DataError


@dataclass
class Splits:
    """uint8 arrays of the three splits, already at the model's input size."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    description: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "validation": len(self.y_val), "test": len(self.y_test)}


def fit_geometry(x: np.ndarray, cfg: RunConfig) -> np.ndarray:
    """Bring images to ``cfg.input_shape`` (zero-pad 28x28 to 32x32 under pad32)."""
    h, w, _ = cfg.input_shape
    dh, dw = h - x.shape[1], w - x.shape[2]
    if dh == dw == 0:
        return x
    return np.pad(x, ((0, 0), (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2), (0, 0)))


def split(raw: RawData, cfg: RunConfig) -> Splits:
    """Pad, carve validation from train by seed, and apply the sample limits."""
    n = len(raw.y_train)
    perm = np.random.default_rng(cfg.seed).permutation(n)
    n_val = int(round(n * cfg.validation_split))
    val_idx, train_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    if cfg.max_train_samples is not None:
        train_idx = train_idx[: cfg.max_train_samples]
    x_test, y_test = raw.x_test, raw.y_test
    if cfg.max_test_samples is not None:
        x_test, y_test = x_test[: cfg.max_test_samples], y_test[: cfg.max_test_samples]
    if not len(train_idx):
        raise DataError(f"validation_split: {cfg.validation_split} of {n} training images leaves "
                        "none to train on; lower validation_split")
    if not len(y_test):
        raise DataError(f"{raw.description}: holds no test images")
    return Splits(fit_geometry(raw.x_train[train_idx], cfg), raw.y_train[train_idx],
                  fit_geometry(raw.x_train[val_idx], cfg), raw.y_train[val_idx],
                  fit_geometry(x_test, cfg), y_test, raw.description)


def load_splits(cfg: RunConfig) -> Splits:
    """Load the data set of ``cfg`` from its source and split it."""
    return split(load_raw(cfg.dataset, cfg.source), cfg)
