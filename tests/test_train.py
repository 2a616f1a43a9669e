"""End-to-end runs, their records, failures that keep partial outputs, and the CLI."""

import csv
import json
import math
import os
import stat

import keras
import pytest
import yaml

from conftest import TINY_DETERMINISTIC
from swin_gao_lib import cli
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.config import make_config
from swin_gao_lib.config.params import load_config
from swin_gao_lib.errors import ConfigError, RunError
from swin_gao_lib.files import atomic_write_text, write_json
from swin_gao_lib.records import RunFolder
from swin_gao_lib.training.accumulation import AccumulatingModel
from swin_gao_lib.training.train import train

QUIET = dict(verbose=0, log=lambda *a: None)


def tiny(tmp_path, **kw):
    values = {**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 96,
              "max_test_samples": 64, "batch_size": 32, "epochs": 2,
              "output_dir": str(tmp_path), "run_name": "tiny"}
    values.update(kw)
    return make_config(values)


@pytest.mark.slow(40)
def test_mnist_sample_learns_well_above_chance(tmp_path):
    # the default model on the bundled MNIST sample at 28x28, 250 updates: 77% when measured
    cfg = make_config(dataset="mnist", source="sample", max_train_samples=2000, batch_size=16,
                      epochs=2, augment=False, validation_split=0.02, max_test_samples=1000,
                      image_handling="native", output_dir=str(tmp_path), run_name="e2e")
    result = train(cfg, **QUIET)
    assert result.metrics["test_accuracy"] > 0.5, result.metrics["test_accuracy"]
    assert result.metrics["optimizer_updates"] == 2 * math.ceil(2000 / 16)


@pytest.mark.slow(15)
def test_records_are_complete_and_consistent(tiny_run):
    # the session's tiny run (tests/conftest.py): tiny() with accumulation_steps=4
    result, run = tiny_run.result, tiny_run.dir
    assert result.config == tiny(run.parent, accumulation_steps=4)
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml", "history.csv", "lr.csv",
                                                     "metrics.json"]
    assert load_config(run / "config.yaml", {"run_name": "tiny"}) == result.config
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    for r in rows:
        for key in ("loss", "running_accuracy", "val_loss", "val_accuracy", "epoch_s", "train_s",
                    "compile_s", "train_s_steady", "val_s", "images_per_s"):
            assert float(r[key]) >= 0, key
    assert float(rows[0]["compile_s"]) > 0 and float(rows[1]["compile_s"]) == 0
    m = json.loads((run / "metrics.json").read_text())
    assert m == json.loads(json.dumps(result.metrics, default=str))
    assert m["optimizer_updates"] == 2 * math.ceil(96 / 32) and m["optimizer_micro_steps"] == 6
    assert m["micro_batch_size"] == 8 and m["accumulation_steps"] == 4
    assert m["peak_memory_mib"] > 100
    assert "resident-set" in m["peak_memory_kind"] or "GPU" in m["peak_memory_kind"]
    env = m["environment"]
    assert env["tensorflow"] and env["keras"] == keras.__version__ and env["cpu_count"] >= 1
    assert env["keras_backend"] == "tensorflow" and env["backend_version"]
    assert env["device"]
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["samples"]["test"] == 64
    assert m["images_per_s"] > 0 and m["seed"] == 42


@pytest.mark.parametrize("mode", ["in_step", "optimizer"])
def test_fit_creates_no_variable_so_its_step_is_traced_once(tmp_path, monkeypatch, mode):
    # fit would build the optimizer and metrics inside its first step, tracing it again (1.5 s)
    seen = {}

    def every_variable(model):
        return [id(v) for v in (*model.variables, *model.optimizer.variables,
                                *model.metrics_variables)]

    def fit(self, *args, **kwargs):
        seen["before"] = every_variable(self)
        history = keras.Model.fit(self, *args, **kwargs)
        seen["after"] = every_variable(self)
        return history

    monkeypatch.setattr(AccumulatingModel, "fit", fit)
    logs = []
    result = train(tiny(tmp_path, epochs=1, max_train_samples=32, accumulation_steps=2,
                        accumulation_mode=mode), verbose=0, log=logs.append)
    assert seen["after"] == seen["before"]
    assert len(seen["before"]) > 0
    # 32 images, one batch: one update, which Keras's optimizer mode counts as 2 micro-steps
    assert result.metrics["optimizer_updates"] == 1
    assert result.metrics["optimizer_micro_steps"] == (2 if mode == "optimizer" else 1)
    assert any(line.startswith("warning: the training split holds only 32 images") for line in logs)


@pytest.mark.slow(10)
def test_seeded_runs_repeat_exactly(tmp_path, tiny_run):
    # the session's tiny run again, in this process, after whatever ran in between
    a = tiny_run.result
    b = train(tiny(tmp_path, accumulation_steps=4, run_name="b"), **QUIET)
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert a.metrics["test_accuracy"] == b.metrics["test_accuracy"]
    assert a.metrics["final_weights_sha256"] == b.metrics["final_weights_sha256"]


@pytest.mark.slow(10)
def test_existing_run_is_not_overwritten(tmp_path, tiny_run):
    tiny_run.copy_to(tmp_path)  # a complete run of tiny(accumulation_steps=4), trained once
    before = (tmp_path / "tiny" / "metrics.json").read_text()
    with pytest.raises(ConfigError, match=r"tiny already holds a complete run; .*--overwrite"):
        train(tiny(tmp_path, accumulation_steps=4), **QUIET)
    assert (tmp_path / "tiny" / "metrics.json").read_text() == before
    train(tiny(tmp_path, epochs=1), overwrite=True, **QUIET)
    assert len(list(csv.DictReader((tmp_path / "tiny" / "history.csv").open()))) == 1


@pytest.mark.slow(10)
def test_failed_run_keeps_partial_outputs(tmp_path, monkeypatch):
    # Fail after the last epoch, while the final metrics are collected.
    def broken(*a, **k):
        raise RuntimeError("disk on fire")
    # (summary runs once, after fit: the per-update recorder calls optimizer_updates)
    monkeypatch.setattr("swin_gao_lib.training.outcome.summary", broken)
    with pytest.raises(RunError, match=r"after 2 epoch\(s\): RuntimeError: disk on fire; partial outputs kept in") as info:
        train(tiny(tmp_path), **QUIET)
    run = tmp_path / "tiny"
    assert info.value.run_dir == str(run)
    assert not (run / "metrics.json").exists()  # not marked complete
    assert len(list(csv.DictReader((run / "history.csv").open()))) == 2
    failure = json.loads((run / "failure.json").read_text())
    assert failure["epochs_completed"] == 2 and "disk on fire" in failure["traceback"]
    assert "history.csv" in failure["partial_outputs"]


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "metrics.json"
    atomic_write_text(target, "old")

    def crash(*a):
        raise OSError("power cut")
    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        atomic_write_text(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temp file left


def test_cli_failed_run_exits_1(tmp_path, capsys, monkeypatch):
    def broken_fit(self, *a, **k):
        raise RuntimeError("out of memory")
    monkeypatch.setattr(keras.Model, "fit", broken_fit)
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(tiny(tmp_path, run_name="p").to_dict()))
    assert cli.main(["train", str(tmp_path / "p.yaml"), "--verbose", "0"]) == 1
    err = capsys.readouterr().err
    assert "run failed" in err and "out of memory" in err and str(tmp_path / "p") in err
    assert (tmp_path / "p" / "failure.json").is_file()


@pytest.mark.slow(15)
def test_a_diverging_run_stops_records_where_and_fails(tmp_path, tiny_run):
    # SGD with an absurd learning rate: the loss overflows within the first steps
    cfg = tiny(tmp_path, optimizer="sgd", learning_rate=1e30, momentum=0.0, epochs=3,
               run_name="div")
    with pytest.raises(RunError, match=r"the loss became (nan|inf) at epoch 1, step \d+"):
        train(cfg, **QUIET)
    run = tmp_path / "div"
    assert not (run / "metrics.json").exists()
    failure = json.loads((run / "failure.json").read_text())  # strict JSON
    assert failure["diverged"] is True and failure["epoch"] == 1 and failure["step"] >= 1
    assert failure["epochs_completed"] == 0
    assert not (run / "checkpoint").exists() or not any((run / "checkpoint").glob("epoch-*"))
    # resumed it would diverge again: refused, records untouched
    before = (run / "failure.json").read_text()
    with pytest.raises(ConfigError, match=r"holds a run whose loss became (nan|inf) at epoch 1.*"
                                          r"--overwrite to start it over"):
        train(cfg, **QUIET)
    assert (run / "failure.json").read_text() == before
    # the report lists it as diverged and plots nothing of it
    tiny_run.copy_to(tmp_path)
    report = build_report(tmp_path)
    assert [r.name for r in report.suite.runs] == ["tiny"]
    assert "div,diverged,1," in (tmp_path / "report" / "failed_runs.csv").read_text()


def test_json_records_are_strict(tmp_path):
    path = write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.5]})
    assert json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(c)) == \
        {"a": None, "b": [None, 1.5]}


def test_record_files_get_the_normal_file_mode(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_text(tmp_path / "r.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_one_writer_per_run_folder(tmp_path):
    cfg = tiny(tmp_path, epochs=1)
    with RunFolder.of(cfg).lock():  # as if another process were training this run
        with pytest.raises(ConfigError, match=rf"tiny is being written by another process "
                                              rf"\(pid {os.getpid()}\)"):
            train(cfg, **QUIET)
    assert not (tmp_path / "tiny" / "history.csv").exists()
    with RunFolder.of(cfg).lock():  # released, by the test and by the refused run
        pass


def test_clearing_a_checkpoint_keeps_files_the_kit_did_not_write(tmp_path):
    folder = RunFolder(tmp_path / "r")
    folder.checkpoint.mkdir(parents=True)
    for name in ("epoch-00002.variables.npz", "epoch-00002.weights.h5", "epoch-00002.rng.npz",
                 ".epoch-00003.variables.npz.k2j4.tmp", "state.json", "mine.keras"):
        (folder.checkpoint / name).write_text("x")
    folder.clear()
    assert [p.name for p in folder.checkpoint.iterdir()] == ["mine.keras"]


@pytest.mark.slow(25)
def test_deterministic_arm_follows_the_baseline_loss_curve(tmp_path):
    # dropout, drop path and augmentation off (params/study-deterministic/): in-step mean
    # accumulation computes the baseline's gradient to float32 rounding, epoch after epoch
    runs = {n: train(tiny(tmp_path, accumulation_steps=n, augment=False, epochs=3,
                          run_name=f"n{n}"), **QUIET) for n in (1, 4)}
    for key in ("loss", "val_loss", "running_accuracy", "val_accuracy"):
        got, want = [r[key] for r in runs[4].history], [r[key] for r in runs[1].history]
        assert got == pytest.approx(want, rel=2e-5, abs=1e-6), key
    assert runs[4].metrics["optimizer_updates"] == runs[1].metrics["optimizer_updates"] == 9
