"""The input pipeline without TensorFlow: NumPy batches in a ``keras.utils.PyDataset`` (JAX).

The rules of :mod:`swin_gao_lib.data.pipeline`, drawn with NumPy (``PCG64`` keyed by
the same keys), so the backends see the same kind of batches, not the same ones:
epoch ``e``'s order is keyed by ``(seed, e)``, batch ``k``'s crops and flips by
``(seed, (e + 1) * AUGMENT_STRIDE + k)``; every batch is a pure function of its index.
"""

from __future__ import annotations

import keras
import numpy as np

from swin_gao_lib.config import RunConfig, datasets

#: Augmentation keys are ``[seed, (epoch + 1) * AUGMENT_STRIDE + batch]``; epochs and batches
#: per epoch stay below the stride (config limits), so no two draws of a run share a key.
AUGMENT_STRIDE = 2**20


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches in one pass over ``n`` images (the last one may be short)."""
    return -(-n // batch_size)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order of epoch ``epoch``'s ``n`` images: a permutation keyed by ``(seed, epoch)``."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def to_model(x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images to float32 in [0, 1], integer labels to one-hot float32 rows."""
    return (x.astype(np.float32) / np.float32(255.0),
            np.eye(num_classes, dtype=np.float32)[y.astype(np.int64)])


def random_crop_flip(images: np.ndarray, key: list[int], padding: int,
                     flip: bool) -> np.ndarray:
    """Per-image random crop (after zero padding) and optional left-right flip.

    ``images``: a float batch ``(b, H, W, C)``; offsets and coins are drawn from a
    generator keyed by ``key``. Image ``i`` is rows ``oy..oy+H``, columns ``ox..ox+W``
    of its padded self, all in one gather.
    """
    b, h, w, _ = images.shape
    rng = np.random.default_rng(key)
    if padding:
        padded = np.pad(images, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
        offsets = rng.integers(0, 2 * padding + 1, size=(b, 2))
        rows = offsets[:, :1] + np.arange(h)[None, :]          # (b, H)
        cols = offsets[:, 1:] + np.arange(w)[None, :]          # (b, W)
        images = padded[np.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
    if flip:
        coin = rng.random(b) < 0.5
        images = np.where(coin[:, None, None, None], images[:, :, ::-1, :], images)
    return images


class TrainBatches(keras.utils.PyDataset):
    """Epochs ``first_epoch .. epochs-1`` of shuffled, augmented batches, back to back.

    Item ``i`` is batch ``i % steps`` of epoch ``first_epoch + i // steps``
    (``epochs=None``: no end). Feed it to ``fit`` with ``steps_per_epoch`` and
    ``shuffle=False`` (Keras would otherwise shuffle a PyDataset's batch order).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, cfg: RunConfig, batch_size: int,
                 first_epoch: int = 0, epochs: int | None = None):
        # One worker: Keras's multi-worker enqueuer restarts a finite sequence at every
        # epoch end, which breaks "item i is batch i % steps of epoch i // steps".
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.batch_size = x, y, batch_size
        self.seed, self.first_epoch, self.epochs = cfg.seed, first_epoch, epochs
        self.num_classes, self.augment = cfg.num_classes, cfg.augment
        self.padding, self.flip = cfg.crop_padding, datasets.get(cfg.dataset).flip
        self.steps = steps_per_epoch(len(y), batch_size)
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def num_batches(self) -> int | None:
        if self.epochs is None:
            return None
        return self.steps * max(self.epochs - self.first_epoch, 0)

    def __len__(self) -> int:
        n = self.num_batches
        if n is None:
            raise TypeError("an endless TrainBatches has no length")
        return n

    def order(self, epoch: int) -> np.ndarray:
        """Epoch ``epoch``'s permutation (cached for the epoch being read; thread-safe)."""
        cached = self._order
        if cached is None or cached[0] != epoch:
            cached = (epoch, epoch_order(len(self.y), self.seed, epoch))
            self._order = cached
        return cached[1]

    def batch(self, epoch: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``k`` of epoch ``epoch``."""
        rows = self.order(epoch)[k * self.batch_size:(k + 1) * self.batch_size]
        xb, yb = to_model(self.x[rows], self.y[rows], self.num_classes)
        if self.augment:
            xb = random_crop_flip(xb, [self.seed, (epoch + 1) * AUGMENT_STRIDE + k],
                                  self.padding, self.flip)
        return xb, yb

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.batch(self.first_epoch + i // self.steps, i % self.steps)


class EvalBatches(keras.utils.PyDataset):
    """Batched, scaled, un-augmented data in file order."""

    def __init__(self, x: np.ndarray, y: np.ndarray, batch_size: int, num_classes: int = 10):
        super().__init__(workers=1, use_multiprocessing=False)
        self.x, self.y, self.batch_size, self.num_classes = x, y, batch_size, num_classes

    def __len__(self) -> int:
        return steps_per_epoch(len(self.y), self.batch_size)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s = slice(i * self.batch_size, (i + 1) * self.batch_size)
        return to_model(self.x[s], self.y[s], self.num_classes)
