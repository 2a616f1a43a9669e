"""From split uint8 arrays to the batches ``fit`` reads: scaling, augmentation, batches.

On TensorFlow they are tf.data pipelines (this module); on JAX, NumPy batches in
a ``keras.utils.PyDataset`` (:mod:`swin_gao_lib.data.arrays`, the same rules,
no TensorFlow import): :func:`make_datasets` picks by the Keras backend.

Splitting and padding live in :mod:`swin_gao_lib.data.splits` (no TensorFlow).
Images stay uint8 in memory; each *batch* is then scaled to [0, 1], randomly
cropped after zero-padding by ``crop_padding`` pixels (every image its own
offset) and, where the data-set registry allows it (photos: CIFAR-10/100),
flipped left-right (digits are not mirror-symmetric). Batches are prefetched;
labels are one-hot, which label smoothing needs.

tf.data's autotuning is off (:func:`_without_autotune`): its optimisation
thread sleeps for up to a minute between rounds once a pipeline has run that
long, and destroying the iterator waits for it to wake, so every ``fit``
longer than a minute or so ended with a wait of 0-60 s (``fit_wall_s`` minus
the epochs' ``epoch_s`` in ``metrics.json``; benchmarks/tfdata_teardown.py
measures it). The batches are the same either way: each is a pure function of
its key.

The order and the crops of epoch ``e`` are stateless draws keyed by
``(seed, e)`` (:func:`train_pipeline`): they do not depend on what ran
before, so a resumed run continues with exactly the batches it would have
seen without the interruption.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from swin_gao_lib.config import datasets
from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.arrays import AUGMENT_STRIDE, EvalBatches, TrainBatches, steps_per_epoch
from swin_gao_lib.data.sources import RawData
from swin_gao_lib.data.splits import Splits, load_splits, split

if TYPE_CHECKING:
    import tensorflow as tf

#: Batches prepared ahead of the one being trained on (tf.data pipelines).
PREFETCH = 2

__all__ = ["AUGMENT_STRIDE", "Datasets", "eval_pipeline", "make_datasets", "random_crop_flip",
           "steps_per_epoch", "train_pipeline"]


@dataclass
class Datasets:
    """The pipelines of a run (tf.data, or PyDatasets on JAX), and the sizes behind them."""

    train: Any  # every remaining epoch, back to back
    steps_per_epoch: int
    validation: Any | None
    test: Any
    splits: Splits
    train_eval: Any | None = None  # train images, un-augmented, in file order

    def epoch(self, cfg: RunConfig, e: int) -> Any:
        """The batches of epoch ``e`` alone (what ``fit`` sees as that epoch)."""
        if _numpy_pipeline():
            return TrainBatches(self.splits.x_train, self.splits.y_train, cfg,
                                cfg.fit_batch_size, e, e + 1)
        return train_pipeline(self.splits.x_train, self.splits.y_train, cfg,
                              cfg.fit_batch_size, e, e + 1)


def _numpy_pipeline() -> bool:
    """Whether this process feeds NumPy batches (JAX backend: TensorFlow may be absent)."""
    return keras.backend.backend() != "tensorflow"


def random_crop_flip(images: tf.Tensor, seed: tf.Tensor, padding: int, flip: bool) -> tf.Tensor:
    """Per-image random crop (after zero padding) and optional left-right flip.

    ``images`` is a float batch ``(b, H, W, C)``; ``seed`` a shape-(2,) int
    seed for stateless ops, so the result is a pure function of its inputs.
    The crop picks rows ``oy..oy+H`` and columns ``ox..ox+W`` of the padded
    image with a per-image ``(oy, ox)``, via two batched gathers.
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
    """Epochs ``first_epoch .. epochs-1`` of shuffled, augmented batches, one after another.

    Epoch ``e`` is a pure function of ``(seed, e)``: its order is a stateless
    shuffle keyed by ``[seed, e]`` and its crops and flips are drawn with a key
    per batch. It does not depend on how many passes came before or on how
    Keras makes its iterators, so a run resumed at epoch ``k`` (``first_epoch=k``)
    sees exactly the batches an uninterrupted run sees. ``epochs=None``: no end.
    Feed it to ``fit`` with ``steps_per_epoch`` (:func:`steps_per_epoch`).
    Augmentation seeds are ``[seed, (epoch + 1) * AUGMENT_STRIDE + batch]``.
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
    """``ds`` with tf.data's autotuning off (see the module docstring for why).

    Parallel maps then run on ``min(16, cores)`` threads, the value autotuning
    starts from; the prefetch buffer holds :data:`PREFETCH` batches.
    """
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
    train, evaluate = ((TrainBatches, EvalBatches) if _numpy_pipeline()
                       else (train_pipeline, eval_pipeline))
    return Datasets(
        train=train(s.x_train, s.y_train, cfg, cfg.fit_batch_size, first_epoch, cfg.epochs),
        steps_per_epoch=steps_per_epoch(len(s.y_train), cfg.fit_batch_size),
        validation=evaluate(s.x_val, s.y_val, eval_bs, k) if len(s.y_val) else None,
        test=evaluate(s.x_test, s.y_test, eval_bs, k),
        train_eval=evaluate(s.x_train, s.y_train, eval_bs, k),
        splits=s,
    )
