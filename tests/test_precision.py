"""``precision: mixed_bfloat16``: bfloat16 compute; float32 weights, optimizer state, sums, loss."""

import keras
import numpy as np
import pytest

from conftest import TINY_DETERMINISTIC
from swin_gao_lib.config import make_config
from swin_gao_lib.model import build_swin
from swin_gao_lib.training.train import train


def test_mixed_model_computes_in_bfloat16_with_float32_weights_and_logits():
    before = keras.config.dtype_policy().name
    net = build_swin(make_config(TINY_DETERMINISTIC, precision="mixed_bfloat16"))
    assert keras.config.dtype_policy().name == before  # the process's policy is left alone
    compute = {layer.name: layer.dtype_policy.compute_dtype for layer in net.layers[1:]}
    assert compute.pop("logits") == "float32"
    assert set(compute.values()) == {"bfloat16"}
    assert {w.dtype for w in net.weights if "seed" not in w.path} == {"float32"}
    out = net(np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32"))
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    # float32 is the model it was: built under the default policy, every layer float32
    plain = build_swin(make_config(TINY_DETERMINISTIC))
    assert {layer.dtype_policy.compute_dtype for layer in plain.layers[1:]} == {"float32"}


@pytest.mark.parametrize("mode", ["in_step", "optimizer"])
def test_mixed_precision_trains_with_float32_state(tmp_path, mode):
    cfg = make_config({**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 64,
                       "max_test_samples": 32, "batch_size": 32, "accumulation_steps": 2,
                       "accumulation_mode": mode, "epochs": 1, "precision": "mixed_bfloat16",
                       "output_dir": str(tmp_path), "run_name": mode})
    result = train(cfg, verbose=0, log=lambda *a: None)
    assert np.isfinite(result.history[0]["loss"]) and np.isfinite(result.metrics["test_loss"])
    assert {w.dtype for w in result.model.trainable_weights} == {"float32"}
    assert result.metrics["optimizer_updates"] == 2
