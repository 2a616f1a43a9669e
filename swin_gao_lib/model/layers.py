"""The layers of a Swin Transformer, as Keras 3 layers built on ``keras.ops``.

Token tensors are ``(batch, h * w, C)``, the grid row-major; a layer that needs the
grid is given its ``(h, w)`` at construction, so shapes stay static.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from swin_gao_lib.model.windows import (
    relative_position_index,
    shifted_window_mask,
    window_partition,
    window_reverse,
)

_PACKAGE = "swin_gao"


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PatchEmbedding(layers.Layer):
    """Cut an image into ``p x p`` patches and project each to ``embed_dim``.

    ``(B, H, W, C) -> (B, H/p * W/p, embed_dim)``; a patch is flattened row-major,
    channels last (``tf.image.extract_patches``'s layout). ``absolute_position``: a
    learned embedding of each patch index is added, as in the keras-io example.
    """

    def __init__(self, patch_size: int, embed_dim: int, absolute_position: bool = True, **kwargs):
        super().__init__(**kwargs)
        _check(patch_size >= 1, f"patch_size must be >= 1, got {patch_size}")
        _check(embed_dim >= 1, f"embed_dim must be >= 1, got {embed_dim}")
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.absolute_position = absolute_position
        self.proj = layers.Dense(embed_dim, name="proj")

    def build(self, input_shape):
        _, h, w, c = input_shape
        p = self.patch_size
        _check(h % p == 0 and w % p == 0, f"patch_size {p} must divide the {h}x{w} input")
        self.grid = (h // p, w // p)
        self.proj.build((None, None, p * p * c))
        if self.absolute_position:
            self.position = self.add_weight(
                shape=(self.grid[0] * self.grid[1], self.embed_dim),
                initializer=keras.initializers.RandomUniform(-0.05, 0.05),
                name="position_embedding",
            )

    def call(self, images):
        _, h, w, c = images.shape
        p = self.patch_size
        x = ops.reshape(images, (-1, h // p, p, w // p, p, c))
        x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
        x = ops.reshape(x, (-1, (h // p) * (w // p), p * p * c))
        x = self.proj(x)
        if self.absolute_position:
            x = x + self.position
        return x

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, (h // self.patch_size) * (w // self.patch_size), self.embed_dim)

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size,
                "embed_dim": self.embed_dim, "absolute_position": self.absolute_position}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class DropPath(layers.Layer):
    """Stochastic depth: in training each sample's residual branch is kept with probability
    ``1 - rate`` and scaled by ``1 / (1 - rate)``; the identity at inference (keras-io's
    element-wise ``Dropout`` here is a different regulariser)."""

    def __init__(self, rate: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _check(0.0 <= rate < 1.0, f"DropPath rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = keras.random.uniform(shape, seed=self.seed_generator, dtype=x.dtype) < keep
        return ops.where(mask, x / keep, ops.zeros_like(x))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WindowAttention(layers.Layer):
    """Multi-head self-attention inside each window, with relative position bias.

    For one window of ``n = M*M`` tokens and head dimension ``d``::

        Attention(Q, K, V) = softmax(Q K^T / sqrt(d) + B + mask) V

    ``B[i, j] = table[index[i, j]]``, a learned bias per head depending only on the
    offset of tokens ``i`` and ``j`` (:func:`relative_position_index`); ``mask``: 0
    or -100 per pair. Input ``(B*nW, n, C)``; ``attention_mask`` ``(nW, n, n)`` or None.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 attention_dropout: float = 0.0, dropout: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        _check(num_heads >= 1 and dim % num_heads == 0,
               f"num_heads ({num_heads}) must divide dim ({dim})")
        _check(window_size >= 1, f"window_size must be >= 1, got {window_size}")
        self.dim = dim
        self.window_size = window_size
        self.num_heads = num_heads
        self.qkv_bias = qkv_bias
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = layers.Dense(dim * 3, use_bias=qkv_bias, name="qkv")
        self.proj = layers.Dense(dim, name="proj")
        self.attn_drop = layers.Dropout(attention_dropout)
        self.proj_drop = layers.Dropout(dropout)
        # Bias lookup as a matmul with a one-hot matrix, not a gather: Keras's Adam squares a
        # gather's IndexedSlices gradient slice by slice (docs/model.md).
        index = relative_position_index(window_size).reshape(-1)
        self.index_one_hot = np.eye((2 * window_size - 1) ** 2, dtype="float32")[index]

    def build(self, input_shape):
        m = self.window_size
        self.bias_table = self.add_weight(
            shape=((2 * m - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            name="relative_position_bias_table",
        )
        self.qkv.build((None, None, self.dim))
        self.proj.build((None, None, self.dim))

    def call(self, x, attention_mask=None, training=None):
        n, c = x.shape[1], x.shape[2]
        h, d = self.num_heads, c // self.num_heads
        qkv = ops.reshape(self.qkv(x), (-1, n, 3, h, d))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))  # (3, B*nW, heads, n, d)
        q, k, v = qkv[0] * self.scale, qkv[1], qkv[2]
        attn = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))  # (B*nW, heads, n, n)
        # compute dtype: under a mixed policy the table is read (autocast) in bfloat16
        one_hot = ops.convert_to_tensor(self.index_one_hot, dtype=self.compute_dtype)
        bias = ops.matmul(one_hot, self.bias_table)  # (n*n, heads): table[index]
        bias = ops.transpose(ops.reshape(bias, (n, n, h)), (2, 0, 1))
        attn = attn + ops.expand_dims(bias, 0)
        if attention_mask is not None:
            n_windows = attention_mask.shape[0]
            attn = ops.reshape(attn, (-1, n_windows, h, n, n)) + attention_mask[None, :, None, :, :]
            attn = ops.reshape(attn, (-1, h, n, n))
        attn = self.attn_drop(ops.softmax(attn, axis=-1), training=training)
        out = ops.transpose(ops.matmul(attn, v), (0, 2, 1, 3))
        out = ops.reshape(out, (-1, n, c))
        return self.proj_drop(self.proj(out), training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "window_size": self.window_size,
                "num_heads": self.num_heads, "qkv_bias": self.qkv_bias,
                "attention_dropout": self.attention_dropout, "dropout": self.dropout}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SwinBlock(layers.Layer):
    """One Swin Transformer block on an ``h x w`` token grid.

    ``x = x + DropPath(W-MSA(LN(x)))`` then ``x = x + DropPath(MLP(LN(x)))``, W-MSA
    being window attention after a cyclic shift of ``-shift_size`` (undone after). A
    window covering the grid is clamped to it, with shift 0, as in the reference code.
    """

    def __init__(self, dim: int, grid: tuple[int, int] | list[int], num_heads: int,
                 window_size: int = 7, shift_size: int = 0, mlp_dim: int = 1024,
                 qkv_bias: bool = True, dropout: float = 0.0, attention_dropout: float = 0.0,
                 drop_path: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        grid = tuple(int(g) for g in grid)
        if min(grid) <= window_size:
            window_size, shift_size = min(grid), 0
        _check(0 <= shift_size < window_size,
               f"shift_size must be in [0, window_size={window_size}), got {shift_size}")
        _check(grid[0] % window_size == 0 and grid[1] % window_size == 0,
               f"window_size {window_size} must divide the {grid[0]}x{grid[1]} token grid")
        self.dim, self.grid, self.num_heads = dim, grid, num_heads
        self.window_size, self.shift_size, self.mlp_dim = window_size, shift_size, mlp_dim
        self.qkv_bias, self.dropout = qkv_bias, dropout
        self.attention_dropout, self.drop_path = attention_dropout, drop_path

        self.norm1 = layers.LayerNormalization(epsilon=1e-5, name="norm1")
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, attention_dropout,
                                    dropout, name="attn")
        self.drop_path1 = DropPath(drop_path, name="drop_path1")
        self.norm2 = layers.LayerNormalization(epsilon=1e-5, name="norm2")
        self.fc1 = layers.Dense(mlp_dim, activation="gelu", name="fc1")
        self.fc2 = layers.Dense(dim, name="fc2")
        self.mlp_drop = layers.Dropout(dropout)
        self.drop_path2 = DropPath(drop_path, name="drop_path2")
        self.mask = (shifted_window_mask(*grid, window_size, shift_size)
                     if shift_size else None)

    def build(self, input_shape):
        _check(input_shape[1] == self.grid[0] * self.grid[1],
               f"SwinBlock expects {self.grid[0]}x{self.grid[1]}={self.grid[0] * self.grid[1]} "
               f"tokens, got {input_shape[1]}")
        tokens = (None, input_shape[1], self.dim)
        for sub in (self.norm1, self.norm2):
            sub.build(tokens)
        self.attn.build((None, self.window_size**2, self.dim))
        self.fc1.build(tokens)
        self.fc2.build((None, input_shape[1], self.mlp_dim))

    def call(self, x, training=None):
        h, w = self.grid
        m, s = self.window_size, self.shift_size
        shortcut = x
        x = ops.reshape(self.norm1(x), (-1, h, w, self.dim))
        if s:
            x = ops.roll(x, shift=(-s, -s), axis=(1, 2))
        windows = ops.reshape(window_partition(x, m), (-1, m * m, self.dim))
        mask = None if self.mask is None else ops.convert_to_tensor(self.mask, dtype=x.dtype)
        windows = self.attn(windows, attention_mask=mask, training=training)
        x = window_reverse(ops.reshape(windows, (-1, m, m, self.dim)), m, h, w)
        if s:
            x = ops.roll(x, shift=(s, s), axis=(1, 2))
        x = shortcut + self.drop_path1(ops.reshape(x, (-1, h * w, self.dim)), training=training)
        y = self.mlp_drop(self.fc1(self.norm2(x)), training=training)
        y = self.mlp_drop(self.fc2(y), training=training)
        return x + self.drop_path2(y, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "grid": list(self.grid),
                "num_heads": self.num_heads, "window_size": self.window_size,
                "shift_size": self.shift_size, "mlp_dim": self.mlp_dim,
                "qkv_bias": self.qkv_bias, "dropout": self.dropout,
                "attention_dropout": self.attention_dropout, "drop_path": self.drop_path}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PatchMerging(layers.Layer):
    """Halve the grid and double the width: ``(B, h*w, C) -> (B, h/2*w/2, 2C)``: each 2x2
    neighbourhood's tokens concatenated (``4C``), layer-normalised, reduced to ``2C`` (no
    bias)."""

    def __init__(self, grid: tuple[int, int] | list[int], dim: int, **kwargs):
        super().__init__(**kwargs)
        grid = tuple(int(g) for g in grid)
        _check(grid[0] % 2 == 0 and grid[1] % 2 == 0,
               f"PatchMerging needs an even grid, got {grid[0]}x{grid[1]}")
        self.grid, self.dim = grid, dim
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.reduction = layers.Dense(2 * dim, use_bias=False, name="reduction")

    def build(self, input_shape):
        self.norm.build((None, None, 4 * self.dim))
        self.reduction.build((None, None, 4 * self.dim))

    def call(self, x):
        h, w = self.grid
        x = ops.reshape(x, (-1, h, w, self.dim))
        parts = [x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]]
        x = ops.reshape(ops.concatenate(parts, axis=-1), (-1, (h // 2) * (w // 2), 4 * self.dim))
        return self.reduction(self.norm(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], (self.grid[0] // 2) * (self.grid[1] // 2), 2 * self.dim)

    def get_config(self):
        return {**super().get_config(), "grid": list(self.grid), "dim": self.dim}


def drop_path_rates(depths: list[int] | tuple[int, ...], rate: float) -> list[float]:
    """Stochastic-depth rate per block, rising linearly from 0 to ``rate`` (Swin's schedule)."""
    total = sum(depths)
    return [float(r) for r in np.linspace(0.0, rate, total)] if total > 1 else [rate] * total
