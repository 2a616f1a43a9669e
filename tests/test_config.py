"""Config: YAML loading, overrides, and one specific message per kind of mistake."""

import pytest

from swin_gao_lib.config import RunConfig, make_config, to_yaml
from swin_gao_lib.config.params import load_config, parse_override
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


BAD = [
    ({"batch_szie": 64}, r"unknown config key 'batch_szie'; did you mean 'batch_size'\?"),
    ({"zzz": 1}, r"unknown config key 'zzz'; valid keys: .*accumulation_mode"),
    ({"batch_size": "64"}, r"batch_size: expected an integer, got '64' \(str\)"),
    ({"augment": "yes"}, r"augment: expected true or false"),
    ({"learning_rate": "fast"}, r"learning_rate: expected a number"),
    ({"depths": [2, "2"]}, r"depths: every entry must be an integer"),
    ({"dataset": "cifar"}, r"dataset: 'cifar' is not one of .*did you mean 'cifar10'"),
    ({"source": "web"}, r"source: 'web' is not valid; use 'keras'.*'sample'.*'dir:<path>'"),
    ({"source": "dir:"}, r"source: 'dir:' needs a folder"),
    ({"patch_size": 3}, r"patch_size: 3 does not divide the 32x32 input of cifar10"),
    ({"dataset": "mnist", "image_handling": "native", "patch_size": 3},
     r"patch_size: 3 does not divide the 28x28 input of mnist.*pad32"),
    ({"window_size": 3, "shift_size": 1}, r"window_size: 3 does not divide stage 1's 16x16 patch grid; use one of \[1, 2, 4, 8, 16\]"),
    ({"dataset": "mnist", "image_handling": "native", "window_size": 4, "shift_size": 1},
     r"window_size: 4 does not divide stage 1's 14x14"),
    ({"shift_size": 2}, r"shift_size: must be in \[0, window_size\) = \[0, 2\), got 2"),
    ({"embed_dim": 60}, r"num_heads: stage 1 has width 60, which 8 heads do not divide"),
    ({"depths": [2, 2], "num_heads": [4]}, r"num_heads: has 1 entries but depths has 2 stages"),
    ({"accumulation_steps": 0}, r"accumulation_steps: must be >= 1, got 0"),
    ({"batch_size": 4, "accumulation_steps": 8}, r"batch_size: in in_step mode the batch \(4\).*must be >= 8"),
    ({"accumulation_mode": "optimizer", "accumulation_steps": 3},
     r"batch_size: optimizer mode .* 128 is not divisible by 3 \(try 126\)"),
    ({"accumulation_mode": "optimizer", "accumulation_steps": 2, "reduction": "sum"},
     r"reduction: Keras's optimizer accumulation always averages"),
    ({"accumulation_mode": "gao"}, r"accumulation_mode: 'gao' is not one of in_step, optimizer"),
    ({"reduction": "avg"}, r"reduction: 'avg' is not one of mean, sum"),
    ({"lr_scaling": "square"}, r"lr_scaling: 'square' is not one of none, sqrt, linear \(did you mean 'sqrt'\?\)"),
    ({"lr_base_batch": 0}, r"lr_base_batch: must be >= 1, got 0"),
    ({"lr_schedule": "cosin"}, r"lr_schedule: 'cosin' is not one of constant, cosine, step \(did you mean 'cosine'\?\)"),
    ({"warmup_updates": -1}, r"warmup_updates: must be >= 0 \(0: no warm-up\), got -1"),
    ({"lr_schedule": "step"}, r"lr_step_updates: lr_schedule: step needs it; .*lr_step_updates: 100"),
    ({"lr_step_updates": 10}, r"lr_step_updates: only used with lr_schedule: step \(got lr_schedule: constant\)"),
    ({"lr_schedule": "step", "lr_step_updates": 0}, r"lr_step_updates: must be >= 1, got 0"),
    ({"lr_schedule": "step", "lr_step_updates": 5, "lr_step_factor": 2},
     r"lr_step_factor: must be in \(0, 1\], got 2.0"),
    ({"optimizer": "adamax"}, r"optimizer: 'adamax' is not one of adamw, adam, sgd"),
    ({"validation_split": 1.0}, r"validation_split: must be in \[0, 1\)"),
    ({"dropout": 1.5}, r"dropout: must be in \[0, 1\)"),
    ({"learning_rate": 0}, r"learning_rate: must be > 0"),
    ({"max_train_samples": 0}, r"max_train_samples: must be >= 1 or null"),
    ({"dataset": "mnist", "image_handling": "native", "merge_after_last_stage": True,
      "depths": [2, 2], "num_heads": [8, 8], "window_size": 7, "shift_size": 3},
     r"depths: patch merging 2 halves a 7x7 token grid, which is odd"),
]


@pytest.mark.parametrize("values,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_config_gets_specific_message(values, message):
    with pytest.raises(ConfigError, match=message):
        make_config(values)


def test_bad_messages_are_distinct():
    messages = set()
    for values, _ in BAD:
        with pytest.raises(ConfigError) as info:
            make_config(values)
        messages.add(str(info.value))
    assert len(messages) == len(BAD)


def test_bad_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    p = tmp_path / "broken.yaml"
    p.write_text("dataset: [mnist\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:2:1: not valid YAML: expected .,. or .\]."):
        load_config(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(p)


def test_bad_override():
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("epochs")
    assert parse_override("depths=[2, 2]") == ("depths", [2, 2])


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
