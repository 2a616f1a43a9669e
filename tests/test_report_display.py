"""What a person reads in a report, on generated records: the data behind each figure, units,
one training time, no empty columns, figures that hide nothing, and the bundled example."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from swin_gao_lib.analysis import plots, study_plots
from swin_gao_lib.analysis.arms import Arm, ArmStyles, arm_of
from swin_gao_lib.analysis.display import convergence_display
from swin_gao_lib.analysis.page import export_html, external_urls
from swin_gao_lib.analysis.report import (EXAMPLE_REPORT, build_report, comparisons_display,
                                          drop_empty_columns, write_table)
from swin_gao_lib.config import make_config, to_yaml
from swin_gao_lib.errors import InputError
from swin_gao_lib.records import EXAMPLE_SUITE, load_suite
from test_study import write_run

REPO = Path(__file__).resolve().parents[1]


def fake_suite(root, epochs=4):
    """Run records as train() writes them, with known numbers."""
    rng = np.random.default_rng(0)
    truth = {}
    for ds in ("mnist", "cifar10"):
        for n in (1, 4):
            cfg = make_config(dataset=ds, accumulation_steps=n, reduction="sum" if n > 1 else "mean",
                              epochs=epochs, run_name=f"{ds}-n{n}")
            run = root / cfg.run_name
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(to_yaml(cfg))
            hist = pd.DataFrame({
                "epoch": range(1, epochs + 1),
                "loss": np.linspace(2, 1, epochs), "running_accuracy": np.linspace(0.2, 0.8, epochs) - 0.01 * n,
                "val_loss": np.linspace(2.1, 1.2, epochs), "val_accuracy": np.linspace(0.15, 0.7, epochs),
                "epoch_s": 10.0, "train_s": 9.0, "compile_s": [3.0] + [0.0] * (epochs - 1),
                "train_s_steady": 5 + n + rng.random(epochs), "val_s": 1.0, "images_per_s": 100.0,
            })
            hist.to_csv(run / "history.csv", index=False)
            metrics = {"test_accuracy": 0.6 + 0.01 * n, "test_loss": 1.0,
                       "final_train_accuracy": hist["running_accuracy"].iloc[-1],
                       "final_val_accuracy": hist["val_accuracy"].iloc[-1],
                       "train_time_per_epoch_s": float(hist["train_s_steady"].median()),
                       "total_time_s": float(hist["epoch_s"].sum()), "images_per_s": 100.0 / n,
                       "peak_memory_mib": 1000.0 / n, "optimizer_updates": 100 * epochs,
                       "micro_batch_size": cfg.micro_batch_size, "epochs_completed": epochs,
                       "environment": {"device": "CPU: test"}}
            (run / "metrics.json").write_text(json.dumps(metrics))
            truth[cfg.run_name] = (hist, metrics)
    # an incomplete run (no metrics.json) must be listed, not plotted
    (root / "crashed").mkdir()
    (root / "crashed" / "history.csv").write_text("epoch,loss\n1,2.0\n")
    return truth


@pytest.fixture(scope="module")
def one_seed_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-seed")
    truth = fake_suite(root / "suite")
    return build_report(root / "suite"), truth, root / "suite" / "report"


def test_report_data_behind_the_figures(one_seed_report):
    report, truth, out = one_seed_report
    assert [p.name for p in report.suite.incomplete] == ["crashed"]
    assert sorted(report.table["run"]) == sorted(truth)
    row = report.table.set_index("run").loc["cifar10-n4"]
    assert row["test accuracy (%)"] == pytest.approx(64) and row["optimizer updates"] == 400
    # one training time: the sum of the epochs' steady times, which the figure's dots are
    for name in ("cifar10-n1", "cifar10-n4"):
        total = truth[name][0]["train_s_steady"].sum()
        assert report.table.set_index("run").loc[name, "training time (s)"] == pytest.approx(total)
        assert any(t.get_text().endswith(f"training {total:.0f} s")
                   for ax in report.figures["training_time"].axes for t in ax.get_xticklabels())
    assert row["configuration"] == "AdamW N=4: 4x32=128, in-step sum" and row["micro-batch"] == 32

    # Figs. 3-4: one panel per data set, baseline and GAO, every epoch's time.
    fig = report.figures["training_time"]
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["CIFAR-10: training time per epoch",
                                                "MNIST: training time per epoch"]
    for ax in axes:  # the configurations' names (wrapped), then the run's training time
        names = [" ".join(t.get_text().split("\n")[:-1]) for t in ax.get_xticklabels()]
        assert names == ["AdamW baseline, B=128", "AdamW N=4: 4x32=128, in-step sum"]
        assert "(s)" in ax.get_ylabel()
    times = report.times
    for name, (hist, _) in truth.items():
        np.testing.assert_allclose(times.loc[times["run"] == name, "train time (s)"],
                                   hist["train_s_steady"])
    # the dots drawn are exactly the per-epoch times
    drawn = np.sort(np.concatenate([c.get_offsets()[:, 1] for c in axes[0].collections
                                    if len(c.get_offsets())]))
    expected = np.sort(np.concatenate([truth[n][0]["train_s_steady"]
                                       for n in ("cifar10-n1", "cifar10-n4")]))
    np.testing.assert_allclose(drawn, expected)

    # Figs. 5-6: every run's train and validation curve, and its test line, in the GAO's
    # colour (blue) beside the baseline's (black); all epochs on 0-100%, and zoomed.
    fig = report.figures["accuracy_curves"]
    panels = {ax.get_title(): ax for ax in fig.axes if ax.get_visible()}
    assert set(panels) == {"MNIST: all epochs, 0–100%", "CIFAR-10: all epochs, 0–100%",
                           "MNIST: epochs 2–4, zoomed (the box on the left)",
                           "CIFAR-10: epochs 2–4, zoomed (the box on the left)"}
    ax = panels["CIFAR-10: all epochs, 0–100%"]
    hist, metrics = truth["cifar10-n4"]
    lines = {l.get_linestyle(): l for l in ax.get_lines() if l.get_color() == "#1f77b4"}
    np.testing.assert_allclose(lines["-"].get_ydata(), 100 * hist["running_accuracy"])
    np.testing.assert_allclose(lines["--"].get_ydata(), 100 * hist["val_accuracy"])
    assert lines[":"].get_ydata()[0] == pytest.approx(100 * metrics["test_accuracy"])
    assert ax.get_xlabel() == "epoch" and ax.get_ylabel() == "accuracy (%)"
    assert ax.get_ylim() == (0, 100)

    names = sorted(p.name for p in report.files)
    assert names == sorted(["accuracy_curves.png", "accuracy_curves.svg", "summary.csv", "summary.md",
                            "training_time.png", "training_time.svg",
                            "configurations.csv", "configurations.md", "comparisons.csv",
                            "comparisons.md", "findings.csv", "findings.md",
                            "answers.csv", "answers.md",  # the page's opening, in words
                            "convergence.csv", "convergence.md",  # the plateau rule per config
                            "accuracy_differences.png", "accuracy_differences.svg",
                            # the paper's summed arm against N (its baseline at N=1)
                            "accuracy_vs_n.png", "accuracy_vs_n.svg",
                            "cost_vs_n.png", "cost_vs_n.svg"])
    sweep = report.study.sweeps["test_accuracy"]
    cifar = sweep[sweep["dataset"] == "CIFAR-10"]
    assert list(cifar["N"]) == [1, 4] and set(cifar["reduction"]) == {"sum"}
    np.testing.assert_allclose(cifar["mean"], [truth[r][1]["test_accuracy"]
                                               for r in ("cifar10-n1", "cifar10-n4")])
    assert "| dataset" in (out / "summary.md").read_text()


def test_report_errors(tmp_path):
    with pytest.raises(InputError, match="no such suite folder"):
        load_suite(tmp_path / "nothing")
    (tmp_path / "empty" / "run").mkdir(parents=True)
    with pytest.raises(InputError, match="holds no complete run"):
        load_suite(tmp_path / "empty")


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


def test_accuracy_range_spans_at_least_ten_points():
    assert plots.accuracy_range(np.array([92.25, 92.7])) == pytest.approx((87.475, 97.475))
    lo, hi = plots.accuracy_range(np.array([20.0, 80.0]))
    assert lo == pytest.approx(14.0) and hi == pytest.approx(86.0)  # 10% padding when wide
    assert plots.accuracy_range(np.array([99.5])) == pytest.approx((90.0, 100.0))  # kept <= 100
    assert plots.accuracy_range(np.array([0.5])) == pytest.approx((0.0, 10.0))
    assert plots.accuracy_range(np.array([np.nan])) == (0.0, 100.0)


def test_differences_figure_of_one_seed_promises_no_intervals(one_seed_report):
    report, _, _ = one_seed_report
    fig = report.figures["accuracy_differences"]
    for ax in fig.axes:
        title = ax.get_title()
        assert "one seed per configuration" in title and "95% CI" not in title
        bars = [line for line in ax.get_lines()
                if line.get_linestyle() == "-" and line.get_color() != "black"]
        assert not bars  # no interval drawn: one seed has none


def test_report_without_a_suite_shows_the_bundled_example(tmp_path, monkeypatch):
    # examples/quick, file for file (tools/bundle_example.py --check, in tools/tests)
    monkeypatch.chdir(tmp_path)
    report = build_report(None)
    assert report.suite.path == EXAMPLE_SUITE
    assert sorted(r.name for r in report.suite.runs) == ["cifar10-baseline", "cifar10-gao",
                                                         "mnist-baseline", "mnist-gao"]
    assert (tmp_path / EXAMPLE_REPORT / "summary.csv").is_file()
    assert not (EXAMPLE_SUITE / "report").exists()  # never writes into the installed package


# ------------------------------------------------------------------ figures a reviewer accepts
def many_arms_suite(root):
    """Records of a study with many arms, two seeds each: an N sweep, optimizer mode, SGD,
    a cosine schedule, fewer updates (equal micro-batch, plain large batch), two data sets."""
    arms = [{}, {"accumulation_steps": 4, "reduction": "sum"},
            {"accumulation_steps": 2}, {"accumulation_steps": 4},
            {"accumulation_steps": 4, "accumulation_mode": "optimizer"},
            {"accumulation_steps": 4, "batch_size": 512, "lr_scaling": "sqrt"},
            {"batch_size": 512, "lr_scaling": "sqrt"},
            {"optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.1},
            {"optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.1, "accumulation_steps": 4,
             "reduction": "sum"},
            {"lr_schedule": "cosine"}, {"lr_schedule": "cosine", "accumulation_steps": 4}]
    for seed in (0, 1):
        for k, kw in enumerate(arms):
            write_run(root, seed=seed, acc=0.9 - 0.01 * k + 0.003 * seed, gap=0.02, **kw)
        for kw in arms[:2]:
            write_run(root, seed=seed, acc=0.4 + 0.01 * seed, dataset="cifar10", **kw)


@pytest.fixture(scope="module")
def many_arms_report(tmp_path_factory):
    root = tmp_path_factory.mktemp("many-arms")
    many_arms_suite(root / "suite")
    save = plots.save
    plots.save = lambda fig, stem: []  # the figures are checked as objects: no files needed
    try:
        return build_report(root / "suite")
    finally:
        plots.save = save


def _all_figures(*reports):
    for report in reports:
        for name, fig in report.figures.items():
            fig.draw_without_rendering()  # lay the figure out as saved
            yield f"{report.suite.path.name}/{name}", fig


def test_no_legend_covers_data(one_seed_report, many_arms_report):
    # outside every panel, a legend covers no point drawn in one
    for name, fig in _all_figures(one_seed_report[0], many_arms_report):
        legends = [leg for leg in fig.legends] + [ax.get_legend() for ax in fig.axes
                                                  if ax.get_legend() is not None]
        for legend in legends:
            box = legend.get_window_extent()
            for ax in fig.axes:
                assert not box.overlaps(ax.get_window_extent()), f"{name}: legend over a panel"


def test_figures_read_at_full_size(one_seed_report, many_arms_report):
    for name, fig in _all_figures(one_seed_report[0], many_arms_report):
        width, height = fig.get_size_inches() * plots.DPI
        assert width <= 1400, f"{name}: {width:.0f} px wide"
        texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
                 if t.get_text() and t.get_visible()]
        small = {t.get_text() for t in texts if t.get_fontsize() < 9}
        assert not small, f"{name}: text under 9 pt: {sorted(small)[:5]}"


def _legend_styles(fig) -> dict[str, tuple[str, str]]:
    styles = {}
    for legend in fig.legends:
        for handle, text in zip(legend.legend_handles, legend.get_texts()):
            if hasattr(handle, "get_marker") and handle.get_marker() not in (None, "None", ""):
                styles[text.get_text()] = (handle.get_color(), handle.get_marker())
    return styles


def test_every_arm_has_one_distinct_style_in_every_figure(many_arms_report):
    configs = many_arms_report.study.configurations
    arm_by_name = {}
    for _, row in configs.iterrows():
        arm = arm_of(row)
        arm_by_name[row["label"]] = arm_by_name[arm.label] = arm
    seen: dict = {}
    figures_with_arms = 0
    for name, fig in _all_figures(many_arms_report):
        named = {text: style for text, style in _legend_styles(fig).items()
                 if text in arm_by_name}
        if len(named) < 2:
            continue
        figures_with_arms += 1
        arms = {arm_by_name[text]: style for text, style in named.items()}
        # distinct within the figure: no two arms share colour and marker
        assert len(set(arms.values())) == len(arms), f"{name}: arms share a style"
        for arm, style in arms.items():  # the same in every figure
            assert seen.setdefault(arm, style) == style, f"{name}: {arm.label} changed style"
    assert figures_with_arms >= 4  # Figs. 5-6, vs updates, vs N (accuracy, cost)
    assert set(seen) == {arm_of(r) for _, r in configs.iterrows()}  # every arm was checked


def test_arm_styles_are_fixed_distinct_and_canonical():
    arms = [Arm("baseline", "AdamW"), Arm("equal effective batch", "AdamW", "in_step", "sum"),
            Arm("equal effective batch", "AdamW", "in_step", "mean"),
            Arm("baseline", "SGD without momentum"),
            Arm("equal micro-batch", "AdamW", "in_step", "mean", "sqrt"),
            Arm("equal micro-batch", "AdamW", "in_step", "mean", "linear"),
            Arm("equal micro-batch", "AdamW", "in_step", "mean", "none")]
    a, b = ArmStyles.for_arms(arms), ArmStyles.for_arms(arms[::-1])
    assert dict(a.items()) == dict(b.items())  # the order the arms come in does not matter
    assert len({(s.color, s.marker) for _, s in a.items()}) == len(arms)
    assert (a[arms[0]].color, a[arms[0]].marker) == ("#000000", "o")  # a baseline: black
    assert (a[arms[1]].color, a[arms[1]].marker) == ("#1f77b4", "o")  # the paper's GAO: blue
    assert a[arms[3]].marker == "s"  # SGD: a square
    # a smaller suite keeps the common arms' looks
    small = ArmStyles.for_arms(arms[:2])
    assert small[arms[1]] == a[arms[1]] and small[arms[0]] == a[arms[0]]


def test_the_paper_gao_has_one_name_everywhere(one_seed_report):
    report, _, out = one_seed_report
    name = "AdamW N=4: 4x32=128, in-step sum"
    assert name in set(pd.read_csv(out / "summary.csv")["configuration"])
    assert name in set(pd.read_csv(out / "configurations.csv")["configuration"])
    assert name in set(pd.read_csv(out / "comparisons.csv")["label"])
    assert name in _legend_styles(report.figures["accuracy_curves"])
    ticks = [t.get_text() for ax in report.figures["accuracy_differences"].axes
             for t in ax.get_yticklabels()]
    # the same name, marked as the paper's (wrapped on two lines in the figure)
    assert f"the paper's GAO: {name}" in [tick.replace("\n", " ") for tick in ticks]


def test_one_update_count_gives_a_sentence_not_a_figure(tmp_path):
    fake_suite(tmp_path / "suite")  # every run made 400 updates
    stale = tmp_path / "suite" / "report"
    stale.mkdir()
    for ext in ("png", "svg"):  # drawn by an earlier version of the suite
        (stale / f"accuracy_vs_updates.{ext}").write_text("old")
    report = build_report(tmp_path / "suite")
    assert "accuracy_vs_updates" not in report.figures
    assert "made the same number of updates (CIFAR-10: 400; MNIST: 400)" in \
        report.notes["accuracy_vs_updates"]
    assert not list(stale.glob("accuracy_vs_updates.*"))
    shown = report.show("accuracy_vs_updates")
    assert repr(shown) == report.notes["accuracy_vs_updates"]  # text, not a Python repr
    assert shown._repr_markdown_() == report.notes["accuracy_vs_updates"]


def test_accuracy_vs_updates_columns_hold_the_true_counts(many_arms_report):
    fig = many_arms_report.figures["accuracy_vs_updates"]
    (ax,) = fig.axes  # CIFAR-10 has one update count: left out, and the title says so
    assert "not drawn for CIFAR-10" in fig.get_suptitle()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["4", "16"]
    xs = [c.lines[0].get_xydata()[0, 0] for c in ax.containers]
    assert all(-0.5 < x < 0.5 or 0.5 < x < 1.5 for x in xs)  # each point in its count's column
    assert any(t.get_text() == "N=2" for t in ax.texts)  # the N sweep's points say their N


def test_accuracy_curves_zoom_where_the_values_are(one_seed_report):
    report, truth, _ = one_seed_report
    fig = report.figures["accuracy_curves"]
    panels = {ax.get_title(): ax for ax in fig.axes}
    full = panels["MNIST: all epochs, 0–100%"]
    zoom = panels["MNIST: epochs 2–4, zoomed (the box on the left)"]
    assert full.get_ylim() == (0, 100)
    late = [100 * v for name in ("mnist-n1", "mnist-n4") for col in ("running_accuracy", "val_accuracy")
            for v in truth[name][0][col][1:]]
    late += [100 * truth[n][1]["test_accuracy"] for n in ("mnist-n1", "mnist-n4")]
    lo, hi = zoom.get_ylim()
    assert lo <= min(late) and max(late) <= hi
    # zoomed: the values with a margin of 10% (at least 1 pp), not 0-100
    assert hi - lo <= 1.2 * (max(late) - min(late)) + 2 + 1e-9 and hi - lo < 60


def test_differences_show_the_margin_over_points_and_the_values():
    comp = pd.DataFrame({"dataset": ["CIFAR-10", "MNIST"], "metric": "test_accuracy",
                         "label": ["a", "a"], "difference": [-0.019, 0.001],
                         "ci_low": [-0.03, -0.004], "ci_high": [-0.008, 0.006], "margin": 0.02,
                         "test": "paired t", "decision": ["lower", "equivalent"]})
    fig = study_plots.differences(comp)
    for ax in fig.axes:
        margins = [l for l in ax.get_lines() if l.get_linestyle() == "--"]
        points = [l for l in ax.get_lines() if l.get_marker() == "o"]
        assert len(margins) == 2 and {l.get_xdata()[0] for l in margins} == {-2.0, 2.0}
        assert min(l.get_zorder() for l in margins) > max(l.get_zorder() for l in points)
        values = [t.get_text() for t in ax.texts]
        assert values and all(re.fullmatch(r"[+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\] "
                                           r"(lower|equivalent)", v) for v in values), values


# ------------------------------------------------------------------ the one-page report
class _Loads(__import__("html.parser").parser.HTMLParser):
    """What a browser fetches: src/href of script, link and img (and what inline code imports)."""

    def __init__(self):
        super().__init__()
        self.external, self.tags, self._script = [], [], False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        a = dict(attrs)
        url = a.get({"script": "src", "link": "href", "img": "src"}.get(tag, ""), None) or ""
        if url.startswith(("http:", "https:", "//")):
            self.external.append(f"{tag}: {url}")
        self._script = tag == "script"

    def handle_data(self, data):
        if self._script and ("import(" in data or "https://" in data or "http://" in data):
            self.external.append(f"inline script: {data.strip()[:80]}")


@pytest.fixture(scope="module")
def report_page(tmp_path_factory) -> str:
    """The committed report notebook (its stored outputs) exported as the kit exports it."""
    target = tmp_path_factory.mktemp("page") / "report.html"
    return export_html(REPO / "notebooks" / "report.ipynb", target).read_text()


def test_the_report_page_loads_nothing_from_a_network(report_page):
    parser = _Loads()
    parser.feed(report_page)
    assert not parser.external
    assert parser.tags.count("img") >= 3 and "data:image/png;base64," in report_page
    assert not external_urls(report_page)
    # the detector sees what nbconvert's stock template loads
    stock = ('<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.1.10/require.min.js">'
             '</script><script>const m = (await import("https://cdn.x/mermaid.esm.min.mjs"))</script>'
             '<link rel="stylesheet" href="//fonts.example/a.css"><img src="http://x/y.png">')
    assert len(external_urls(stock)) == 4


def test_the_report_page_reads_as_text_not_as_python(report_page):
    text = __import__("re").sub(r"<[^>]+>", " ", report_page)
    for repr_ in ("incomplete: []", "'no N sweep", "<IPython.core.display", "<Figure size",
                  "Unnamed: 0", "untested"):
        assert repr_ not in text, repr_
    assert "<th></th>" not in report_page  # no pandas index column
    assert "complete runs" in text and "untestable" in text
    # every column the comparisons text names is in the table above it, or explained
    assert "`p_holm`" not in report_page or "p_holm</th>" in report_page


def test_points_against_n_sit_on_their_n_unless_they_share_it(many_arms_report):
    # CIFAR-10's panel has the baseline and the paper's summed arm; MNIST's the N sweep
    (ax,) = [a for a in many_arms_report.figures["accuracy_vs_n"].axes
             if a.get_title() == "MNIST" and a.get_ylabel().startswith("test")]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "4"]
    xs = sorted({round(float(c.lines[0].get_xydata()[0, 0]), 6) for c in ax.containers})
    assert 1.0 in xs  # N=2: one arm only, exactly on its tick
    beside = [x for x in xs if 1.5 < x < 2.5]  # N=4: several arms, side by side around it
    assert len(beside) >= 2 and min(beside) < 2 < max(beside)


def test_differences_of_tens_of_points_keep_the_margin_readable():
    comp = pd.DataFrame({"dataset": "MNIST", "metric": "test_accuracy", "label": ["a", "b"],
                         "difference": [-0.60, -0.001], "ci_low": [-0.75, -0.006],
                         "ci_high": [-0.45, 0.004], "margin": 0.02, "test": "paired t",
                         "decision": ["lower", "equivalent"]})
    fig = study_plots.differences(comp)
    (ax,) = fig.axes
    # linear within two margins (where the decisions are), logarithmic beyond
    assert ax.get_xscale() == "symlog" and ax.xaxis.get_transform().linthresh == 4
    assert {-2.0, 2.0, -10.0} <= set(ax.get_xticks()) and "logarithmic" in ax.get_xlabel()
    lin = study_plots.differences(comp.assign(difference=[-0.03, -0.001], ci_low=[-0.05, -0.006],
                                              ci_high=[-0.01, 0.004]))
    assert lin.axes[0].get_xscale() == "linear"


def test_each_data_set_is_drawn_with_its_own_margin():
    """The quick study decides MNIST at +-0.5 pp and CIFAR-10 at +-2: one band at the
    largest margin drew MNIST's decisions against a margin they were not made at."""
    comp = pd.DataFrame({"dataset": ["CIFAR-10", "MNIST"], "metric": "test_accuracy",
                         "label": ["a", "a"], "difference": [-0.004, -0.001],
                         "ci_low": [-0.012, -0.004], "ci_high": [0.004, 0.003],
                         "margin": [0.02, 0.005], "test": "paired t",
                         "decision": ["equivalent", "equivalent"]})
    fig = study_plots.differences(comp)
    for ax, m in zip(fig.axes, (2.0, 0.5)):
        band = {l.get_xdata()[0] for l in ax.get_lines() if l.get_linestyle() == "--"}
        assert band == {-m, m}, (ax.get_title(), band)
    texts = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "equivalence margin: CIFAR-10 ±2 pp, MNIST ±0.5 pp" in texts


def test_one_seed_draws_no_margin_band():
    """The quick suite's one-seed CIFAR-10 dot (-1.97 pp) sat on the -2 pp margin line and read
    as a reproduced drop: with no interval there is no decision, so no margin is drawn."""
    comp = pd.DataFrame({"dataset": "CIFAR-10", "metric": "test_accuracy", "label": ["a"],
                         "difference": [-0.0197], "ci_low": [float("nan")],
                         "ci_high": [float("nan")], "margin": 0.02, "test": "none",
                         "decision": ["untested"]})
    fig = study_plots.differences(comp)
    (ax,) = fig.axes
    assert not [l for l in ax.get_lines() if l.get_linestyle() == "--"]
    assert not ax.patches  # no shaded band
    assert not [t for legend in fig.legends for t in legend.get_texts() if "margin" in t.get_text()]


def test_the_settling_table_reads_in_percentage_points():
    conv = pd.DataFrame({"dataset": ["MNIST"], "configuration": ["AdamW baseline, B=128"],
                         "family": ["baseline"], "seeds": [10], "learning_seeds": [9],
                         "epochs": [12], "val_slope": [0.00123], "val_slope_low": [0.0004],
                         "val_slope_high": [0.00206], "threshold": [0.001], "settled": [False],
                         "state": ["still learning"], "final_val_accuracy": [0.97654],
                         "train_eval_accuracy": [0.99], "test_accuracy": [0.9712]})
    row = convergence_display(conv).iloc[0]
    assert row["val slope, last 6 epochs (pp/epoch)"] == 0.12
    assert row["95% interval (pp/epoch)"] == "[+0.04, +0.21]"
    assert row["settled below (pp/epoch)"] == 0.1 and row["state"] == "still learning"
    assert row["learning seeds"] == 9
    assert row["final val accuracy (%)"] == 97.65 and row["test accuracy (%)"] == 97.12
