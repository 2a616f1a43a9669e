"""The Swin model: shapes, size, serialisation, stochastic depth."""

import keras
import numpy as np
import pytest

from swin_gao_lib.config import make_config
from swin_gao_lib.model import build_swin
from swin_gao_lib.model.layers import DropPath, PatchEmbedding, PatchMerging, SwinBlock, WindowAttention


def _count_params_by_hand(embed=64, heads=8, window=2, mlp=256, patch=2, channels=3,
                          side=32, head_units=128, classes=10):
    """Closed-form parameter count of the default (keras-io sized) model."""
    tokens = (side // patch) ** 2
    embedding = (patch * patch * channels + 1) * embed + tokens * embed
    block = (2 * embed) * 2 + (embed + 1) * 3 * embed + (embed + 1) * embed \
        + (2 * window - 1) ** 2 * heads + (embed + 1) * mlp + (mlp + 1) * embed
    merge = 2 * 4 * embed + 4 * embed * 2 * embed
    final_norm = 2 * (2 * embed)
    if head_units:
        head = (2 * embed + 1) * head_units + (head_units + 1) * classes
    else:
        head = (2 * embed + 1) * classes
    return embedding + 2 * block + merge + final_norm + head


def test_default_model_is_keras_io_sized():
    model = build_swin(make_config())
    assert model.count_params() == _count_params_by_hand() == 168_666
    # With the keras-io head (pooling -> dense) it is the example's ~152K.
    keras_io = build_swin(make_config(head_units=0))
    assert keras_io.count_params() == _count_params_by_hand(head_units=0) == 152_154


@pytest.mark.parametrize("values,shape", [
    ({"dataset": "cifar10"}, (32, 32, 3)), ({"dataset": "mnist"}, (32, 32, 1)),
    ({"dataset": "fashion_mnist"}, (32, 32, 1)),
    # 28 / 2 = 14 tokens a side; windows of 7 divide 14; one merge -> 7x7
    ({"dataset": "mnist", "image_handling": "native", "window_size": 7, "shift_size": 3},
     (28, 28, 1)),
])
def test_output_shapes(values, shape):
    model = build_swin(make_config(values))
    assert model.input_shape == (None, *shape)
    assert tuple(model(np.zeros((3, *shape), "float32")).shape) == (3, 10)


def test_two_stage_model():
    cfg = make_config(depths=[2, 2], num_heads=[4, 8], embed_dim=32)
    model = build_swin(cfg)
    merges = [l for l in model.layers if isinstance(l, PatchMerging)]
    assert [m.grid for m in merges] == [(16, 16), (8, 8)]
    blocks = [l for l in model.layers if isinstance(l, SwinBlock)]
    assert [b.dim for b in blocks] == [32, 32, 64, 64]
    assert [b.shift_size for b in blocks] == [0, 1, 0, 1]
    assert tuple(model(np.zeros((2, 32, 32, 3), "float32")).shape) == (2, 10)


def test_window_clamps_to_small_grid():
    # 4 stages on a 16x16 grid: the last is 2x2, smaller than window 4 -> whole grid, no shift.
    cfg = make_config(depths=[1, 1, 1, 2], num_heads=[2, 4, 8, 16], embed_dim=32, window_size=4,
                      shift_size=2, merge_after_last_stage=False)
    blocks = [l for l in build_swin(cfg).layers if isinstance(l, SwinBlock)]
    assert (blocks[-1].grid, blocks[-1].window_size, blocks[-1].shift_size) == ((2, 2), 2, 0)


def test_save_load_round_trip_identical_predictions(tmp_path):
    cfg = make_config(depths=[2, 2], num_heads=[2, 4], embed_dim=16, mlp_dim=32, drop_path_rate=0.2)
    model = build_swin(cfg)
    x = np.random.default_rng(1).random((4, 32, 32, 3)).astype("float32")
    before = model.predict(x, verbose=0)
    path = tmp_path / "swin.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), before)


@pytest.mark.parametrize("layer", [
    PatchEmbedding(2, 8), DropPath(0.1), WindowAttention(8, 2, 2),
    SwinBlock(8, (4, 4), 2, window_size=2, shift_size=1, mlp_dim=16), PatchMerging((4, 4), 8),
])
def test_layers_serialise(layer):
    clone = layer.__class__.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_drop_path_only_while_training():
    layer = DropPath(0.5, seed=3)
    x = np.ones((1000, 4), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    rows = set(map(tuple, out))
    assert rows == {(0.0,) * 4, (2.0,) * 4}  # whole samples dropped, survivors scaled by 1/keep
    assert 0.4 < (out[:, 0] == 0).mean() < 0.6


def test_inference_is_deterministic_with_dropout_and_drop_path():
    model = build_swin(make_config(drop_path_rate=0.5, dropout=0.5, attention_dropout=0.5))
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(model(x, training=False), model(x, training=False))
    assert not np.array_equal(model(x, training=True), model(x, training=True))


def test_layer_arguments_are_validated():
    with pytest.raises(ValueError, match="must divide dim"):
        WindowAttention(10, 2, 3)
    with pytest.raises(ValueError, match="must divide the 6x6"):
        SwinBlock(8, (6, 6), 2, window_size=4)
    with pytest.raises(ValueError, match="even grid"):
        PatchMerging((5, 5), 8)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        DropPath(1.0)
