"""Data on the device (JAX): uint8 splits uploaded once, batches made inside the program.

``pipeline: device`` keeps a run's splits on the accelerator (:class:`DeviceSplits`)
and makes every batch inside the compiled epoch program
(:mod:`swin_gao_lib.training.epoch_program`) with the pure, ``vmap``-able functions
below, by the rules of :mod:`swin_gao_lib.data.pipeline` with JAX's draws: epoch
``e``'s order is keyed by ``fold_in(fold_in(key(seed), ORDER), e)``, batch ``k``'s
crops and flips by ``fold_in(fold_in(fold_in(key(seed), AUGMENT), e), k)``. An
epoch's last batch may be shorter (a program of its own size). No TensorFlow here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from swin_gao_lib.config import RunConfig, datasets
from swin_gao_lib.data.splits import Splits

#: Streams folded into a seed's key, so the order and the augmentation never share a draw.
ORDER, AUGMENT = 1, 2


@dataclass(frozen=True)
class BatchRules:
    """What a batch needs from the config (static: part of the compiled program)."""

    num_classes: int
    augment: bool
    padding: int
    flip: bool

    @classmethod
    def of(cls, cfg: RunConfig) -> "BatchRules":
        return cls(cfg.num_classes, cfg.augment, cfg.crop_padding,
                   datasets.get(cfg.dataset).flip)


@dataclass
class DeviceSplits:
    """A run's splits on the device in one array (one evaluation program serves all three).

    ``x``: uint8 images, ``y``: int32 labels, of train, validation and test back to
    back, then ``pad`` zero rows so that no batch read at a split's end runs past the
    array. Side by side, a leading seed axis (the test images repeat in every row).
    """

    x: Any
    y: Any
    n_train: int
    n_val: int
    n_test: int

    def span(self, split: str) -> tuple[int, int]:
        """``(start, count)`` of ``split`` (train, validation or test) in ``x``."""
        starts = {"train": (0, self.n_train), "validation": (self.n_train, self.n_val),
                  "test": (self.n_train + self.n_val, self.n_test)}
        return starts[split]

    @classmethod
    def upload(cls, splits: Splits | list[Splits], pad: int) -> "DeviceSplits":
        """Put ``splits`` on the default device once (``pad``: the largest batch read).

        A list (one configuration's seeds side by side) is stacked on a leading axis;
        its splits must have equal sizes and the same test images.
        """
        import jax.numpy as jnp

        many = isinstance(splits, list)
        group = splits if many else [splits]
        sizes = {tuple(s.sizes().values()) for s in group}
        if len(sizes) != 1:
            raise ValueError(f"splits side by side must have equal sizes, got {sorted(sizes)}")
        if any(not np.array_equal(s.x_test, group[0].x_test) for s in group[1:]):
            raise ValueError("splits side by side must share their test images")

        def joined(s: Splits) -> tuple[np.ndarray, np.ndarray]:
            x = np.concatenate([s.x_train, s.x_val, s.x_test]).astype(np.uint8, copy=False)
            y = np.concatenate([s.y_train, s.y_val, s.y_test]).astype(np.int32)
            return (np.concatenate([x, np.zeros((pad, *x.shape[1:]), np.uint8)]),
                    np.concatenate([y, np.zeros(pad, np.int32)]))

        xs, ys = zip(*(joined(s) for s in group))
        x, y = (np.stack(xs), np.stack(ys)) if many else (xs[0], ys[0])
        n = group[0].sizes()
        return cls(jnp.asarray(x), jnp.asarray(y), n["train"], n["validation"], n["test"])


def seed_key(seed: Any, stream: int) -> Any:
    """The key of one random stream of a run: ``fold_in(key(seed), stream)``."""
    import jax

    return jax.random.fold_in(jax.random.key(seed.astype("uint32") if hasattr(seed, "astype")
                                             else np.uint32(seed)), stream)


def epoch_order(seed: Any, epoch: Any, n: int) -> Any:
    """Epoch ``epoch``'s order of ``n`` images: a permutation keyed by ``(seed, epoch)``."""
    import jax

    return jax.random.permutation(jax.random.fold_in(seed_key(seed, ORDER), epoch), n)


def augment(images: Any, key: Any, padding: int, flip: bool) -> Any:
    """Per-image random crop (offset ``(oy, ox)`` in ``[0, 2 padding]``, after zero padding)
    and optional left-right flip of a float batch ``(b, H, W, C)``."""
    import jax
    import jax.numpy as jnp

    b, h, w, c = images.shape
    k_crop, k_flip = jax.random.split(key)
    if padding:
        padded = jnp.pad(images, [(0, 0), (padding, padding), (padding, padding), (0, 0)])
        offsets = jax.random.randint(k_crop, (b, 2), 0, 2 * padding + 1)
        images = jax.vmap(lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, c)))(
            padded, offsets)
    if flip:
        coin = jax.random.bernoulli(k_flip, 0.5, (b,))
        images = jnp.where(coin[:, None, None, None], images[:, :, ::-1, :], images)
    return images


def to_model(x: Any, y: Any, num_classes: int) -> tuple[Any, Any]:
    """uint8 images to float32 in [0, 1]; integer labels to one-hot float32 rows."""
    import jax
    import jax.numpy as jnp

    return x.astype(jnp.float32) / jnp.float32(255.0), jax.nn.one_hot(y, num_classes,
                                                                     dtype=jnp.float32)


def train_batch(x: Any, y: Any, order: Any, seed: Any, epoch: Any, k: Any, start: Any,
                size: int, rules: BatchRules) -> tuple[Any, Any]:
    """Batch ``k`` of an epoch: ``size`` rows of ``order`` from ``start``, scaled, augmented.

    ``size`` is static (a shape); ``seed``, ``epoch``, ``k`` and ``start`` may be traced.
    """
    import jax

    rows = jax.lax.dynamic_slice_in_dim(order, start, size)
    xb, yb = to_model(x[rows], y[rows], rules.num_classes)
    if rules.augment:
        key = jax.random.fold_in(jax.random.fold_in(seed_key(seed, AUGMENT), epoch), k)
        xb = augment(xb, key, rules.padding, rules.flip)
    return xb, yb


def eval_batch(x: Any, y: Any, start: Any, size: int, num_classes: int) -> tuple[Any, Any]:
    """Rows ``start .. start + size`` in file order, scaled, not augmented (``start`` may be
    traced; :class:`DeviceSplits` pads the array's end)."""
    import jax

    return to_model(jax.lax.dynamic_slice_in_dim(x, start, size),
                    jax.lax.dynamic_slice_in_dim(y, start, size), num_classes)
