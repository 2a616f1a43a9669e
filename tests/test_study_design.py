"""A study's declared design (roles, predictions, margins written before the runs), the Holm
families, the method each comparison gets, the margin needed, and the settling rule."""

import json
import shutil

import numpy as np
import pytest
import yaml
from scipy import stats as st

from swin_gao_lib.analysis.arms import ArmStyles, arm_of
from swin_gao_lib.analysis.comparisons import confounds
from swin_gao_lib.analysis.decisions import margin_needed, outcome
from swin_gao_lib.analysis.convergence import COLLAPSED, LEARNING, SETTLED, settling, slope
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.analysis.resampling import smallest_p
from swin_gao_lib.analysis.study_tables import study_tables
from swin_gao_lib.analysis.stats import holm, tost
from swin_gao_lib.config import RunConfig
from swin_gao_lib.config.design import (DESIGN_FILE, load_design, read_design, write_design)
from swin_gao_lib.errors import ConfigError, InputError
from swin_gao_lib.records import load_suite
from test_study import NOISE, SEEDS, write_run

SGD = dict(optimizer="sgd", momentum=0.0, weight_decay=0.0)
SEEDS10 = tuple(range(10))
NOISE10 = (0.004, -0.003, 0.001, 0.002, -0.001, 0.0, 0.003, -0.002, -0.004, 0.001)
ARMS = {
    "adamw": {"optimizer": "adamw", "accumulation_steps": 1},
    "adamw-sum": {"optimizer": "adamw", "accumulation_steps": 4, "reduction": "sum"},
    "sgd": {**SGD, "learning_rate": 0.1, "accumulation_steps": 1},
    "sgd-sum": {**SGD, "learning_rate": 0.1, "accumulation_steps": 4, "reduction": "sum"},
    "sgd-sum-lr4": {**SGD, "learning_rate": 0.025, "accumulation_steps": 4, "reduction": "sum"},
    "sgd-lr4": {**SGD, "learning_rate": 0.4, "accumulation_steps": 1},
}
#: The params file that declares the suite below (its base holds the defaults write_run uses).
PARAMS = {
    "dataset": "mnist", "seeds": list(SEEDS),
    "grid": [{key: [value] for key, value in arm.items()} for arm in ARMS.values()],
    "study": {
        "margin": {"test_accuracy": 0.01, "generalization_gap": 0.01,
                   "reason": "a third of the baseline's error rate"},
        "comparisons": [
            {"arm": ARMS["adamw-sum"], "versus": ARMS["adamw"], "role": "primary",
             "prediction": "equivalent", "why": "Adam divides by sqrt(v)"},
            {"arm": ARMS["sgd-sum-lr4"], "versus": ARMS["sgd"], "role": "secondary",
             "prediction": "equivalent", "why": "4 x the mean at lr/4"},
            {"arm": ARMS["sgd-sum"], "versus": ARMS["sgd-lr4"], "role": "secondary",
             "prediction": "equivalent", "why": "the sum is lr x 4",
             "label": "SGD sum N=4 vs N=1 at lr x 4"},
            {"arm": ARMS["sgd-sum"], "versus": ARMS["sgd"], "role": "secondary",
             "prediction": "equivalent", "why": "a wrong guess, to test"},
        ]},
}


def designed_suite(root, params=PARAMS):
    """Records matching PARAMS: SGD's sum at lr is 20 pp lower, like plain SGD at 4 lr."""
    root.mkdir(parents=True, exist_ok=True)
    (root.parent / "params").mkdir(exist_ok=True)
    path = root.parent / "params" / "mnist.yaml"
    path.write_text(yaml.safe_dump(params))
    for seed, noise in zip(SEEDS, NOISE):
        wobble = 0.0005 * (-1) ** seed
        accuracy = {"adamw": 0.90, "adamw-sum": 0.90 + wobble, "sgd": 0.80,
                    "sgd-sum": 0.60 + 0.001 * seed, "sgd-sum-lr4": 0.80 - wobble,
                    "sgd-lr4": 0.60 - 0.001 * seed}
        for name, arm in ARMS.items():
            write_run(root, seed=seed, acc=accuracy[name] + noise, **arm)
    write_design([path], root)
    return path


def test_a_design_is_read_checked_and_kept_beside_the_runs(tmp_path):
    path = designed_suite(tmp_path / "suite")
    design = load_design(tmp_path / "suite")
    assert design.margins == {"mnist": {"test_accuracy": 0.01, "generalization_gap": 0.01}}
    assert design.reasons["mnist"] == "a third of the baseline's error rate"
    first = design.comparisons[0]
    assert (first.role, first.prediction, first.source) == ("primary", "equivalent", "mnist.yaml")
    # arm and versus become full configurations: the file's base plus the named values
    assert first.arm["accumulation_steps"] == 4 and first.arm["dataset"] == "mnist"
    assert "seed" not in first.arm and "output_dir" not in first.arm
    # the same block again: fine; a changed block: refused, unless forced
    write_design([path], tmp_path / "suite")
    changed = {**PARAMS, "study": {**PARAMS["study"], "comparisons": PARAMS["study"]["comparisons"][:1]}}
    path.write_text(yaml.safe_dump(changed))
    before = (tmp_path / "suite" / DESIGN_FILE).read_text()
    with pytest.raises(InputError, match="different study block for mnist.yaml"):
        write_design([path], tmp_path / "suite")
    assert (tmp_path / "suite" / DESIGN_FILE).read_text() == before
    write_design([path], tmp_path / "suite", force=True)
    assert len(load_design(tmp_path / "suite").comparisons) == 1
    assert load_design(tmp_path) is None  # no design: none


@pytest.mark.parametrize("change,message", [
    (lambda c: c.update(role="main"), "role: 'main' is not one of primary, secondary"),
    (lambda c: c.update(prediction="same"), "prediction: 'same' is not one of"),
    (lambda c: c.update(why=" "), "why: say why"),
    (lambda c: c.pop("versus"), "missing versus"),
    (lambda c: c.update(arm={"accumulation_steps": 8}), "is not a run of this file's grid"),
    (lambda c: c.update(arm={"batch_sise": 8}), "unknown config key 'batch_sise'"),
    (lambda c: c.update(versus=dict(c["arm"])), "arm and versus are the same configuration"),
])
def test_a_malformed_comparison_is_refused_naming_it(tmp_path, change, message):
    item = dict(PARAMS["study"]["comparisons"][0])
    change(item)
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**PARAMS, "study": {**PARAMS["study"], "comparisons": [item]}}))
    with pytest.raises(ConfigError, match="comparisons\\[1\\]") as err:
        read_design([path])
    assert message in str(err.value)


@pytest.mark.parametrize("margin,message", [
    ({"test_accuracy": 0.01}, "state the margin's reason"),
    ({"test_accuracy": 2, "reason": "x"}, "expected a fraction in (0, 1)"),
    ({"time_per_image_ms": 0.1, "reason": "x"}, "'time_per_image_ms' is not one of"),
])
def test_a_margin_needs_a_reason_and_a_fraction(tmp_path, margin, message):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump({**PARAMS, "study": {**PARAMS["study"], "margin": margin}}))
    with pytest.raises(ConfigError, match="study.margin") as err:
        read_design([path])
    assert message in str(err.value)


def test_an_arm_at_another_rate_says_its_rate_when_its_twin_diverged(tmp_path):
    designed_suite(tmp_path / "suite")
    _diverge(tmp_path / "suite", "sgd", 0.1, 4)
    labels = set(build_report(tmp_path / "suite").study.configurations["label"])
    assert "SGD without momentum N=4: 4x32=128, in-step sum, lr 0.025" in labels
    assert not any(label.endswith("in-step sum") and label.startswith("SGD") for label in labels)


def _diverge(suite, optimizer: str, learning_rate: float, n: int, remove: bool = False) -> None:
    """Every run of one configuration diverged (failure.json, no metrics), or ``remove``d."""
    for config in suite.glob("*/config.yaml"):
        c = yaml.safe_load(config.read_text())
        if (c["optimizer"], c["learning_rate"], c["accumulation_steps"]) == (optimizer,
                                                                             learning_rate, n):
            if remove:
                shutil.rmtree(config.parent)
                continue
            (config.parent / "metrics.json").unlink()
            (config.parent / "failure.json").write_text(json.dumps(
                {"error": "RunError: the loss became nan", "diverged": True}))


def test_an_arm_whose_every_run_diverged_is_compared_at_chance(tmp_path):
    # the quick study's re-run: all 10 runs of SGD's sum at lr diverged, and the comparison
    # the arm exists for read "not made: this suite has no run of its arm"
    designed_suite(tmp_path / "suite")
    _diverge(tmp_path / "suite", "sgd", 0.1, 4)
    st_ = study_tables(load_suite(tmp_path / "suite"))
    comp = st_.comparisons.set_index(["label", "metric"])
    row = comp.loc[("SGD sum N=4 vs N=1 at lr x 4", "test_accuracy")]
    # every run of the arm scored at chance (10%) against the partner's 60%, seed by seed
    partner = [0.60 + noise - 0.001 * seed for seed, noise in zip(SEEDS, NOISE)]
    assert row["difference"] == pytest.approx(0.10 - np.mean(partner))
    assert row["n"] == len(SEEDS) and row["test"] == "sign-flip permutation"
    assert f"{len(SEEDS)} diverged runs scored at chance" in row["method_reason"]
    assert (row["collapsed"], row["runs"], row["diverged"]) == (len(SEEDS),) * 3
    assert row["partner_collapsed"] == 0 and row["partner_diverged"] == 0
    assert row["collapse_p"] == pytest.approx(
        st.fisher_exact([[len(SEEDS), 0], [0, len(SEEDS)]]).pvalue)
    # nothing else of a diverged run is measured: no time row; the findings say why
    assert ("SGD sum N=4 vs N=1 at lr x 4", "time_per_image_ms") not in comp.index
    found = st_.findings.set_index(["claim", "control"])["verdict"]
    assert found[("GA raises training time", "SGD sum N=4 vs N=1 at lr x 4")] == (
        "untestable (every run of a side diverged: no training time per image to compare)")
    assert not found.str.startswith("not made").any()


def test_the_paper_comparison_leads_each_claim_of_the_findings_table(tmp_path):
    # primary first in every claim, before comparisons no run made, whatever its label
    comparisons = [dict(c) for c in PARAMS["study"]["comparisons"]]
    comparisons[0]["label"] = "the paper's GAO"  # sorts after "SGD ..."
    params = {**PARAMS, "study": {**PARAMS["study"], "comparisons": comparisons}}
    designed_suite(tmp_path / "suite", params)
    _diverge(tmp_path / "suite", "sgd", 0.1, 4, remove=True)  # two declared comparisons lose their arm
    table = build_report(tmp_path / "suite").study.findings_table
    assert any(str(cell).startswith("not made") for cell in table["MNIST"])
    assert table["claim"].nunique() > 1
    for claim, rows in table.groupby("claim", sort=False):
        assert rows["role"].iloc[0] == "primary", (claim, list(rows["control"]))
        assert rows["control"].iloc[0] == "the paper's GAO"
        assert (rows["role"].iloc[1:] == "secondary").all()


def test_declared_comparisons_roles_predictions_and_outcomes(tmp_path):
    designed_suite(tmp_path / "suite")
    report = build_report(tmp_path / "suite")
    comp = report.study.comparisons
    acc = comp[comp["metric"] == "test_accuracy"].set_index("label")
    # the SGD arms that differ only in their rate are told apart
    assert "SGD without momentum baseline, B=128, lr 0.1" in set(report.study.configurations["label"])
    primary = acc[acc["role"] == "primary"]
    assert list(primary.index) == ["AdamW N=4: 4x32=128, in-step sum"]
    # the paper's comparison is its own Holm family: its p-values stand unadjusted ...
    assert primary["p_holm"].iloc[0] == primary["p_value"].iloc[0]
    assert primary["tost_p_holm"].iloc[0] == primary["tost_p"].iloc[0]
    # ... and the controls are adjusted among themselves only
    secondary = acc[acc["role"] == "secondary"]
    assert list(secondary["p_holm"]) == pytest.approx(holm(list(secondary["p_value"])))
    assert primary["decision"].iloc[0] == "equivalent"
    lr_n = acc.loc["SGD without momentum N=4: 4x32=128, in-step sum, lr 0.025 vs "
                   "SGD without momentum baseline, B=128, lr 0.1"]
    assert (lr_n["partner"], lr_n["prediction"], lr_n["decision"], lr_n["outcome"]) == (
        "declared", "equivalent", "equivalent", "as predicted")
    versus_lr4 = acc.loc["SGD sum N=4 vs N=1 at lr x 4"]
    assert versus_lr4["decision"] == "equivalent" and versus_lr4["outcome"] == "as predicted"
    # a declared comparison the families imply too is one row, carrying the prediction
    wrong = acc.loc["SGD without momentum N=4: 4x32=128, in-step sum, lr 0.1"]
    assert isinstance(wrong, type(lr_n)) and wrong["decision"] == "lower"
    assert wrong["outcome"] == "contradicted" and wrong["why"] == "a wrong guess, to test"
    # the margin is the design's, and the findings say so beside each verdict
    assert set(acc["margin"]) == {0.01}
    table = (tmp_path / "suite" / "report" / "findings.md").read_text()
    assert "equivalent (4 x the mean at lr/4)" in table and "prediction as predicted" in table
    assert "prediction contradicted" in table and "±1 pp" in table
    margins = (tmp_path / "suite" / "report" / "margins.md").read_text()
    assert "a third of the baseline's error rate" in margins


def test_a_declared_comparison_without_runs_is_listed_not_dropped(tmp_path):
    params = {**PARAMS, "grid": PARAMS["grid"] + [{"optimizer": ["adamw"], "epochs": [8],
                                                   "accumulation_steps": [4]}]}
    extra = {"arm": {"optimizer": "adamw", "epochs": 8, "accumulation_steps": 4},
             "versus": {"optimizer": "adamw", "accumulation_steps": 1}, "role": "secondary",
             "prediction": "higher", "why": "more epochs"}
    params["study"] = {**PARAMS["study"], "comparisons": PARAMS["study"]["comparisons"] + [extra]}
    designed_suite(tmp_path / "suite", params)  # no run of that arm was made
    found = study_tables(load_suite(tmp_path / "suite")).findings
    row = found[found["verdict"].str.startswith("not made")].iloc[0]
    assert row["verdict"] == "not made: this suite has no run of its arm"
    assert row["control"] == "mnist.yaml: accumulation_steps 4 vs 1, epochs 8 vs 40"
    assert row["prediction"] == "higher (more epochs)"


def test_without_a_design_the_paper_comparison_is_recognised_as_primary(tmp_path):
    designed_suite(tmp_path / "suite")
    (tmp_path / "suite" / DESIGN_FILE).unlink()
    comp = study_tables(load_suite(tmp_path / "suite")).comparisons
    acc = comp[comp["metric"] == "test_accuracy"]
    assert list(acc[acc["role"] == "primary"]["label"]) == ["AdamW N=4: 4x32=128, in-step sum"]
    assert acc["prediction"].isna().all() and set(acc["margin"]) == {0.02}


def _bimodal_suite(root, diverge_seed=None):
    """AdamW baseline at ~97%; plain B=512 collapses to chance on 4 of 10 seeds."""
    for seed, noise in zip(SEEDS10, NOISE10):
        write_run(root, seed=seed, acc=0.97 + noise, gap=0.01)
        if seed == diverge_seed:
            run = write_run(root, seed=seed, acc=0.5, batch_size=512)
            (run / "metrics.json").unlink()
            (run / "failure.json").write_text('{"diverged": true, "epoch": 1, "step": 3}')
            continue
        down = seed in (1, 4, 6, 8)
        write_run(root, seed=seed, acc=0.10 + noise / 4 if down else 0.965 + noise, gap=0.0,
                  batch_size=512)


def test_collapsing_arms_get_a_permutation_interval_inside_the_range(tmp_path):
    _bimodal_suite(tmp_path)
    report = build_report(tmp_path)
    row = report.study.comparisons.query("metric == 'test_accuracy'").iloc[0]
    assert row["test"] == "sign-flip permutation"
    assert row["method_reason"] == ("some runs collapsed: two modes, t does not fit; smallest "
                                    "attainable p 0.002")  # 10 pairs: 2 / 2**10
    assert (row["collapsed"], row["runs"], row["partner_collapsed"]) == (4, 10, 0)
    assert row["collapse_p"] == pytest.approx(st.fisher_exact([[4, 6], [0, 10]]).pvalue)
    assert -1 <= row["ci_low"] < row["ci_high"] < 0  # lower, and inside the range
    assert row["decision"] == "lower" and row["mde"] > 0.1
    # the t-interval of the same data would have said the same with a wider, t-shaped span;
    # the gap is only tested where the arm still learns: here it collapsed
    found = report.study.findings.set_index("claim")["verdict"]
    assert found["the accuracy drop is due to overfitting"].startswith(
        "not applicable (accuracy drops where the arm collapsed to chance")
    assert "Fisher exact p = 0.087" in (tmp_path / "report" / "findings.md").read_text()


def test_a_diverged_run_counts_as_a_collapse(tmp_path):
    _bimodal_suite(tmp_path, diverge_seed=0)
    row = study_tables(load_suite(tmp_path)).comparisons.query("metric == 'test_accuracy'").iloc[0]
    # 4 at chance + 1 diverged; the diverged seed is compared too, scored at chance
    assert (row["collapsed"], row["runs"], row["n"], row["diverged"]) == (5, 10, 10, 1)
    assert row["method_reason"].endswith("; 1 diverged run scored at chance")
    assert row["mean"] == pytest.approx(np.mean(
        [0.10 if seed == 0 else 0.10 + noise / 4 if seed in (1, 4, 6, 8) else 0.965 + noise
         for seed, noise in zip(SEEDS10, NOISE10)]))


def test_margin_needed_by_brute_force():
    # a family of three TOSTs (paired t, n = 5): scan the margin of the second until Holm's
    # adjusted p-value drops below 5%
    rng = np.random.default_rng(0)
    diffs = [rng.normal(mu, 0.01, 5) for mu in (0.0, 0.004, -0.02)]
    fns = [lambda m, d=d: tost(d.mean(), d.std(ddof=1) / np.sqrt(5), 4, m).p_value for d in diffs]
    stated = [f(0.02) for f in fns]
    got = margin_needed(fns[1], stated, 1)
    grid = np.arange(0.0005, 0.2, 0.00001)
    first = next(m for m in grid if holm([stated[0], fns[1](m), stated[2]])[1] < 0.05)
    assert got == pytest.approx(first, abs=2e-5)
    # alone in its family (the primary comparison) it is the edge of its 90% t-interval
    d = diffs[1]
    ci = st.ttest_1samp(d, 0).confidence_interval(0.90)
    assert margin_needed(fns[1], [stated[1]], 0) == pytest.approx(max(-ci.low, ci.high), rel=1e-6)


def test_outcome_of_a_prediction():
    assert outcome("equivalent", "equivalent") == "as predicted"
    assert outcome("equivalent", "lower", within_margin=True) == "as predicted"
    assert outcome("equivalent", "lower") == "contradicted"
    assert outcome("lower", "equivalent") == "contradicted"
    assert outcome("lower", "inconclusive") == "undecided"
    assert outcome("equivalent", "untested") == "undecided"
    assert outcome(None, "lower") is None


def test_settling_rule_by_hand(tmp_path):
    # each seed's slope over its last 6 epochs (an earlier epoch does not count)
    assert slope([0.5, 0.90, 0.91, 0.92, 0.93, 0.94, 0.95]) == pytest.approx(0.01)
    assert np.isnan(slope([0.9, 0.95, 0.96]))  # too few epochs: no slope
    # the mean of the seeds' slopes with a 95% t-interval: t_{0.975, 2} = 4.3027 by the tables
    mean, low, high, settled = settling([0.001, 0.0005, 0.0015], threshold=0.004)
    half = 4.302652729911275 * 0.0005 / np.sqrt(3)
    assert (mean, low, high) == pytest.approx((0.001, 0.001 - half, 0.001 + half))
    assert settled  # upper end 0.00224 < 0.004
    assert not settling([0.001, 0.0005, 0.0015], threshold=0.002)[3]  # the interval reaches it
    assert not settling([0.0, 0.0], threshold=1.0)[3]  # fewer than 3 seeds: no verdict
    # a suite: the default margin of 2 pp makes the threshold 0.4 pp/epoch
    for seed, noise in zip(SEEDS, NOISE):
        flat = [0.80, 0.90] + [0.950 + noise + 0.001 * k for k in range(6)]  # +0.1 pp/epoch
        write_run(tmp_path, seed=seed, acc=0.95, val_curve=flat)
        rising = [0.60, 0.70] + [0.80 + noise + 0.02 * k for k in range(6)]  # +2 pp/epoch
        write_run(tmp_path, seed=seed, acc=0.93, val_curve=rising, accumulation_steps=4)
        write_run(tmp_path, seed=seed, acc=0.10, val_curve=[0.1] * 8, accumulation_steps=2)
    st_ = study_tables(load_suite(tmp_path))
    conv = st_.convergence.set_index("family")
    assert conv.loc["baseline", "val_slope"] == pytest.approx(0.001)
    assert conv.loc["baseline", "threshold"] == pytest.approx(0.2 * 0.02)
    assert conv.loc["baseline", "state"] == SETTLED and conv.loc["baseline", "settled"]
    by_label = st_.convergence.set_index("configuration")
    states = dict(zip(by_label.index, by_label["state"]))
    assert sorted(states.values()) == sorted([SETTLED, LEARNING, COLLAPSED])
    acc = st_.comparisons.query("metric == 'test_accuracy'").set_index("point")
    epochs = RunConfig().epochs  # the budget the records were configured for
    assert acc.loc["N=4", "budget"] == f"at {epochs} epochs"
    assert acc.loc["N=4", "arm_state"] == LEARNING and acc.loc["N=4", "partner_state"] == SETTLED
    assert acc.loc["N=2", "arm_state"] == COLLAPSED
    verdict = st_.findings_table.iloc[0, -1]
    assert f"(at {epochs} epochs)" in verdict and "a fixed-budget verdict" in verdict
    assert "still learning" in verdict


def test_a_verdict_between_two_settled_arms_has_no_budget_mark(tmp_path):
    for seed, noise in zip(SEEDS, NOISE):
        for n, acc in ((1, 0.95), (4, 0.951)):
            curve = [0.80, 0.90] + [acc + noise] * 6
            write_run(tmp_path, seed=seed, acc=acc + noise, val_curve=curve, accumulation_steps=n)
    st_ = study_tables(load_suite(tmp_path))
    row = st_.comparisons.query("metric == 'test_accuracy'").iloc[0]
    assert row["budget"] == SETTLED
    assert "epochs)" not in st_.findings_table.iloc[0, -1]


def test_an_optimizer_at_several_rates_draws_one_arm_per_rate(tmp_path):
    # the re-run drew SGD at lr and at 4 lr as one arm: one legend entry, 86 pp apart
    designed_suite(tmp_path / "suite")
    report = build_report(tmp_path / "suite")
    configs = report.study.configurations
    sgd = configs[(configs["optimizer"] == "sgd") & (configs["N"] == 1)]
    assert sorted(sgd["training"]) == ["SGD without momentum, lr 0.1",
                                       "SGD without momentum, lr 0.4"]
    # one arm per configuration here, and the report's one style per arm
    arms = [arm_of(r) for _, r in configs.iterrows()]
    assert len(set(arms)) == len(configs)
    styles = ArmStyles.for_arms(arms)
    ones = [styles[arm_of(r)] for _, r in sgd.iterrows()]
    assert ones[0] != ones[1] and {s.color for s in ones} == {"#000000"}  # both baselines


def test_few_seeds_cap_the_permutation_p_and_the_row_says_so():
    from swin_gao_lib.analysis.comparisons import test_metric  # not at the top: pytest would collect it

    assert smallest_p(8, 8, paired=True) == 2 / 256  # 0.0078: 8 of 8 same-sign pairs
    assert smallest_p(3, 3, paired=False) == pytest.approx(2 / 20)  # C(6, 3) relabellings
    # 8 pairs, every difference -1 pp, one arm with a collapse: the exact sign-flip test
    a = {s: 0.95 - 0.01 for s in range(8)}
    a[0] = 0.1
    b = {s: 0.95 for s in range(8)}
    method, reason, numbers = test_metric(a, b, True, True, 0.95)
    assert method.startswith("sign-flip") and "smallest attainable p 0.0078" in reason
    assert numbers["p_value"] == pytest.approx(2 / 256)


def test_confounds_are_stated_beside_the_comparison():
    base = RunConfig().to_dict()
    longer = {**base, "epochs": 4 * base["epochs"], "batch_size": 512, "lr_base_batch": 128,
              "lr_scaling": "sqrt"}
    text = confounds(longer, base)
    assert text == ("4x the epochs and compute; a rate scaled by rule (sqrt) from B=128, not "
                    "tuned at B=512")
    assert confounds(base, base) is None


def test_the_holm_family_size_is_in_each_finding(tmp_path):
    designed_suite(tmp_path)
    table = study_tables(load_suite(tmp_path)).comparisons
    acc = table[table["metric"] == "test_accuracy"]
    sizes = acc.groupby("role")["family_size"].first().to_dict()
    assert sizes == {r: int((acc["role"] == r).sum()) for r in sizes}
    found = study_tables(load_suite(tmp_path)).findings
    secondary = found[(found["role"] == "secondary") & (found["claim"] == "GA lowers test accuracy")]
    assert all(f"Holm over {sizes['secondary']} comparisons" in e for e in secondary["evidence"]
               if "untestable" not in e)


def test_an_identity_gives_one_result_not_two(tmp_path):
    # SGD's sum at lr/4 is the mean at lr bit for bit: the later row says so, rather than
    # reading as a second, independent result
    designed_suite(tmp_path)
    for seed, noise in zip(SEEDS, NOISE):  # the mean at lr 0.1 with the sum-at-lr/4's values
        write_run(tmp_path, seed=seed, acc=0.80 + noise - 0.0005 * (-1) ** seed,
                  learning_rate=0.1, accumulation_steps=4, reduction="mean", **SGD)
    tables = study_tables(load_suite(tmp_path))
    acc = tables.comparisons[tables.comparisons["metric"] == "test_accuracy"]
    marked = acc[acc["same_values_as"].notna()]
    assert len(marked) == 1
    other = acc[acc["label"] == marked["same_values_as"].iloc[0]]
    assert len(other) == 1 and other["same_values_as"].isna().all()
    # one is the mean at lr 0.1, the other the sum at lr/4, both against the baseline at 0.1
    assert {marked["reduction"].iloc[0], other["reduction"].iloc[0]} == {"mean", "sum"}
    for column in ("difference", "ci_low", "ci_high", "p_value"):
        assert marked[column].iloc[0] == other[column].iloc[0]
    evidence = " ".join(tables.findings["evidence"])
    assert f'the same values seed by seed as "{other["label"].iloc[0]}"' in evidence
