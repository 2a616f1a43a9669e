"""The batches ``fit`` reads: tf.data pipelines on TensorFlow (here), NumPy PyDatasets on JAX
(:mod:`swin_gao_lib.data.arrays`); :func:`make_datasets` picks by the Keras backend.

Images stay uint8 in memory; each batch is scaled to [0, 1], randomly cropped after
zero padding by ``crop_padding`` pixels (every image its own offset), flipped
left-right where the registry allows it (photos, not digits); labels are one-hot
(label smoothing needs them). Epoch ``e``'s order and crops are stateless draws keyed
by ``(seed, e)``, so a resumed run sees exactly the batches of an uninterrupted one.

tf.data's autotuning is off: its thread sleeps up to a minute between rounds, and
the iterator's destructor waits for it, so a long ``fit`` ended with a 0-60 s wait
(benchmarks/tfdata_teardown.py). The batches are the same either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from swin_gao_lib.config import RunConfig, datasets
from swin_gao_lib.data.arrays import AUGMENT_STRIDE, EvalBatches, TrainBatches, steps_per_epoch
from swin_gao_lib.data.sources import RawData
from swin_gao_lib.data.splits import Splits, load_splits, split

if TYPE_CHECKING:
    import tensorflow as tf

#: Batches prepared ahead of the one being trained on (tf.data pipelines).
PREFETCH = 2


@dataclass
class Datasets:
    """The pipelines of a run (tf.data, or PyDatasets on JAX), and the sizes behind them."""

    train: Any  # every remaining epoch, back to back
    steps_per_epoch: int
    validation: Any | None
    test: Any
    splits: Splits
    train_eval: Any | None = None  # train images, un-augmented, in file order


def random_crop_flip(images: tf.Tensor, seed: tf.Tensor, padding: int, flip: bool) -> tf.Tensor:
    """Per-image random crop (after zero padding) and optional left-right flip.

    ``images``: a float batch ``(b, H, W, C)``; ``seed``: a shape-(2,) stateless seed.
    Image ``i`` is rows ``oy..oy+H`` and columns ``ox..ox+W`` of its padded self.
    """
    import tensorflow as tf

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
    import tensorflow as tf

    def to_model(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        return tf.cast(x, tf.float32) / 255.0, tf.one_hot(tf.cast(y, tf.int32), num_classes)
    return to_model


def train_pipeline(x: np.ndarray, y: np.ndarray, cfg: RunConfig, batch_size: int,
                   first_epoch: int = 0, epochs: int | None = None) -> tf.data.Dataset:
    """Epochs ``first_epoch .. epochs-1`` (``None``: no end) of shuffled, augmented batches.

    Epoch ``e``'s order is a stateless shuffle keyed by ``[seed, e]``, batch ``k``'s
    crops and flips are keyed by ``[seed, (e + 1) * AUGMENT_STRIDE + k]``. Feed it to
    ``fit`` with :func:`steps_per_epoch`.
    """
    import tensorflow as tf

    n = len(y)
    images, labels = tf.constant(x), tf.constant(y)
    flip = datasets.get(cfg.dataset).flip
    to_model = _scaler(cfg.num_classes)
    seed = tf.constant(cfg.seed, tf.int64)
    steps = steps_per_epoch(n, batch_size)

    def one_epoch(epoch):
        order = tf.random.experimental.stateless_shuffle(tf.range(n), seed=tf.stack([seed, epoch]))
        batches = tf.data.Dataset.zip((tf.data.Dataset.from_tensor_slices(order).batch(batch_size),
                                       tf.data.Dataset.range(steps)))

        def load(rows, b):
            xb, yb = to_model(tf.gather(images, rows), tf.gather(labels, rows))
            if cfg.augment:
                key = tf.stack([seed, (epoch + 1) * AUGMENT_STRIDE + b])
                xb = random_crop_flip(xb, key, cfg.crop_padding, flip)
            return xb, yb

        return batches.map(load, num_parallel_calls=tf.data.AUTOTUNE)

    last = epochs if epochs is not None else 2**62
    return _without_autotune(
        tf.data.Dataset.range(first_epoch, last, output_type=tf.int64).flat_map(one_epoch)
        .prefetch(PREFETCH))


def eval_pipeline(x: np.ndarray, y: np.ndarray, batch_size: int,
                  num_classes: int = 10) -> tf.data.Dataset:
    """Batched, scaled, un-augmented data in file order."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    return _without_autotune(ds.map(_scaler(num_classes), num_parallel_calls=tf.data.AUTOTUNE)
                             .prefetch(PREFETCH))


def _without_autotune(ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with tf.data's autotuning off (module docstring): parallel maps run on
    ``min(16, cores)`` threads."""
    import tensorflow as tf

    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def make_datasets(cfg: RunConfig, raw: RawData | None = None, splits: Splits | None = None,
                  first_epoch: int = 0) -> Datasets:
    """Wrap the data of a run in pipelines: from ``splits``, else ``raw``, else loaded.

    tf.data on TensorFlow, NumPy ``PyDataset``s on JAX (no TensorFlow import).
    ``train`` holds the epochs ``first_epoch .. cfg.epochs - 1`` back to back.
    """
    s = splits if splits is not None else (split(raw, cfg) if raw is not None else load_splits(cfg))
    # Evaluation runs at the micro-batch size so it never needs more memory than training.
    eval_bs, k = cfg.micro_batch_size, cfg.num_classes
    # NumPy batches off TensorFlow (JAX: TensorFlow may be absent)
    train, evaluate = ((TrainBatches, EvalBatches) if keras.backend.backend() != "tensorflow"
                       else (train_pipeline, eval_pipeline))
    return Datasets(
        train=train(s.x_train, s.y_train, cfg, cfg.fit_batch_size, first_epoch, cfg.epochs),
        steps_per_epoch=steps_per_epoch(len(s.y_train), cfg.fit_batch_size),
        validation=evaluate(s.x_val, s.y_val, eval_bs, k) if len(s.y_val) else None,
        test=evaluate(s.x_test, s.y_test, eval_bs, k),
        train_eval=evaluate(s.x_train, s.y_train, eval_bs, k),
        splits=s,
    )
