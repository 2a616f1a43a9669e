"""history.csv: one row schema for both training loops; older records' ``accuracy`` column (the
running mean, once read as "train accuracy") read as ``running_accuracy``."""

import csv
import json

import pandas as pd
import pytest

from swin_gao_lib.config import make_config, to_yaml
from swin_gao_lib.records import RunFolder, load_suite
from swin_gao_lib.records.history import RUNNING_ACCURACY, TIMES, current_rows, history_row

TIMES_OF_AN_EPOCH = {"epoch_s": 5.0, "train_s": 4.0, "compile_s": 1.5, "train_s_steady": 2.5,
                     "val_s": 1.0}


def test_a_row_names_the_running_mean_and_counts_images_per_steady_second():
    row = history_row(3, 0.7, 0.81, 0.6, 0.84, TIMES_OF_AN_EPOCH, n_train=1000)
    assert list(row) == ["epoch", "loss", RUNNING_ACCURACY, "val_loss", "val_accuracy", *TIMES,
                         "images_per_s"]
    assert "accuracy" not in row and row[RUNNING_ACCURACY] == 0.81
    assert row["images_per_s"] == 1000 / 2.5
    assert history_row(1, 1, 1, None, None, {**TIMES_OF_AN_EPOCH, "train_s_steady": 0.0},
                       10)["images_per_s"] is None
    with pytest.raises(ValueError, match="times lacks val_s"):
        history_row(1, 1, 1, None, None, {k: 1.0 for k in TIMES if k != "val_s"}, 10)


def _older_run(root, name="old"):
    cfg = make_config(dataset="mnist", epochs=2, run_name=name, output_dir=str(root))
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    pd.DataFrame({"epoch": [1, 2], "loss": [1.2, 0.8], "accuracy": [0.55, 0.72],
                  "val_loss": [1.0, 0.7], "val_accuracy": [0.6, 0.75],
                  "train_s_steady": [3.0, 3.0]}).to_csv(run / "history.csv", index=False)
    (run / "metrics.json").write_text(json.dumps({"test_accuracy": 0.74, "optimizer_updates": 10}))
    return run


def test_older_records_read_their_accuracy_column_as_the_running_mean(tmp_path):
    run = RunFolder(_older_run(tmp_path)).read()
    assert "accuracy" not in run.history
    assert list(run.history[RUNNING_ACCURACY]) == [0.55, 0.72]
    # a suite of older records draws the same train curve as before
    from swin_gao_lib.analysis.report import accuracy_curves

    curves = accuracy_curves(load_suite(tmp_path))
    assert list(curves.loc[curves["split"] == "train", "accuracy"]) == [0.55, 0.72]


def test_a_resumed_older_run_writes_one_schema(tmp_path):
    # a checkpoint's older rows say `accuracy`: Checkpoint.load renames them for both loops
    from types import SimpleNamespace

    from swin_gao_lib.training.outcome import RunRecords, resume_state
    from swin_gao_lib.training.preflight import Preflight

    folder = RunFolder(tmp_path / "run")
    folder.checkpoint.mkdir(parents=True)
    older = [{"epoch": 1, "loss": 1.2, "accuracy": 0.55, "val_loss": 1.0, "val_accuracy": 0.6,
              **TIMES_OF_AN_EPOCH, "images_per_s": 400.0}]
    assert current_rows(older)[0][RUNNING_ACCURACY] == 0.55
    (folder.checkpoint / "epoch-00001.variables.npz").write_bytes(b"")
    (folder.checkpoint / "state.json").write_text(json.dumps(
        {"epoch": 1, "variables": "epoch-00001.variables.npz", "history": older, "steps": 3}))
    checked = Preflight(folder, "resume", SimpleNamespace(y_train=[0] * 1000), need=None)
    records = RunRecords(None, checked, resume_state(checked))
    records.end_epoch(2, 0.8, 0.72, 0.7, 0.75, TIMES_OF_AN_EPOCH)
    with (folder.path / "history.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert "accuracy" not in reader.fieldnames and RUNNING_ACCURACY in reader.fieldnames
    assert [float(r[RUNNING_ACCURACY]) for r in rows] == [0.55, 0.72]
