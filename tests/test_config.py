"""Config: YAML loading, overrides, and one specific message per kind of mistake."""

import numpy as np
import pytest

from swin_gao_lib.config import RunConfig, make_config, to_yaml
from swin_gao_lib.config.params import load_config
from swin_gao_lib.errors import ConfigError


def test_defaults_are_keras_io_example():
    cfg = make_config()
    assert (cfg.patch_size, cfg.embed_dim, cfg.num_heads, cfg.window_size, cfg.shift_size,
            cfg.mlp_dim, cfg.qkv_bias) == (2, 64, (8,), 2, 1, 256, True)
    assert (cfg.optimizer, cfg.learning_rate, cfg.weight_decay, cfg.label_smoothing,
            cfg.batch_size, cfg.epochs, cfg.validation_split) == ("adamw", 1e-3, 1e-4, 0.1, 128, 40, 0.1)


def test_yaml_and_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("dataset: mnist\nbatch_size: 64\nnum_heads: [4]\n")
    cfg = load_config(p, ["accumulation_steps=4", "depths=[2]", "max_train_samples=null",
                          "learning_rate=3e-4"])
    assert cfg.dataset == "mnist" and cfg.batch_size == 64 and cfg.accumulation_steps == 4
    assert cfg.learning_rate == 3e-4 and cfg.num_heads == (4,)
    assert cfg.run_name == "run"  # from the file name
    assert cfg.micro_batch_size == 16 and cfg.input_shape == (32, 32, 1)


def test_yaml_round_trip(tmp_path):
    cfg = make_config(dataset="cifar10", depths=[2, 2], num_heads=[4, 8], run_name="x")
    p = tmp_path / "c.yaml"
    p.write_text(to_yaml(cfg))
    assert load_config(p) == cfg


def test_int_heads_broadcast_to_one_stage():
    assert make_config(num_heads=4).num_heads == (4,)


def test_optimizer_mode_feeds_micro_batches():
    cfg = make_config(accumulation_steps=4, accumulation_mode="optimizer")
    assert cfg.fit_batch_size == 32 and cfg.micro_batch_size == 32
    assert make_config(accumulation_steps=4).fit_batch_size == 128


def test_learning_rate_scaling_with_the_effective_batch():
    # lr * (B / lr_base_batch) ** k, k = 0, 1/2, 1
    assert make_config(batch_size=512).effective_learning_rate == 1e-3
    assert make_config(batch_size=512, lr_scaling="sqrt").effective_learning_rate == pytest.approx(2e-3)
    assert make_config(batch_size=512, lr_scaling="linear").effective_learning_rate == pytest.approx(4e-3)
    cfg = make_config(batch_size=64, lr_base_batch=256, lr_scaling="linear", learning_rate=0.1)
    assert cfg.effective_learning_rate == pytest.approx(0.025)
    # the optimizer gets the scaled rate
    from swin_gao_lib.training.accumulation import build_optimizer

    opt = build_optimizer(make_config(batch_size=512, accumulation_steps=4, lr_scaling="linear"))
    assert float(opt.learning_rate) == pytest.approx(4e-3)


@pytest.mark.parametrize("key,value,message", [
    # what Python callers and the notebook's parameters pass (the CLI's text: test_bad_input.py)
    ("learning_rate", 10 ** 400, "(401 characters) (too large for a float"),
    ("learning_rate", float("inf"), "learning_rate: must be a finite number, got inf"),
    ("learning_rate", "-Infinity", "learning_rate: must be a finite number, got -Infinity"),
    ("learning_rate", np.float32("nan"), "learning_rate: must be a finite number, got nan"),
    ("batch_size", "64", "batch_size: expected an integer, got '64' (str)"),
    ("epochs", 2.0, "epochs: expected an integer, got 2.0 (float)"),
    ("dropout", True, "dropout: expected a number, got True (bool)"),
    ("depths", [2, "2"], "depths: every entry must be an integer"),
])
def test_every_number_is_converted_first_and_checked_after(key, value, message):
    with pytest.raises(ConfigError) as err:
        make_config({key: value})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_numbers_that_are_fine_still_convert():
    cfg = make_config({"learning_rate": "3e-4", "weight_decay": " 1e-5 ", "epochs": np.int64(4)})
    assert (cfg.learning_rate, cfg.weight_decay, cfg.epochs) == (3e-4, 1e-5, 4)
    assert type(cfg.epochs) is int


def test_config_is_frozen():
    with pytest.raises(Exception):
        RunConfig().epochs = 3


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    # Regression: PyYAML reads 3e-4 as the string '3e-4'.
    p = tmp_path / "lr.yaml"
    p.write_text("learning_rate: 3e-4\nweight_decay: 1e-4\n")
    cfg = load_config(p)
    assert cfg.learning_rate == 3e-4 and cfg.weight_decay == 1e-4


def test_yaml_merge_keys_work_in_params_files(tmp_path):
    # the strict loader (no repeated keys) once refused every merge key ("<<")
    from swin_gao_lib.config.params import resolve

    p = tmp_path / "merge.yaml"
    p.write_text("dataset: mnist\nbatch_size: 64\nnum_heads: [4]\ngrid:\n"
                 "  - &common {accumulation_steps: [1], learning_rate: [0.001]}\n"
                 "  - {<<: *common, accumulation_steps: [4]}\n")
    runs = resolve(p)
    assert [(r.config.accumulation_steps, r.config.learning_rate) for r in runs] == \
        [(1, 0.001), (4, 0.001)]
