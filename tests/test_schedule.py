"""Learning-rate schedules per optimizer update, in both accumulation modes, and lr.csv, against
the closed form, Keras's own SGD applying it (a gradient of 1 moves by the rate), and lr.csv."""

import math

import keras
import pytest
import tensorflow as tf

from conftest import TINY_DETERMINISTIC
from swin_gao_lib.training.accumulation import UpdateSchedule, planned_updates
from swin_gao_lib.config import make_config
from swin_gao_lib.records import RunFolder, load_suite
from swin_gao_lib.training.train import train

QUIET = dict(verbose=0, log=lambda *a: None)


def closed_form(k, lr=0.1, schedule="constant", warmup=0, total=None, every=None, factor=0.1):
    if k < warmup:
        return lr * (k + 1) / warmup
    j = k - warmup
    if schedule == "cosine":
        t = total - warmup
        return lr * (1 + math.cos(math.pi * min(j, t) / t)) / 2
    if schedule == "step":
        return lr * factor ** (j // every)
    return lr


CASES = [dict(schedule="constant", warmup=3), dict(schedule="cosine", total=20),
         dict(schedule="cosine", warmup=4, total=20), dict(schedule="step", every=5),
         dict(schedule="step", warmup=2, every=3, factor=0.5)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_schedule_matches_its_closed_form(case):
    sched = UpdateSchedule(0.1, case["schedule"], case.get("warmup", 0), case.get("total"),
                           case.get("every"), case.get("factor", 0.1))
    got = [float(sched(k)) for k in range(30)]
    assert got == pytest.approx([closed_form(k, **case) for k in range(30)], rel=1e-6, abs=1e-8)
    assert UpdateSchedule.from_config(sched.get_config()).get_config() == sched.get_config()


def _applied_rates(schedule, accumulation_steps, micro_steps):
    """Each update's move of a variable whose every gradient is 1, under Keras's SGD."""
    kwargs = {"gradient_accumulation_steps": accumulation_steps} if accumulation_steps > 1 else {}
    opt = keras.optimizers.SGD(learning_rate=schedule, momentum=0.0, **kwargs)
    v = keras.Variable(0.0)
    moves, before = [], 0.0
    for _ in range(micro_steps):
        opt.apply_gradients([(tf.ones(()), v)])
        now = float(v.numpy())
        if now != before:
            moves.append(before - now)
            before = now
    return moves


def test_keras_applies_the_schedule_per_update_in_step_and_per_micro_step_in_optimizer_mode():
    sched = UpdateSchedule(0.1, "step", 0, None, 2, 0.5)  # 0.1, 0.1, 0.05, 0.05, 0.025, ...
    # one apply per update: update k gets schedule(k)
    assert _applied_rates(sched, 1, 6) == pytest.approx([closed_form(k, 0.1, "step", every=2,
                                                                      factor=0.5) for k in range(6)], abs=1e-7)  # float32 moves
    # Keras's accumulation (N = 4): update k happens at micro-step 4k + 3 and gets schedule(4k + 3)
    assert _applied_rates(sched, 4, 24) == pytest.approx(
        [closed_form(4 * k + 3, 0.1, "step", every=2, factor=0.5) for k in range(6)], abs=1e-7)


def tiny(tmp_path, **kw):
    values = {**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 96,
              "max_test_samples": 32, "batch_size": 32, "epochs": 2, "optimizer": "sgd",
              "learning_rate": 0.1, "lr_schedule": "cosine", "warmup_updates": 2,
              "output_dir": str(tmp_path)}
    values.update(kw)
    return make_config(values)


@pytest.mark.slow(20)
def test_lr_csv_records_the_rate_of_every_update_in_both_modes(tmp_path):
    # 96 images, batch 32, 2 epochs: 6 updates in both modes (planned_updates).
    in_step = tiny(tmp_path, accumulation_steps=2, run_name="in_step")
    keras_mode = tiny(tmp_path, accumulation_steps=4, accumulation_mode="optimizer",
                      run_name="optimizer")
    assert planned_updates(in_step, 3) == planned_updates(keras_mode, 12) == 6
    for cfg in (in_step, keras_mode):
        train(cfg, **QUIET)
    a = RunFolder(tmp_path / "in_step").read_learning_rates()
    assert [r["update"] for r in a] == list(range(6)) and [r["step"] for r in a] == [1, 2, 3, 4, 5, 6]
    assert [r["epoch"] for r in a] == [1, 1, 1, 2, 2, 2]
    want = [closed_form(k, 0.1, "cosine", warmup=2, total=6) for k in range(6)]
    assert [r["learning_rate"] for r in a] == pytest.approx(want, rel=1e-6)
    # Keras's optimizer mode: the schedule sees micro-steps, so it runs N = 4 times too fast
    # (here it is at 0 from the second update on) -- recorded, not hidden.
    b = RunFolder(tmp_path / "optimizer").read_learning_rates()
    assert [r["update"] for r in b] == list(range(6)) and [r["step"] for r in b] == [4, 8, 12, 16, 20, 24]
    fast = [closed_form(4 * k + 3, 0.1, "cosine", warmup=2, total=6) for k in range(6)]
    assert [r["learning_rate"] for r in b] == pytest.approx(fast, rel=1e-6, abs=1e-9)
    assert fast[1:] == pytest.approx([0.0] * 5, abs=1e-9) and want[1] > 0.09
    # and the report's reader
    runs = {r.name: r for r in load_suite(tmp_path).runs}
    assert list(runs["in_step"].learning_rates.columns) == ["update", "epoch", "step",
                                                            "learning_rate", "loss",
                                                            "update_norm"]
    # per update: at a rate of 0 the gradient adds nothing, and SGD's velocity
    # (momentum 0.9) carries the weights on, 0.9 times as far each update
    norms = [r["update_norm"] for r in b]
    assert [n / m for m, n in zip(norms, norms[1:])] == pytest.approx([0.9] * 5, rel=1e-5)
    assert all(r["update_norm"] > 0 and r["loss"] > 0 for r in a)


def test_records_without_lr_csv_still_load(tmp_path, tiny_run):
    run_dir = tiny_run.copy_to(tmp_path)
    (run_dir / "lr.csv").unlink()  # as a run recorded before lr.csv existed
    run = load_suite(tmp_path).runs[0]
    assert run.learning_rates is None and run.resolved_config["lr_schedule"] == "constant"
    # a config.yaml without the schedule keys reads as their defaults
    text = (run_dir / "config.yaml").read_text()
    old = "".join(line for line in text.splitlines(True)
                  if not line.startswith(("lr_schedule", "warmup_updates", "lr_step")))
    (run_dir / "config.yaml").write_text(old)
    run = load_suite(tmp_path).runs[0]
    assert run.resolved_config["warmup_updates"] == 0
    assert RunFolder(run_dir).recorded_config().to_dict() == {
        **tiny_run.config.to_dict(), "output_dir": str(tmp_path)}
