"""Window geometry of Swin attention (Liu et al., 2021): partition, reverse, shift mask, bias
index.

Attention runs inside non-overlapping ``M x M`` windows of the token grid; every
second block first rolls the grid by ``-s``, and an additive mask (``-100``, as in
the reference code) keeps tokens that the roll brought together from attending to
each other. The constants depend only on the geometry: built once in NumPy.
"""

from __future__ import annotations

import numpy as np
from keras import ops

#: Added to the logits of token pairs that must not attend (softmax -> ~0).
MASK_VALUE = -100.0


def window_partition(x, window_size: int):
    """Cut ``(B, H, W, C)`` into windows ``(B * H/M * W/M, M, M, C)``, row-major."""
    _, height, width, channels = x.shape
    m = window_size
    x = ops.reshape(x, (-1, height // m, m, width // m, m, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, m, m, channels))


def window_reverse(windows, window_size: int, height: int, width: int):
    """Inverse of :func:`window_partition`: windows back to ``(B, H, W, C)``."""
    m = window_size
    channels = windows.shape[-1]
    x = ops.reshape(windows, (-1, height // m, width // m, m, m, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def relative_position_index(window_size: int) -> np.ndarray:
    """Index into the ``(2M-1)^2`` bias table for every token pair of a window.

    For tokens ``i = (yi, xi)`` and ``j = (yj, xj)`` the offset
    ``(yi - yj, xi - xj)`` lies in ``[-(M-1), M-1]^2``; shifting by ``M-1`` and
    flattening row-major gives ``(yi-yj+M-1) * (2M-1) + (xi-xj+M-1)``.
    Returns an int32 array of shape ``(M*M, M*M)``.
    """
    m = window_size
    coords = np.stack(np.meshgrid(np.arange(m), np.arange(m), indexing="ij")).reshape(2, -1)
    rel = coords[:, :, None] - coords[:, None, :] + (m - 1)  # (2, M*M, M*M)
    return (rel[0] * (2 * m - 1) + rel[1]).astype("int32")


def shifted_window_mask(height: int, width: int, window_size: int, shift_size: int) -> np.ndarray:
    """Additive attention mask for a grid rolled by ``-shift_size``.

    Each axis splits into three regions, ``[0, H-M)``, ``[H-M, H-s)``,
    ``[H-s, H)``: after the roll the last region holds rows that wrapped round
    from the top of the image. Tokens may attend only within one region pair.
    Returns float32 ``(num_windows, M*M, M*M)`` holding 0 or :data:`MASK_VALUE`.
    """
    m, s = window_size, shift_size
    region = np.zeros((height, width), dtype=np.int32)
    cuts = (slice(0, -m), slice(-m, -s), slice(-s, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            region[hs, ws] = label
            label += 1
    ids = region.reshape(height // m, m, width // m, m).transpose(0, 2, 1, 3).reshape(-1, m * m)
    differ = ids[:, :, None] != ids[:, None, :]
    return np.where(differ, MASK_VALUE, 0.0).astype("float32")
