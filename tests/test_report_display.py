"""What a person reads in a report: units, one training time, no empty columns, figures
that hide nothing and promise only what the data holds, and the bundled example suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swin_gao_lib.analysis import plots
from swin_gao_lib.records import EXAMPLE_SUITE, load_suite
from swin_gao_lib.analysis.report import (EXAMPLE_REPORT, build_report, comparisons_display,
                                 drop_empty_columns, write_table)
from test_runner_report import fake_suite

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def one_seed_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-seed")
    truth = fake_suite(root / "suite")
    return build_report(root / "suite"), truth, root / "suite" / "report"


def test_tables_of_a_one_seed_suite_have_no_empty_columns(one_seed_report):
    report, _, out = one_seed_report
    for stem in ("summary", "configurations", "comparisons", "findings"):
        table = pd.read_csv(out / f"{stem}.csv")
        empty = [c for c in table.columns if table[c].isna().all()]
        assert not empty, f"{stem}.csv: all-empty columns {empty}"
        header = (out / f"{stem}.md").read_text().splitlines()[0]
        assert "ci_low" not in header and "p_holm" not in header
    # the full comparisons keep their statistics' columns for suites that have them
    assert {"ci_low", "p_holm"} <= set(report.study.comparisons.columns)


def test_drop_empty_columns_and_write_table(tmp_path):
    t = pd.DataFrame({"a": [1, 2], "b": [np.nan, np.nan], "c": [None, "x"]})
    assert list(drop_empty_columns(t).columns) == ["a", "c"]
    empty = pd.DataFrame(columns=["a", "b"])
    assert list(drop_empty_columns(empty).columns) == ["a", "b"]  # the header of an empty table stays
    write_table(t, tmp_path / "t")
    assert list(pd.read_csv(tmp_path / "t.csv").columns) == ["a", "c"]


def test_accuracy_is_percent_in_every_table(one_seed_report):
    report, truth, out = one_seed_report
    summary = pd.read_csv(out / "summary.csv").set_index("run")
    assert summary.loc["mnist-n4", "test accuracy (%)"] == pytest.approx(100 * truth["mnist-n4"][1]["test_accuracy"])
    comp = pd.read_csv(out / "comparisons.csv")
    acc = comp[comp["metric"] == "test_accuracy"].iloc[0]
    raw = report.study.comparisons
    raw_acc = raw[(raw["metric"] == "test_accuracy") & (raw["label"] == acc["label"])
                  & (raw["dataset"] == acc["dataset"])].iloc[0]
    assert acc["unit"] == "%"
    assert acc["difference"] == pytest.approx(100 * raw_acc["difference"])
    assert acc["margin"] == pytest.approx(2.0)  # the +-2 pp margin, in pp
    mem = comp[comp["metric"] == "peak_memory_mib"].iloc[0]
    assert mem["unit"] == "MiB"
    raw_mem = raw[(raw["metric"] == "peak_memory_mib") & (raw["label"] == mem["label"])
                  & (raw["dataset"] == mem["dataset"])].iloc[0]
    assert mem["difference"] == pytest.approx(raw_mem["difference"])  # not scaled


def test_comparisons_display_scales_the_interval_with_the_value():
    comp = pd.DataFrame({"metric": ["test_accuracy", "time_per_image_ms"],
                         "difference": [-0.02, 0.5], "ci_low": [-0.05, 0.1],
                         "ci_high": [0.01, 0.9], "margin": [0.02, np.nan]})
    shown = comparisons_display(comp)
    assert list(shown["unit"]) == ["%", "ms"]
    np.testing.assert_allclose(shown[["difference", "ci_low", "ci_high"]].to_numpy(),
                               [[-2, -5, 1], [0.5, 0.1, 0.9]])


def test_one_training_time_in_the_table_and_the_figure(one_seed_report):
    report, truth, _ = one_seed_report
    table = report.table.set_index("run")
    fig = report.figures["training_time"]
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    for name in ("cifar10-n1", "cifar10-n4"):
        total = truth[name][0]["train_s_steady"].sum()
        assert table.loc[name, "training time (s)"] == pytest.approx(total)
        assert f"training {total:.0f} s" in labels


def test_accuracy_range_spans_at_least_ten_points():
    assert plots.accuracy_range(np.array([92.25, 92.7])) == pytest.approx((87.475, 97.475))
    lo, hi = plots.accuracy_range(np.array([20.0, 80.0]))
    assert lo == pytest.approx(14.0) and hi == pytest.approx(86.0)  # 10% padding when wide
    assert plots.accuracy_range(np.array([99.5])) == pytest.approx((90.0, 100.0))  # kept <= 100
    assert plots.accuracy_range(np.array([0.5])) == pytest.approx((0.0, 10.0))
    assert plots.accuracy_range(np.array([np.nan])) == (0.0, 100.0)


def test_accuracy_vs_updates_hides_no_point(one_seed_report):
    report, _, _ = one_seed_report
    fig = report.figures["accuracy_vs_updates"]
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    for ax in fig.axes:
        legend_box = ax.get_legend().get_window_extent(renderer)
        lo, hi = ax.get_ylim()
        assert hi - lo >= plots.MIN_ACCURACY_SPAN - 1e-9
        for container in ax.containers:
            xy = container.lines[0].get_xydata()
            pixels = ax.transData.transform(xy)
            for px, py in pixels:  # no point under the legend, every point inside the axes
                assert not legend_box.contains(px, py)
                assert ax.get_window_extent(renderer).contains(px, py)
        assert "one seed per configuration" in ax.get_ylabel()


def test_differences_figure_of_one_seed_promises_no_intervals(one_seed_report):
    report, _, _ = one_seed_report
    fig = report.figures["accuracy_differences"]
    for ax in fig.axes:
        title = ax.get_title()
        assert "one seed per configuration" in title and "95% CI" not in title
        bars = [line for line in ax.get_lines()
                if line.get_linestyle() == "-" and line.get_color() != "black"]
        assert not bars  # no interval drawn: one seed has none


def test_the_bundled_example_is_examples_quick():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "bundle_example.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    suite = load_suite(EXAMPLE_SUITE)
    assert sorted(r.name for r in suite.runs) == ["cifar10-baseline", "cifar10-gao",
                                                  "mnist-baseline", "mnist-gao"]


def test_report_without_a_suite_shows_the_bundled_example(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = build_report(None)
    assert report.suite.path == EXAMPLE_SUITE
    assert (tmp_path / EXAMPLE_REPORT / "summary.csv").is_file()
    assert not (EXAMPLE_SUITE / "report").exists()  # never writes into the installed package
