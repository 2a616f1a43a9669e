"""The report page a reader opens first: the answers at the top, in plain words, regenerated.

* :mod:`swin_gao_lib.analysis.plain` cuts each verdict word and sentence from the
  full findings row, so the two cannot disagree; controls that decide nothing
  are left to the full table, the paper's own comparison never;
* :mod:`swin_gao_lib.analysis.opening` counts the runs and, for a one-seed suite,
  says that it tests nothing; diverged runs are one collapsible list;
* every committed example report's tables are what the current code makes of
  its records, and the committed study page holds the answers before its
  first figure, under a ``<title>`` that names the suite.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest

from swin_gao_lib.analysis.opening import Details, failures, opening
from swin_gao_lib.analysis.plain import plain_findings, sentence, verdict_word
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.analysis.study_tables import study_tables
from swin_gao_lib.records import load_suite

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.parent.parent for p in (ROOT / "examples").glob("*/report/findings.csv"))


@pytest.mark.parametrize("verdict, word", [
    ("not supported: equivalent within ±2 pp (at 12 epochs)", "not supported (at 12 epochs)"),
    ("supported (at 16 epochs)", "supported (at 16 epochs)"),
    ("contradicted (1 of 1 higher) (at 64 epochs)", "contradicted (at 64 epochs)"),
    ("untestable (one seed per configuration)", "untestable"),
    ("no verdict (runs not timed interleaved, no noise floor)", "no verdict"),
    ("not made: this suite has no run of its baseline", "not made"),
    ("inconclusive (neither lower nor equivalent within ±0.5 pp)", "inconclusive"),
])
def test_the_verdict_word_is_the_verdicts_head_with_its_budget_mark(verdict, word):
    assert verdict_word(verdict) == word


def test_one_sentence_carries_the_numbers_the_reason_and_the_prediction():
    evidence = ("N=4: -0.4 pp [-1.2, +0.4] equivalent; paired t (one mode); MDE 1.1 pp — "
                "prediction as predicted; N=4 a fixed-budget verdict, at 12 epochs: ...")
    said = sentence("not supported: equivalent within ±2 pp (at 12 epochs)", evidence,
                    "equivalent (Adam divides the 4x out)")
    assert said == ("N=4: -0.4 pp [-1.2, +0.4]; equivalent within ±2 pp; "
                    "the prediction (equivalent) held.")
    failed = sentence("supported (at 16 epochs)", "B=512: -0.3 pp [-0.5, -0.1] lower; MDE 0.2 pp"
                      " — prediction contradicted", "equivalent (same gradient)")
    assert failed == "B=512: -0.3 pp [-0.5, -0.1] lower; the prediction (equivalent) failed."
    assert sentence("untestable (one seed per configuration)", "", "(none stated)") == \
        "One seed per configuration."


def test_plain_findings_keep_the_papers_rows_first_and_drop_silent_controls():
    found = pd.DataFrame([
        {"claim": "c", "role": "secondary", "control": "ctl", "prediction": "equivalent (x)",
         "dataset": "MNIST", "verdict": "no verdict (runs not timed interleaved)", "evidence": ""},
        {"claim": "c", "role": "secondary", "control": "ctl2", "prediction": "lower (x)",
         "dataset": "MNIST", "verdict": "supported", "evidence": "N=4: -1.0 pp [-2, -0.5] lower"},
        {"claim": "c", "role": "primary", "control": "paper", "prediction": "equivalent (x)",
         "dataset": "MNIST", "verdict": "not applicable (no drop)", "evidence": ""},
    ])
    plain = plain_findings(found)
    assert list(plain["control"]) == ["paper", "ctl2"]
    assert list(plain["verdict"]) == ["not applicable", "supported"]


@pytest.fixture(scope="module")
def study():
    return study_tables(load_suite(ROOT / "examples" / "study-quick"))


def test_every_plain_row_is_cut_from_its_full_row(study):
    plain = plain_findings(study.findings)
    full = study.findings.set_index(["claim", "control", "dataset"])
    assert len(plain) >= 10
    assert plain.iloc[0]["control"].startswith("the paper's GAO")
    for _, r in plain.iterrows():
        row = full.loc[(r["claim"], r["control"], r["dataset"])]
        assert row["verdict"].startswith(r["verdict"].split(" (at")[0])
        numbers = r["in one sentence"].split(";")[0]
        if "[" in numbers:  # the interval is the full row's, character for character
            assert numbers.split(" [")[1].split("]")[0] in row["evidence"]


def test_the_opening_counts_runs_and_a_one_seed_suite_says_it_tests_nothing(study):
    text = opening(load_suite(ROOT / "examples" / "study-quick"), study.configurations).text
    assert "149 complete runs, 21 diverged" in text and "tests nothing" not in text
    quick = load_suite(ROOT / "examples" / "quick")
    said = opening(quick, study_tables(quick).configurations).text
    assert "4 complete runs" in said and "this suite tests nothing" in said
    assert "examples/study-quick/report/report.html" in said


def test_diverged_runs_are_one_collapsible_list_with_a_count():
    shown = failures(load_suite(ROOT / "examples" / "study-quick"))
    assert isinstance(shown, Details)
    page = shown._repr_html_()
    assert page.startswith("<details><summary>21 diverged runs") and page.count("<li>") == 21
    assert "loss nan at epoch" in page


@pytest.mark.slow(60)
@pytest.mark.parametrize("suite", EXAMPLES, ids=lambda p: p.name)
def test_each_committed_report_table_is_what_the_current_code_writes(suite, tmp_path):
    """Regenerated from the records into a fresh folder, every CSV and Markdown table is
    byte-identical to the committed one, and no committed table is left over."""
    report = build_report(suite, tmp_path)
    fresh = {p.name for p in report.files if p.suffix in (".csv", ".md")}
    committed = {p.name for p in (suite / "report").iterdir() if p.suffix in (".csv", ".md")}
    assert fresh == committed
    for name in sorted(fresh):
        assert (tmp_path / name).read_bytes() == (suite / "report" / name).read_bytes(), name


def _visible_text(page: str) -> str:
    page = re.sub(r"(?s)<(style|script)[^>]*>.*?</\1>", "", page)
    page = re.sub(r"<img[^>]*>", " [FIGURE] ", page)
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


@pytest.mark.parametrize("suite", ["study-quick", "quick"])
def test_the_committed_page_opens_with_the_answers(suite):
    page = (ROOT / "examples" / suite / "report" / "report.html").read_text()
    assert f"<title>swin-gao report: {suite}</title>" in page
    text = _visible_text(page)
    answers = pd.read_csv(ROOT / "examples" / suite / "report" / "answers.csv")
    first = html.unescape(answers.iloc[0]["in one sentence"])
    assert text.index("Answers: the paper's claims") < text.index(first) < text.index("[FIGURE]")
    assert text.index(first) < 4000  # on the first screen, after a short introduction
    for sentence_ in answers["in one sentence"]:  # the page and the table are one
        assert html.unescape(sentence_) in text


def test_the_comparisons_table_reads_without_decoding():
    """The page once showed raw ids: `time_per_image_ms`, `432.0000` updates, margin `2.0`."""
    from swin_gao_lib.analysis.display import comparisons_display, comparisons_page

    comp = pd.DataFrame({"dataset": "MNIST", "label": "N=4", "metric": ["test_accuracy",
                         "optimizer_updates", "time_per_image_ms"],
                         "baseline_mean": [0.958, 432.0, 1.1366], "mean": [0.959, 432.0, 1.2642],
                         "difference": [0.001, 0.0, 0.1276], "margin": [0.02, None, None],
                         "decision": ["untestable", "not judged", "not judged"], "n": 1})
    page, meanings = comparisons_page(comparisons_display(comp))
    assert list(page["metric"]) == ["test accuracy", "optimizer updates", "time per image"]
    assert list(page["partner mean"]) == ["95.80", "432", "1.137"]
    assert list(page["difference"]) == ["+0.10", "+0", "+0.128"]
    assert list(page["margin"]) == ["±2 pp", "", ""]
    assert set(meanings) <= set(page.columns) and "partner mean" in meanings


def test_one_train_accuracy_in_the_tables_and_a_star_for_it_in_figs_5_6(tmp_path):
    """The tables' "train accuracy" was the running mean under dropout (below validation, the
    opposite of the paper's figures); it is the re-scored one now, drawn as a star."""
    import json

    suite = ROOT / "examples" / "quick"
    report = build_report(suite, tmp_path)
    truth = {p.parent.name: json.loads(p.read_text())["train_eval_accuracy"]
             for p in suite.glob("*/metrics.json")}
    table = report.table.set_index("run")
    assert "final train accuracy (%)" not in table.columns
    for run, value in truth.items():
        assert table.loc[run, "train accuracy, re-scored (%)"] == pytest.approx(100 * value)
    stars = [tuple(l.get_xydata()[0]) for ax in report.figures["accuracy_curves"].axes
             for l in ax.get_lines() if l.get_marker() == "*"]
    expected = {round(100 * v, 6) for v in truth.values()}
    assert {round(y, 6) for _, y in stars} == expected  # one run per arm: the star is its value


def test_the_n_figure_has_the_papers_summed_arm_and_dodges_within_a_fifth_of_a_column(study):
    sweep = study.sweeps["test_accuracy"]
    summed = sweep[sweep["reduction"] == "sum"]
    assert set(summed["training"]) == {"AdamW"}  # SGD's summed arms collapsed: left out
    assert set(summed["dataset"]) == {"CIFAR-10", "MNIST"}
    from swin_gao_lib.analysis import study_plots
    from swin_gao_lib.analysis.arms import ArmStyles
    from swin_gao_lib.analysis.study import n_sweep  # noqa: F401  (the table drawn)

    arms = [study_plots.Arm(r["family"], r["training"], "in_step", r["reduction"],
                            r["lr_scaling"]) for _, r in sweep.iterrows()]
    styles = ArmStyles.for_arms(arms + [study_plots.Arm("baseline", t) for t in sweep["training"]])
    fig = study_plots.metric_vs_n({"test_accuracy": sweep}, {"test_accuracy": "%"}, "t", styles,
                                  scale={"test_accuracy": 100})
    for ax in fig.axes:
        xs = [x for line in ax.get_lines() for x in line.get_xdata()]
        ticks = ax.get_xticks()
        assert all(min(abs(x - t) for t in ticks) <= 0.2 + 1e-9 for x in xs)


def test_collapsed_arms_sit_on_a_strip_and_do_not_stretch_the_accuracy_axis(study):
    from swin_gao_lib.analysis import study_plots
    from swin_gao_lib.analysis.arms import ArmStyles, arm_of

    configs = study.configurations
    styles = ArmStyles.for_arms([arm_of(r) for _, r in configs.iterrows()])
    fig = study_plots.accuracy_vs_updates(configs, styles)
    (ax,) = fig.axes
    lo, hi = ax.get_ylim()
    assert lo > 80  # the learning arms' range, not 0-100%
    notes = [t.get_text() for t in ax.texts]
    assert notes.count("10.0%") == 2 and "collapsed (at chance):" in notes


def test_the_differences_figure_explains_itself(study):
    """Identical numbers with different verdicts say why (Holm's family size), a point at
    -87 pp has a tick beyond it, the paper's arm has its one name, the title names partners."""
    from swin_gao_lib.analysis import study_plots

    fig = study_plots.differences(study.comparisons)
    mnist = next(ax for ax in fig.axes if ax.get_title().startswith("MNIST"))
    values = [t.get_text() for t in mnist.texts]
    assert "-0.06 [-0.41, +0.30] equivalent\nHolm over 1" in values
    # the mean (row 1) holds the paper's GAO's values (row 2) seed by seed, and says so
    assert "-0.06 [-0.41, +0.30] inconclusive\nHolm over 11, the values of row 2" in values
    assert -100 in list(mnist.get_xticks()) and mnist.get_xlim()[0] <= -100
    labels = [t.get_text().replace("\n", " ") for t in mnist.get_yticklabels()]
    assert "the paper's GAO: AdamW N=4: 4x32=128, in-step sum" in labels
    assert labels[1].startswith("the paper's GAO")
    assert "its partner" in mnist.get_title()
    cifar = next(ax for ax in fig.axes if ax.get_title().startswith("CIFAR-10"))
    assert "minus the baseline" in cifar.get_title()
