"""SGD's accuracy against the effective rate (N x lr for a sum), and diverged runs scored three
ways, against hand-made records, the records' metrics.json and scipy's Fisher exact test."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swin_gao_lib.analysis.rates import ONE_BATCH, SUMMED, accuracy_vs_effective_rate, rate_table
from swin_gao_lib.analysis.comparisons import per_seed
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.analysis.study import diverged_runs, runs_frame
from swin_gao_lib.analysis.study_tables import study_tables
from swin_gao_lib.records import load_suite
from test_study import write_run

ROOT = Path(__file__).resolve().parents[1]
QUICK = ROOT / "examples" / "study-quick"
SGD = dict(optimizer="sgd", momentum=0.0, weight_decay=0.0)


def sweep(root, seeds=(0, 1, 2, 3)):
    """One batch at lr 0.1 and 0.4, the sum of 4 at 0.1 (effective 0.4) and 0.4 (collapsed)."""
    for seed in seeds:
        noise = 0.002 * seed
        write_run(root, seed=seed, acc=0.95 + noise, learning_rate=0.1, **SGD)
        write_run(root, seed=seed, acc=0.97 + noise, learning_rate=0.4, **SGD)
        write_run(root, seed=seed, acc=0.97 + noise + 0.001, learning_rate=0.1,
                  accumulation_steps=4, reduction="sum", **SGD)
        write_run(root, seed=seed, acc=0.10, val_curve=[0.1, 0.1], learning_rate=0.4,
                  accumulation_steps=4, reduction="sum", **SGD)
        # averaged micro-batches take the baseline's step: not part of the figure
        write_run(root, seed=seed, acc=0.95 + noise, learning_rate=0.1, accumulation_steps=4,
                  reduction="mean", **SGD)


def test_the_effective_rate_is_n_times_lr_for_a_sum(tmp_path):
    sweep(tmp_path)
    table = rate_table(runs_frame(load_suite(tmp_path)))
    got = {(r["series"], r["learning_rate"]): r["effective_rate"] for _, r in table.iterrows()}
    assert got == {(ONE_BATCH, 0.1): 0.1, (ONE_BATCH, 0.4): 0.4,
                   (SUMMED, 0.1): pytest.approx(0.4), (SUMMED, 0.4): pytest.approx(1.6)}
    summed = table.set_index(["series", "learning_rate"]).loc[(SUMMED, 0.1)]
    values = 0.971 + 0.002 * np.arange(4)
    assert summed["learning_mean"] == pytest.approx(values.mean())
    # a percentile bootstrap interval of the mean never leaves the range of the values
    assert values.min() <= summed["learning_low"] < summed["learning_mean"] < summed["learning_high"]
    assert summed["learning_high"] <= values.max()
    collapsed = table.set_index(["series", "learning_rate"]).loc[(SUMMED, 0.4)]
    assert collapsed["collapsed"] == 4 and np.isnan(collapsed["learning_mean"])


def test_the_figure_puts_the_sum_where_one_batch_at_n_lr_lands(tmp_path):
    sweep(tmp_path)
    table = rate_table(runs_frame(load_suite(tmp_path)))
    fig = accuracy_vs_effective_rate(table)
    top, strip = fig.axes[:2]
    points = {}
    for bars in top.containers:  # one errorbar series each, labelled
        line = bars.lines[0]
        points[bars.get_label()] = dict(zip(np.round(np.log2(line.get_xdata())), line.get_ydata()))
    # at effective rate 0.4 (log2 = -1.32 -> -1), the sum at 0.1 sits 0.1 pp above one batch
    assert points[SUMMED][-1] - points[ONE_BATCH][-1] == pytest.approx(0.1)
    # the collapsed arm is counted on the strip, not drawn on the zoomed axis
    assert any(t.get_text() == "4/4" for t in strip.texts)
    assert top.get_ylim()[0] > 90


def test_no_figure_without_two_rates_and_both_series(tmp_path):
    for seed in (0, 1, 2):
        write_run(tmp_path, seed=seed, acc=0.95, learning_rate=0.1, **SGD)
        write_run(tmp_path, seed=seed, acc=0.96, learning_rate=0.4, **SGD)
    assert rate_table(runs_frame(load_suite(tmp_path))).empty
    report = build_report(tmp_path, tmp_path / "report")
    assert "accuracy_vs_effective_rate" not in report.figures
    assert "effective rate" in report.notes["accuracy_vs_effective_rate"]


def test_the_quick_study_effective_rates_match_its_records():
    suite = load_suite(QUICK)
    table = rate_table(runs_frame(suite, diverged_runs(suite))).set_index(
        ["momentum", "series", "learning_rate"])
    # read straight from metrics.json: the sum of 4 at lr 0.1 (effective 0.4)
    accs = [json.loads(p.read_text())["test_accuracy"]
            for p in QUICK.glob("mnist-sgd-lr0.1-n4-sum-s*/metrics.json")]
    row = table.loc[(0.0, SUMMED, 0.1)]
    assert row["effective_rate"] == pytest.approx(0.4) and row["seeds"] == len(accs) == 10
    assert row["learning_mean"] == pytest.approx(np.mean(accs))
    assert table.loc[(0.0, SUMMED, 0.4), "diverged"] == 10


def test_diverged_runs_are_scored_at_chance_at_zero_or_dropped():
    rows = pd.DataFrame({"seed": [0, 1, 2], "test_accuracy": [0.9, np.nan, 0.8],
                         "diverged": [False, True, False], "chance": [0.1, 0.1, 0.1]})
    assert per_seed(rows, "test_accuracy", "at chance") == {0: 0.9, 1: 0.1, 2: 0.8}
    assert per_seed(rows, "test_accuracy", "at 0") == {0: 0.9, 1: 0.0, 2: 0.8}
    assert per_seed(rows, "test_accuracy", "dropped") == {0: 0.9, 2: 0.8}


def test_the_report_writes_the_effective_rate_table_and_sensitivity(tmp_path):
    sweep(tmp_path / "suite")
    out = tmp_path / "report"
    report = build_report(tmp_path / "suite", out)
    assert "accuracy_vs_effective_rate" in report.figures
    assert (out / "effective_rate.csv").is_file() and (out / "accuracy_vs_effective_rate.png").is_file()
    st = study_tables(load_suite(tmp_path / "suite"))
    assert st.sensitivity.empty  # nothing diverged in this suite (the collapsed runs finished)
