"""Assemble a hierarchical Swin Transformer classifier from a :class:`RunConfig`.

::

    image -> PatchEmbedding -> [stage 1: SwinBlock x depths[0]] -> PatchMerging
          -> [stage 2 ...] -> ... -> (PatchMerging, if merge_after_last_stage)
          -> LayerNorm -> GlobalAveragePooling
          -> Dense(head_units) -> GELU -> Dropout -> Dense(classes)      (the paper's MLP head)

The model outputs logits (the loss applies the softmax). Sizes against keras-io's:
docs/model.md. Under ``mixed_bfloat16`` every layer computes in bfloat16 except the
logits, kept float32 so that the loss and what the optimizer receives stay float32.
"""

from __future__ import annotations

import contextlib

import keras
from keras import layers

from swin_gao_lib.config import RunConfig
from swin_gao_lib.model.layers import PatchEmbedding, PatchMerging, SwinBlock, drop_path_rates


def build_swin(cfg: RunConfig, num_classes: int | None = None,
               precision: str | None = None) -> keras.Model:
    """Build the (uncompiled) Swin classifier described by ``cfg``.

    ``num_classes`` defaults to the data set's, ``precision`` (a Keras dtype policy) to
    ``cfg.precision`` (the benchmark passes ``mixed_float16``, no config value).
    """
    num_classes = cfg.num_classes if num_classes is None else num_classes
    with dtype_policy(precision or cfg.precision):
        return _build(cfg, num_classes)


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras's global dtype policy set to ``name`` while the block runs, then restored (a
    notebook kernel that trains several runs must not inherit one run's precision)."""
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def _build(cfg: RunConfig, num_classes: int) -> keras.Model:
    inputs = keras.Input(shape=cfg.input_shape, name="image")
    x = PatchEmbedding(cfg.patch_size, cfg.embed_dim, name="patch_embedding")(inputs)
    h = cfg.input_shape[0] // cfg.patch_size
    w = cfg.input_shape[1] // cfg.patch_size
    dim = cfg.embed_dim
    rates = iter(drop_path_rates(cfg.depths, cfg.drop_path_rate))
    n_stages = len(cfg.depths)
    for stage, (depth, heads) in enumerate(zip(cfg.depths, cfg.num_heads)):
        mlp_dim = cfg.mlp_dim * 2**stage
        for b in range(depth):
            x = SwinBlock(
                dim, (h, w), heads, window_size=cfg.window_size,
                shift_size=0 if b % 2 == 0 else cfg.shift_size, mlp_dim=mlp_dim,
                qkv_bias=cfg.qkv_bias, dropout=cfg.dropout,
                attention_dropout=cfg.attention_dropout, drop_path=next(rates),
                name=f"stage{stage + 1}_block{b + 1}",
            )(x)
        if stage < n_stages - 1 or cfg.merge_after_last_stage:
            x = PatchMerging((h, w), dim, name=f"stage{stage + 1}_merge")(x)
            h, w, dim = h // 2, w // 2, dim * 2
    # Swin's final LayerNorm (keras-io omits it): it puts the pooled features on
    # a unit scale, which lets the two-layer head start learning at once.
    x = layers.LayerNormalization(epsilon=1e-5, name="final_norm")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    if cfg.head_units:
        x = layers.Dense(cfg.head_units, name="head_dense")(x)
        x = layers.Activation("gelu", name="head_gelu")(x)
        x = layers.Dropout(cfg.dropout, name="head_dropout")(x)
    # float32 logits under a mixed policy: the loss's softmax and its gradient stay float32
    outputs = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="swin")
