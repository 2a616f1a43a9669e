"""Per update: lr.csv's loss and update norm tell Eq. 9's N x step from Adam's scale
invariance, one optimizer update at a time, on a tiny model with every random part off."""

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import TINY_DETERMINISTIC
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.analysis.tracking import batch_losses
from swin_gao_lib.config import make_config
from swin_gao_lib.config.design import write_design
from swin_gao_lib.training.train import train

BASE = {**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 128,
        "max_test_samples": 16, "batch_size": 32, "epochs": 1, "augment": False}
SGD = {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0}
RUNS = {  # name: what differs from BASE
    "sgd": {**SGD, "learning_rate": 0.05},
    "sgd-sum": {**SGD, "learning_rate": 0.05, "accumulation_steps": 4, "reduction": "sum"},
    "sgd-sum-lr4": {**SGD, "learning_rate": 0.0125, "accumulation_steps": 4, "reduction": "sum"},
    "adamw": {"optimizer": "adamw"},
    "adamw-sum": {"optimizer": "adamw", "accumulation_steps": 4, "reduction": "sum"},
}


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    root = tmp_path_factory.mktemp("updates")
    for name, values in RUNS.items():
        train(make_config({**BASE, **values, "seed": 0, "output_dir": str(root / "suite"),
                           "run_name": name}), verbose=0, log=lambda *a: None)
    params = root / "declared.yaml"
    params.write_text(yaml.safe_dump({**BASE, **SGD, "seed": 0, "grid": {
        "learning_rate": [0.0125], "accumulation_steps": [4], "reduction": ["sum"]},
        "study": {"comparisons": [{
            "arm": {"learning_rate": 0.0125, "accumulation_steps": 4, "reduction": "sum"},
            "versus": {"learning_rate": 0.05, "accumulation_steps": 1, "reduction": "mean"},
            "role": "secondary", "prediction": "equivalent", "why": "4 x the mean at lr/4",
            "label": "SGD sum at lr/4"}]}}))
    write_design([params], root / "suite")
    return root / "suite"


def test_lr_csv_holds_the_loss_and_the_size_of_every_update(suite):
    rates = pd.read_csv(suite / "sgd" / "lr.csv")
    assert list(rates.columns) == ["update", "epoch", "step", "learning_rate", "loss",
                                   "update_norm"]
    assert len(rates) == 4 and (rates["update_norm"] > 0).all()
    # the running epoch mean Keras reports, unrolled into each update's batch loss: the first
    # update of an epoch is its batch; history.csv's epoch loss is the mean of the four
    history = pd.read_csv(suite / "sgd" / "history.csv")
    losses = batch_losses(rates)
    assert losses[0] == pytest.approx(rates.loc[0, "loss"])
    assert losses.mean() == pytest.approx(history.loc[0, "loss"], rel=1e-5)


def test_per_update_tracking_separates_a_summed_step_from_adams_invariance(suite):
    report = build_report(suite)
    track = report.study.update_tracking
    by = {label: g.reset_index(drop=True) for label, g in track.groupby("configuration")}
    sgd_sum = by["SGD without momentum N=4: 4x8=32, in-step sum, lr 0.05"]
    # Eq. 9 with Eq. 10: the same gradient, summed over 4 micro-batches: a 4x longer first step
    assert sgd_sum.loc[0, "update_ratio"] == pytest.approx(4.0, rel=1e-5)
    assert sgd_sum.loc[0, "loss_relative_difference"] < 1e-6  # same weights, same batch
    # ... and at lr/4 the very update of the baseline, update after update
    lr4 = by["SGD sum at lr/4"]
    assert len(lr4) == 4
    assert lr4["update_ratio"].to_numpy() == pytest.approx(np.ones(4), rel=1e-4)
    assert lr4["loss_relative_difference"].max() < 1e-5
    # AdamW divides by sqrt(v): the sum of four means steps as far as one mean
    adam_sum = by["AdamW N=4: 4x8=32, in-step sum"]
    assert adam_sum["update_ratio"].to_numpy() == pytest.approx(np.ones(4), rel=1e-2)
    assert adam_sum["loss_relative_difference"].max() < 1e-3
    summary = pd.read_csv(suite / "report" / "update_tracking.csv").set_index("configuration")
    assert summary.loc["SGD sum at lr/4", "updates"] == 4
    assert summary.loc["SGD without momentum N=4: 4x8=32, in-step sum, lr 0.05",
                       "first_update_ratio"] == pytest.approx(4.0, rel=1e-5)
