"""From raw uint8 arrays to tf.data pipelines: geometry, split, augmentation.

* **28x28 digits.** With ``image_handling: pad32`` (the default) MNIST and
  Fashion-MNIST are zero-padded by 2 pixels on each side to 32x32, so the
  model's geometry (16x16 patch grid, windows of 2, one merge to 8x8) is the
  same as for CIFAR-10 and only the channel count differs. The pad is exact:
  MNIST's digits are centred in a 20x20 box with a zero border, so padding
  adds more of the same background. ``native`` keeps 28x28; then the patch and
  window sizes must divide 28 and the grids below it (validated in config).
* **Validation** is carved from train by a seeded permutation (so it is the
  same for every run with that seed, whatever the accumulation). Test data is
  used for the final test only.
* **Pipeline.** Images stay uint8 in memory; each *batch* is then scaled to
  [0, 1], randomly cropped after zero-padding by ``crop_padding`` pixels
  (every image its own offset) and, where the data-set registry allows it
  (photos: CIFAR-10/100), flipped left-right (digits are not mirror-symmetric). Shuffling is reseeded every epoch,
  augmentation randomness comes from a seeded stream, and batches are
  prefetched. Labels are one-hot, which label smoothing needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from swin_gao_lib import datasets
from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.sources import RawData, load_raw


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


@dataclass
class Datasets:
    """The tf.data pipelines of a run, and the sizes behind them."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    test: tf.data.Dataset
    splits: Splits
    train_eval: tf.data.Dataset | None = None  # train images, un-augmented, in file order


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
    return Splits(
        fit_geometry(raw.x_train[train_idx], cfg), raw.y_train[train_idx],
        fit_geometry(raw.x_train[val_idx], cfg), raw.y_train[val_idx],
        fit_geometry(x_test, cfg), y_test, raw.description,
    )


def random_crop_flip(images: tf.Tensor, seed: tf.Tensor, padding: int, flip: bool) -> tf.Tensor:
    """Per-image random crop (after zero padding) and optional left-right flip.

    ``images`` is a float batch ``(b, H, W, C)``; ``seed`` a shape-(2,) int
    seed for stateless ops, so the result is a pure function of its inputs.
    The crop picks rows ``oy..oy+H`` and columns ``ox..ox+W`` of the padded
    image with a per-image ``(oy, ox)``, via two batched gathers.
    """
    b = tf.shape(images)[0]
    h, w = images.shape[1], images.shape[2]
    if padding:
        padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
        offsets = tf.random.stateless_uniform((b, 2), seed, 0, 2 * padding + 1, dtype=tf.int32)
        rows = offsets[:, :1] + tf.range(h)[None, :]
        cols = offsets[:, 1:] + tf.range(w)[None, :]
        images = tf.gather(padded, rows, axis=1, batch_dims=1)
        images = tf.gather(images, cols, axis=2, batch_dims=1)
    if flip:
        coin = tf.random.stateless_uniform((b,), seed[::-1], 0.0, 1.0) < 0.5
        images = tf.where(coin[:, None, None, None], images[:, :, ::-1, :], images)
    return images


def _scaler(num_classes: int):
    """uint8 images to [0, 1] floats, integer labels to one-hot rows of ``num_classes``."""
    def to_model(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(x, tf.float32) / 255.0, tf.one_hot(tf.cast(y, tf.int32), num_classes)
    return to_model


def train_pipeline(x: np.ndarray, y: np.ndarray, cfg: RunConfig, batch_size: int) -> tf.data.Dataset:
    """Shuffled (reseeded every epoch), augmented, batched and prefetched train data."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(y), seed=cfg.seed, reshuffle_each_iteration=True).batch(batch_size)
    flip = datasets.get(cfg.dataset).flip
    to_model = _scaler(cfg.num_classes)
    if cfg.augment:
        seeds = tf.data.Dataset.random(seed=cfg.seed, rerandomize_each_iteration=True).batch(2)

        def augment(batch, seed):
            xb, yb = to_model(*batch)
            return random_crop_flip(xb, seed, cfg.crop_padding, flip), yb

        ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        ds = ds.map(to_model, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def eval_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int,
                  num_classes: int = 10) -> tf.data.Dataset:
    """Batched, scaled, un-augmented data in file order."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return ds.map(_scaler(num_classes),
                  num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_datasets(cfg: RunConfig, raw: RawData | None = None) -> Datasets:
    """Load (unless ``raw`` is given), split and wrap the data of a run."""
    raw = raw if raw is not None else load_raw(cfg.dataset, cfg.source)
    s = split(raw, cfg)
    # Evaluation runs at the micro-batch size so it never needs more memory than training.
    eval_bs, k = cfg.micro_batch_size, cfg.num_classes
    return Datasets(
        train=train_pipeline(s.x_train, s.y_train, cfg, cfg.fit_batch_size),
        validation=eval_pipeline(s.x_val, s.y_val, eval_bs, k) if len(s.y_val) else None,
        test=eval_pipeline(s.x_test, s.y_test, eval_bs, k),
        train_eval=eval_pipeline(s.x_train, s.y_train, eval_bs, k),
        splits=s,
    )
