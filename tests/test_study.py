"""The study analysis on synthetic run records built to support and to refute each claim."""

import json

import numpy as np
import pandas as pd
import papermill as pm
import pytest
from scipy import stats as st

from swin_gao_lib.config import make_config, to_yaml
from swin_gao_lib.records import load_suite
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.analysis.study_tables import study_tables
from swin_gao_lib.analysis.tracking import loss_tracking_summary
from swin_gao_lib.analysis.stats import holm
from swin_gao_lib.analysis.study import MARGINS
from swin_gao_lib.runs.execute import find_notebook

N_TRAIN = 1000
SEEDS = (0, 1, 2)
NOISE = (0.004, -0.003, 0.001)  # per-seed noise shared by every configuration (seeds pair)


def write_run(root, *, seed, acc, gap=0.0, time=2.0, memory=1000.0, updates=None, loss=None,
              val_curve=None, **kw):
    """One run's records as train() writes them; by default 2 epochs (loss 2.0, 1.5; val
    accuracy 0.5, then ``acc``) and their updates at its batch."""
    cfg = make_config(dataset=kw.pop("dataset", "mnist"), seed=seed, **kw)
    name = (f"{cfg.dataset}-{cfg.optimizer}-m{cfg.momentum:g}-lr{cfg.learning_rate:g}-"
            f"n{cfg.accumulation_steps}-b{cfg.batch_size}-{cfg.accumulation_mode}-"
            f"{cfg.reduction}-{cfg.lr_scaling}-{cfg.lr_schedule}-e{cfg.epochs}-s{seed}")
    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(to_yaml(cfg))
    val = [0.5, acc] if val_curve is None else list(val_curve)
    loss = ([2.0, 1.5] if val_curve is None else [2.0 - 0.1 * i for i in range(len(val))]
            ) if loss is None else list(loss)
    pd.DataFrame({"epoch": range(1, len(val) + 1), "loss": loss,
                  "running_accuracy": [0.5] * (len(val) - 1) + [acc + gap],
                  "val_loss": [v + 0.1 for v in loss], "val_accuracy": val,
                  "train_s_steady": [time] * len(val)}).to_csv(run / "history.csv", index=False)
    updates = 2 * -(-N_TRAIN // cfg.batch_size) if updates is None else updates
    metrics = {
        "test_accuracy": acc, "train_eval_accuracy": acc + gap, "generalization_gap": gap,
        "final_train_accuracy": acc + gap, "final_val_accuracy": val[-1],
        "train_time_per_epoch_s": time, "total_time_s": 2 * time, "images_per_s": N_TRAIN / time,
        "peak_memory_mib": memory, "optimizer_updates": updates, "epochs_completed": 2,
        "micro_batch_size": cfg.micro_batch_size, "samples": {"train": N_TRAIN},
        "effective_learning_rate": cfg.effective_learning_rate,
        "environment": {"device": "CPU: synthetic"},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    return run


def study_suite(root, *, micro_drop, micro_gap, batch_time, seeds=SEEDS):
    """A baseline, equal batch at N=2, 4 (``batch_time`` s/epoch against 2.0) and equal
    micro-batch at N=4 (``micro_drop`` lower, its gap ``micro_gap`` larger)."""
    for seed, noise in zip(seeds, NOISE):
        write_run(root, seed=seed, acc=0.80 + noise, gap=0.01)
        for n in (2, 4):
            # same gradient: same accuracy up to a tiny unpaired wobble
            write_run(root, seed=seed, acc=0.80 + noise + 0.0005 * (-1) ** seed, gap=0.01,
                      time=batch_time * (1 + 0.01 * seed), memory=1000 / n, accumulation_steps=n)
        write_run(root, seed=seed, acc=0.80 + noise - micro_drop + 0.002 * seed,
                  gap=0.01 + micro_gap + 0.001 * seed, accumulation_steps=4, batch_size=512)


def verdicts(report):
    f = getattr(report, "study", report).findings
    return {(row.claim.split()[1] if row.claim.startswith("GA") else "overfitting",
             "micro" if "micro" in row.control else "batch"): row.verdict
            for row in f.itertuples()}


def test_families_baselines_labels_and_paired_comparisons(tmp_path):
    study_suite(tmp_path, micro_drop=0.1, micro_gap=0.05, batch_time=3.0)
    st_ = study_tables(load_suite(tmp_path))
    c = st_.configurations.set_index("label")
    assert list(c["family"]) == ["baseline", "equal effective batch", "equal effective batch",
                                 "equal micro-batch"]
    assert list(c.index) == ["AdamW baseline, B=128", "AdamW N=2: 2x64=128, in-step mean",
                             "AdamW N=4: 4x32=128, in-step mean",
                             "AdamW N=4: 4x128=512, in-step mean"]
    assert (c["seeds"] == 3).all()
    base = c.loc["AdamW baseline, B=128"]
    assert base["test_accuracy_mean"] == pytest.approx(0.80 + np.mean(NOISE))
    assert base["test_accuracy_std"] == pytest.approx(np.std(np.add(0.8, NOISE), ddof=1))
    assert c.loc["AdamW N=4: 4x128=512, in-step mean", "optimizer_updates_mean"] == 4
    assert base["optimizer_updates_mean"] == 16
    assert base["time_per_image_ms_mean"] == pytest.approx(2.0)  # 2 s / 1000 images
    # the comparisons are paired t-tests over the seeds
    comp = st_.comparisons
    row = comp[(comp["label"] == "AdamW N=4: 4x128=512, in-step mean")
               & (comp["metric"] == "test_accuracy")].iloc[0]
    a = [0.80 + n - 0.1 + 0.002 * s for s, n in zip(SEEDS, NOISE)]
    b = [0.80 + n for n in NOISE]
    ref = st.ttest_rel(a, b)
    ci = ref.confidence_interval()
    assert row["test"] == "paired t" and row["n"] == 3
    assert row["difference"] == pytest.approx(np.mean(a) - np.mean(b))
    assert row["p_value"] == pytest.approx(ref.pvalue)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high))
    assert row["significant"] == -1


#: A time margin, as a measured noise floor would give (the default has none).
TIMED = {**MARGINS, "time_per_image_ms": 0.1}


def test_findings_supporting_every_claim(tmp_path):
    # Equal micro-batch: -10 pp with a +5 pp larger gap; equal batch: 1.5x slower.
    study_suite(tmp_path, micro_drop=0.10, micro_gap=0.05, batch_time=3.0)
    v = verdicts(build_report(tmp_path))
    assert v[("lowers", "micro")] == "supported (at 40 epochs)"  # 2 epochs of curve: unsettled
    assert v[("lowers", "batch")] == "not supported: equivalent within ±2 pp (at 40 epochs)"
    # no noise floor measured: time differences are numbers, not verdicts
    assert v[("raises", "batch")] == v[("raises", "micro")] == (
        "no verdict (runs not timed interleaved, no noise floor)")
    assert v[("overfitting", "micro")] == "supported (at 40 epochs)"
    assert v[("overfitting", "batch")].startswith("not applicable")
    timed = verdicts(study_tables(load_suite(tmp_path), TIMED))
    assert timed[("raises", "batch")] == "supported"
    assert timed[("raises", "micro")] == "not supported: equivalent within ±0.1 ms/img"
    table = study_tables(load_suite(tmp_path)).findings_table
    assert list(table.columns) == ["claim", "role", "control", "prediction", "margin", "MNIST"]
    assert set(table["role"]) == {"secondary"}  # no paper comparison (in-step sum) here
    assert set(table["prediction"]) == {"(none stated)"}
    assert set(table["margin"]) == {
        "±2 pp", "±2 pp of the train-test gap",
        "none: no noise floor measured, so no time verdict (numbers only)"}


def test_findings_refuting_every_claim(tmp_path):
    # a drop with a SMALLER gap (underfitting), and accumulation faster than the baseline
    study_suite(tmp_path, micro_drop=0.10, micro_gap=-0.04, batch_time=1.5)
    v = verdicts(build_report(tmp_path))
    assert verdicts(study_tables(load_suite(tmp_path), TIMED))[("raises", "batch")] == (
        "contradicted (2 of 2 lower)")
    assert v[("overfitting", "micro")].startswith("contradicted") and "underfits" in v[("overfitting", "micro")]
    # and accuracy that rises significantly contradicts "GA lowers accuracy"
    other = tmp_path.parent / "rises"
    study_suite(other, micro_drop=-0.05, micro_gap=0.0, batch_time=2.0)
    v = verdicts(build_report(other))
    assert v[("lowers", "micro")].startswith("contradicted")
    assert v[("overfitting", "micro")].startswith("not applicable")


def test_overfitting_is_asked_at_each_drop_with_a_margin_the_drop_sets(tmp_path):
    # -10 pp with an unchanged gap: train accuracy falls as much as test -- not overfitting
    study_suite(tmp_path, micro_drop=0.10, micro_gap=0.0, batch_time=3.0)
    found = build_report(tmp_path).study.findings
    row = found[(found["claim"] == "the accuracy drop is due to overfitting")
                & found["control"].str.contains("micro")].iloc[0]
    assert row["verdict"].startswith("not supported: equivalent within a margin smaller than "
                                     "the drop")
    assert row["verdict"].endswith("the train accuracy falls too: the model fits its own images "
                                   "less well")
    # study_suite's noise: the drop is -9.8 pp, the gap within +-0.27 pp of the baseline's
    assert "drop -9.80 pp, gap +0.10 pp" in row["evidence"]
    assert "equivalent from ±0.27 pp" in row["evidence"]
    assert "train accuracy (re-scored) -9.70 pp" in row["evidence"] and row["evidence"].endswith(
        "lower")


def test_noisy_small_differences_are_inconclusive_never_no_effect(tmp_path):
    # per-seed differences +3, -4, +2 pp: a mean near 0, a 90% CI far wider than +-2 pp
    for seed, wobble in zip(SEEDS, (0.03, -0.04, 0.02)):
        write_run(tmp_path, seed=seed, acc=0.80)
        write_run(tmp_path, seed=seed, acc=0.80 + wobble, accumulation_steps=2)
    report = build_report(tmp_path)
    v = verdicts(report)
    assert v[("lowers", "batch")] == ("inconclusive (neither lower nor equivalent within ±2 pp)"
                                     " (at 40 epochs)")
    text = (tmp_path / "report" / "findings.md").read_text()
    # MDE = 3.264 (TTestPower, n = 3, 80%) x sd(d) 3.786 pp; the margin needed holds the 90% CI
    assert ("N=2: +0.3 pp [-9.1, +9.7] inconclusive; paired t (no run collapsed: one mode, t "
            "fits); MDE 12.4 pp; equivalent from ±6.7 pp") in text
    ci90 = st.ttest_rel([0.83, 0.76, 0.82], [0.8] * 3).confidence_interval(0.90)
    needed = report.study.comparisons.query("metric == 'test_accuracy'")["margin_needed"].iloc[0]
    assert needed == pytest.approx(max(-ci90.low, ci90.high), rel=1e-6)
    for overclaim in ("no effect", "no significant", "not supported"):
        assert overclaim not in text


def test_decisions_are_holm_adjusted_tost_and_power_per_family(tmp_path):
    sm = pytest.importorskip("statsmodels.stats.weightstats")
    smp = pytest.importorskip("statsmodels.stats.power")
    study_suite(tmp_path, micro_drop=0.012, micro_gap=0.05, batch_time=3.0)
    comp = study_tables(load_suite(tmp_path)).comparisons
    acc = comp[comp["metric"] == "test_accuracy"]
    b = np.array([0.80 + n for n in NOISE])
    for _, row in acc.iterrows():
        a = np.array([0.80 + n + (0.0005 * (-1) ** s if row["batch"] == 128
                                  else -0.012 + 0.002 * s) for s, n in zip(SEEDS, NOISE)])
        assert row["tost_p"] == pytest.approx(sm.ttost_paired(a, b, -0.02, 0.02)[0])
        d = a - b
        effect = smp.TTestPower().solve_power(nobs=3, alpha=0.05, power=0.8)
        assert row["mde"] == pytest.approx(effect * d.std(ddof=1), rel=1e-6)
        assert row["margin"] == 0.02
    # the family is the data set and metric: every control's comparisons together
    assert list(acc["p_holm"]) == pytest.approx(holm(list(acc["p_value"])))
    assert list(acc["tost_p_holm"]) == pytest.approx(holm(list(acc["tost_p"])))
    micro = acc[acc["batch"] == 512].iloc[0]
    # -1 pp, 90% CI [-1.3, -0.7] pp inside +-2 pp: significant AND within the margin
    assert micro["decision"] == "lower" and micro["within_margin"]
    assert set(acc[acc["batch"] == 128]["decision"]) == {"equivalent"}
    assert set(comp[comp["metric"] == "time_per_image_ms"]["decision"]) == {"not judged"}


def test_one_seed_is_untestable_and_the_table_says_so(tmp_path):
    study_suite(tmp_path, micro_drop=0.10, micro_gap=0.05, batch_time=3.0, seeds=(0,))
    report = build_report(tmp_path)
    assert set(report.study.findings["verdict"]) == {"untestable (one seed per configuration)"}
    table = (tmp_path / "report" / "findings.md").read_text()
    assert "untestable (one seed per configuration): N=4: -10.0 pp" in table


def test_n_sweep_series_start_at_the_baseline(tmp_path):
    study_suite(tmp_path, micro_drop=0.10, micro_gap=0.05, batch_time=3.0)
    report = build_report(tmp_path)
    sweep = report.study.sweeps["test_accuracy"]
    series = {name: list(g["N"]) for name, g in sweep.groupby("series", sort=False)}
    assert series == {"AdamW: equal effective batch (B=128)": [1, 2, 4],
                      "AdamW: equal micro-batch (B=128N), lr x1": [1, 4]}
    # the figure draws those points (accuracy in %), one line per arm from its baseline
    fig = report.figures["accuracy_vs_n"]
    assert [t.get_text() for t in fig.legends[0].get_texts()] == [
        "AdamW baseline", "AdamW equal effective batch, in-step mean",
        "AdamW equal micro-batch, in-step mean"]
    expected = sweep[sweep["series"] == "AdamW: equal micro-batch (B=128N), lr x1"]["mean"] * 100
    assert any(np.allclose(line.get_ydata(), expected) for line in fig.axes[0].get_lines()
               if len(line.get_ydata()) == len(expected))
    # forest plot: one point per configuration other than the baseline
    fig = report.figures["accuracy_differences"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [
        "AdamW N=2: 2x64=128, in-step mean", "AdamW N=4: 4x32=128, in-step mean",
        "AdamW N=4: 4x128=512, in-step mean"]
    for name in ("findings.md", "findings.csv", "comparisons.csv", "configurations.md",
                 "accuracy_vs_n.png", "cost_vs_n.svg", "accuracy_vs_updates.png"):
        assert (tmp_path / "report" / name).stat().st_size > 0


@pytest.mark.slow(10)
def test_a_suite_without_accumulation_reports_without_study_figures(tmp_path):
    for seed in SEEDS:
        write_run(tmp_path, seed=seed, acc=0.8)
    report = build_report(tmp_path)
    assert report.study.comparisons.empty and report.study.findings.empty
    assert list(report.study.configurations["family"]) == ["baseline"]
    assert set(report.figures) == {"training_time", "accuracy_curves"}
    assert (tmp_path / "report" / "configurations.md").is_file()
    assert not (tmp_path / "report" / "findings.md").exists()
    # and the report notebook says so instead of failing
    nb = find_notebook("report.ipynb")
    pm.execute_notebook(str(nb), str(tmp_path / "report.ipynb"), cwd=str(nb.parent),
                        parameters={"suite_dir": str(tmp_path)}, progress_bar=False)
    assert "no accumulating configuration with a baseline" in (tmp_path / "report.ipynb").read_text()


# ---------------------------------------------------------------- the update-count controls
def controls_suite(root, *, accumulation_drop=0.0, warmup=0):
    """A baseline (B=128) and at N=4: equal micro-batch (B=512, 10 pp lower), its plain
    partner (as low, ``accumulation_drop`` above it), equal updates (8 epochs, as accurate),
    Keras optimizer mode (15 updates to the baseline's 16); ``warmup`` for the B=512 runs."""
    for seed, noise in zip(SEEDS, NOISE):
        big = dict(batch_size=512, warmup_updates=warmup)
        write_run(root, seed=seed, acc=0.80 + noise, epochs=2)
        write_run(root, seed=seed, acc=0.70 + noise + 0.001 * seed, epochs=2, **big)
        write_run(root, seed=seed, acc=0.70 + noise - accumulation_drop - 0.001 * seed,
                  accumulation_steps=4, epochs=2, **big)
        write_run(root, seed=seed, acc=0.80 + noise + 0.0005 * (-1) ** seed, accumulation_steps=4,
                  epochs=8, updates=16, **big)
        write_run(root, seed=seed, acc=0.80 + noise - 0.0005 * (-1) ** seed, accumulation_steps=4,
                  accumulation_mode="optimizer", updates=15, epochs=2)


@pytest.mark.parametrize("warmup", [0, 26])
def test_controls_families_and_partners(tmp_path, warmup):
    # a warm-up of the large batches is part of their recipe: still the same baseline
    controls_suite(tmp_path, warmup=warmup)
    st_ = study_tables(load_suite(tmp_path))
    c = st_.configurations.set_index("label")
    w = f", {warmup} warm-up updates" if warmup else ""
    assert dict(c["family"]) == {
        "AdamW baseline, B=128": "baseline",
        "AdamW N=4: 4x32=128, Keras optimizer mean": "equal effective batch",
        f"AdamW{w} N=4: 4x128=512, in-step mean": "equal micro-batch",
        f"AdamW{w} N=4: 4x128=512, in-step mean, 8 epochs": "equal updates",
        f"AdamW{w} plain B=512, no accumulation": "plain large batch"}
    base = c.loc["AdamW baseline, B=128", "configuration"]
    assert c.loc[f"AdamW{w} N=4: 4x128=512, in-step mean, 8 epochs", "baseline"] == base
    assert c.loc[f"AdamW{w} N=4: 4x128=512, in-step mean", "baseline"] == base
    assert (c.loc[f"AdamW{w} N=4: 4x128=512, in-step mean", "plain"]
            == c.loc[f"AdamW{w} plain B=512, no accumulation", "configuration"])
    if warmup:
        return
    # 2d: Keras's optimizer mode made 15 updates to the baseline's 16: never "same updates"
    keras = c.loc["AdamW N=4: 4x32=128, Keras optimizer mean"]
    assert not keras["same_updates"] and "same updates" not in keras["control"]
    assert "updates differ" in keras["control"]
    assert c.loc["AdamW N=4: 4x128=512, in-step mean, 8 epochs", "same_updates"]
    assert c.loc["AdamW N=4: 4x128=512, in-step mean, 8 epochs", "control"].startswith(
        "equal micro-batch, N x epochs (same updates, lr x1)")


def test_controls_say_where_the_drop_comes_from(tmp_path):
    controls_suite(tmp_path)
    report = build_report(tmp_path)
    comp = report.study.comparisons
    acc = comp[comp["metric"] == "test_accuracy"].set_index(["partner", "label"])
    vs_plain = acc.loc[("plain", "AdamW N=4: 4x128=512, in-step mean vs plain")]
    a = [0.70 + n - 0.001 * s for s, n in zip(SEEDS, NOISE)]
    p = [0.70 + n + 0.001 * s for s, n in zip(SEEDS, NOISE)]
    ref = st.ttest_rel(a, p)
    assert vs_plain["difference"] == pytest.approx(np.mean(a) - np.mean(p))
    assert vs_plain["p_value"] == pytest.approx(ref.pvalue)
    assert vs_plain["point"] == "N=4" and vs_plain["partner_batch"] == 512
    # the same machinery: Holm over every comparison of the data set and metric
    assert list(acc["p_holm"]) == pytest.approx(holm(list(acc["p_value"])))
    # accumulation at the same batch: equivalent; the batch itself: lower; N x epochs: equivalent
    assert vs_plain["decision"] == "equivalent"
    assert acc.loc[("baseline", "AdamW plain B=512, no accumulation"), "decision"] == "lower"
    assert acc.loc[("baseline", "AdamW plain B=512, no accumulation"), "point"] == "B=512"
    assert acc.loc[("baseline", "AdamW N=4: 4x128=512, in-step mean, 8 epochs"),
                   "decision"] == "equivalent"
    keras = acc.loc[("baseline", "AdamW N=4: 4x32=128, Keras optimizer mean")]
    assert keras["point"] == "N=4 (15 vs 16 updates)" and not keras["same_updates"]
    found = report.study.findings
    lowers = found[found["claim"] == "GA lowers test accuracy"].set_index("control")["verdict"]
    assert lowers["equal micro-batch vs plain B0 x N (same batch, same updates, lr x1), AdamW, "
                  "in-step mean"] == "not supported: equivalent within ±2 pp (at 2 epochs)"
    assert lowers["plain batch B0 x N without accumulation (N x fewer updates, lr x1), "
                  "AdamW"] == "supported (at 2 epochs)"
    assert lowers["equal micro-batch (N x fewer updates, lr x1), AdamW, in-step mean"] == (
        "supported (at 2 epochs)")
    text = (tmp_path / "report" / "findings.md").read_text()
    assert "N=4 (15 vs 16 updates): -0.0 pp" in text
    assert "B=512: -9.9 pp [-10.1, -9.7] lower" in text
    assert not (tmp_path / "report" / "references.md").exists()  # the suite holds none
    legend = [t.get_text() for t in report.figures["accuracy_vs_updates"].legends[0].get_texts()]
    assert "AdamW N=4: 4x128=512, in-step mean, 8 epochs" in legend  # equal updates
    assert "AdamW plain B=512, no accumulation" in legend  # plain large batch


def test_the_report_lists_a_linear_reference(tmp_path):
    # a reference folder (swin-gao linear, tests/test_linear.py) beside the runs
    study_suite(tmp_path, micro_drop=0.1, micro_gap=0.0, batch_time=2.0, seeds=(0,))
    (tmp_path / "mnist-linear").mkdir()
    (tmp_path / "mnist-linear" / "linear.json").write_text(json.dumps({
        "dataset": "mnist", "dataset_title": "MNIST", "seed": 0,
        "model": "softmax regression on pixels", "l2": 0.001, "validation_accuracy": 0.881,
        "test_accuracy": 0.874, "samples": {"train": 900, "validation": 100, "test": 500}}))
    report = build_report(tmp_path)
    assert report.suite.incomplete == []
    table = pd.read_csv(tmp_path / "report" / "references.csv")
    assert table.to_dict("records") == [{
        "reference": "mnist-linear", "dataset": "MNIST", "model": "softmax regression on pixels",
        "seed": 0, "L2": 0.001, "val accuracy (%)": 88.1, "test accuracy (%)": 87.4,
        "train images": 900, "val images": 100, "test images": 500}]

    # and when accumulation itself costs 3 pp at the same batch, the vs-plain row says so
    other = tmp_path.parent / "accumulation-drops"
    controls_suite(other, accumulation_drop=0.03)
    found = study_tables(load_suite(other)).findings
    verdict = found[found["control"].str.startswith("equal micro-batch vs plain")
                    & (found["claim"] == "GA lowers test accuracy")]["verdict"]
    assert list(verdict) == ["supported (at 2 epochs)"]


def test_schedule_and_momentum_arms_are_their_own_controls(tmp_path):
    """A cosine arm is compared with the cosine baseline (and reads 10 pp lower: Keras's mode
    ran its schedule N x too fast); SGD without momentum is named so."""
    for seed, noise in zip(SEEDS, NOISE):
        write_run(tmp_path, seed=seed, acc=0.80 + noise)
        write_run(tmp_path, seed=seed, acc=0.80 + noise + 0.0005 * (-1) ** seed,
                  accumulation_steps=4)
        write_run(tmp_path, seed=seed, acc=0.82 + noise, lr_schedule="cosine")
        write_run(tmp_path, seed=seed, acc=0.72 + noise + 0.001 * seed, lr_schedule="cosine",
                  accumulation_steps=4, accumulation_mode="optimizer")
        write_run(tmp_path, seed=seed, acc=0.60 + noise, optimizer="sgd", momentum=0.0,
                  learning_rate=0.1)
        write_run(tmp_path, seed=seed, acc=0.60 + noise - 0.0005 * (-1) ** seed, optimizer="sgd",
                  momentum=0.0, learning_rate=0.1, accumulation_steps=4, reduction="sum")
    st_ = study_tables(load_suite(tmp_path))
    c = st_.configurations.set_index("label")
    assert set(c.index) == {
        "AdamW baseline, B=128", "AdamW N=4: 4x32=128, in-step mean",
        "AdamW, cosine lr baseline, B=128",
        "AdamW, cosine lr N=4: 4x32=128, Keras optimizer mean",
        "SGD without momentum baseline, B=128", "SGD without momentum N=4: 4x32=128, in-step sum"}
    cosine = c.loc["AdamW, cosine lr N=4: 4x32=128, Keras optimizer mean"]
    assert cosine["baseline"] == c.loc["AdamW, cosine lr baseline, B=128", "configuration"]
    assert cosine["control"] == "equal effective batch (same updates), AdamW, cosine lr, Keras optimizer mean"
    acc = st_.comparisons[st_.comparisons["metric"] == "test_accuracy"].set_index("label")
    row = acc.loc["AdamW, cosine lr N=4: 4x32=128, Keras optimizer mean"]
    assert row["difference"] == pytest.approx(-0.10 + 0.001, abs=1e-9)  # mean of 0.001*seed
    assert row["decision"] == "lower"
    assert acc.loc["AdamW N=4: 4x32=128, in-step mean", "baseline_mean"] == pytest.approx(
        0.80 + np.mean(NOISE))
    assert len(set(st_.configurations["control"])) == len(st_.configurations)


def test_loss_tracking_follows_each_seed_against_its_baseline(tmp_path):
    for seed in (0, 1):
        write_run(tmp_path, seed=seed, acc=0.8, loss=[2.0, 1.5])
        write_run(tmp_path, seed=seed, acc=0.8, loss=[2.0 * (1 + 1e-7), 1.5], accumulation_steps=2)
        write_run(tmp_path, seed=seed, acc=0.8, loss=[2.2, 1.2 + 0.1 * seed], accumulation_steps=4)
        # not in-step mean: not tracked
        write_run(tmp_path, seed=seed, acc=0.8, loss=[2.2, 1.2], accumulation_steps=4,
                  reduction="sum")
    write_run(tmp_path, seed=2, acc=0.8, accumulation_steps=2)  # no baseline of seed 2
    report = build_report(tmp_path)
    track = report.study.loss_tracking
    assert set(track["N"]) == {2, 4} and set(track["seed"]) == {0, 1}
    n2 = track[track["N"] == 2].set_index(["seed", "epoch"])
    assert n2.loc[(0, 1), "relative_difference"] == pytest.approx(1e-7, rel=1e-6)
    assert n2.loc[(0, 2), "relative_difference"] == 0
    assert n2.loc[(0, 1), "val_relative_difference"] == pytest.approx(2e-7 / 2.1, rel=1e-6)
    n4 = track[track["N"] == 4].set_index(["seed", "epoch"])
    assert n4.loc[(1, 2), "relative_difference"] == pytest.approx(0.2 / 1.5)
    summary = loss_tracking_summary(track).set_index(["N", "seed"])
    assert summary.loc[(4, 0), "max_relative_difference"] == pytest.approx(0.3 / 1.5)
    assert summary.loc[(2, 1), "epochs"] == 2
    assert "loss_tracking" in report.figures
    assert (tmp_path / "report" / "loss_tracking.md").exists()
    assert (tmp_path / "report" / "loss_tracking.png").exists()
