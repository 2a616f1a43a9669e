"""A suite's report: its run tables, the figures' tidy data, the files (:func:`build_report`).

The tidy tables here are what the figures draw, so tests check the data
behind a figure instead of its pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from swin_gao_lib.analysis import plots, rates, study_plots, tracking, tracking_plot
from swin_gao_lib.analysis.study import paper_run
from swin_gao_lib.analysis.study_tables import StudyTables, design_table, study_tables
from swin_gao_lib.analysis.arms import Arm, ArmStyles, arm_of
from swin_gao_lib.analysis.plain import plain_findings
from swin_gao_lib.analysis.display import (comparisons_display, configurations_display,
                                           convergence_display,
                                           effective_rate_display, sensitivity_display)
from swin_gao_lib.files import atomic_write_text
from swin_gao_lib.records import EXAMPLE_SUITE, REPORT_DIR, Suite, load_suite
from swin_gao_lib.records.history import RUNNING_ACCURACY

#: Where a report on the bundled example records goes (relative to the working folder).
EXAMPLE_REPORT = Path("example-report")


def summary_table(suite: Suite, names: dict[str, str] | None = None) -> pd.DataFrame:
    """One row per run: accuracy, time, throughput, memory, updates; ``names``: each run's
    configuration label (:func:`run_arms`), else its short variant name."""
    rows = []
    for r in suite.runs:
        m, c = r.metrics, r.config
        rows.append({
            "run": r.name, "dataset": r.dataset_title,
            "configuration": (names or {}).get(r.name, r.variant), "seed": c["seed"],
            "batch": c["batch_size"],
            "micro-batch": m["micro_batch_size"], "N": c["accumulation_steps"],
            "reduction": c["reduction"], "epochs": m["epochs_completed"],
            "test accuracy (%)": _percent(m["test_accuracy"]),
            # the final model re-scored like the test images, as the paper's Figs. 5-6 compare
            "train accuracy, re-scored (%)": _percent(m.get("train_eval_accuracy")),
            "final val accuracy (%)": _percent(m["final_val_accuracy"]),
            "time/epoch (s)": m["train_time_per_epoch_s"],
            "training time (s)": r.training_time_s,
            "compile (s)": m.get("compile_s"),
            "images/s": m["images_per_s"],
            "peak memory (MiB)": m["peak_memory_mib"],
            "optimizer updates": m["optimizer_updates"],
            "device": m["environment"]["device"],
        })
    return pd.DataFrame(rows)


def _percent(fraction: float | None) -> float:
    return 100 * fraction if fraction is not None else math.nan


def failed_runs(suite: Suite) -> pd.DataFrame:
    """One row per run that ended in a failure: diverged (NaN loss) or failed, and where."""
    rows = []
    for name, f in suite.failed.items():
        rows.append({"run": name, "status": "diverged" if f.get("diverged") else "failed",
                     "epoch": f.get("epoch"), "step": f.get("step"),
                     "epochs completed": f.get("epochs_completed"),
                     "error": str(f.get("error", ""))[:200]})
    return pd.DataFrame(rows, columns=["run", "status", "epoch", "step", "epochs completed",
                                       "error"])


def references_table(suite: Suite) -> pd.DataFrame:
    """One row per linear reference in the suite (``swin-gao linear``): what baselines should
    beat."""
    rows = []
    for ref in suite.references:
        s = ref.get("samples", {})
        rows.append({
            "reference": ref.get("name"), "dataset": ref.get("dataset_title"),
            "model": ref.get("model"), "seed": ref.get("seed"), "L2": ref.get("l2"),
            # how far to trust it: an interior L2 and a converged fit, or why not
            "L2 choice": ref.get("choice"), "converged": ref.get("converged"),
            "val accuracy (%)": _percent(ref.get("validation_accuracy")),
            "test accuracy (%)": _percent(ref.get("test_accuracy")),
            "train images": s.get("train"), "val images": s.get("validation"),
            "test images": s.get("test"),
        })
    return pd.DataFrame(rows, columns=["reference", "dataset", "model", "seed", "L2",
                                       "L2 choice", "converged", "val accuracy (%)", "test accuracy (%)", "train images",
                                       "val images", "test images"])


def run_arms(st: StudyTables) -> pd.DataFrame:
    """Per run: its configuration's label and its arm (:mod:`arms`), indexed by run name."""
    info = st.runs[["run", "configuration"]].merge(
        st.configurations[["configuration", "label", "family", "training", "mode", "reduction",
                           "lr_scaling", "N"]], on="configuration", how="left")
    info["arm"] = [arm_of(r) for _, r in info.iterrows()]
    return info.set_index("run")[["label", "arm"]]


def _arm_columns(r, arms: pd.DataFrame | None) -> dict[str, Any]:
    if arms is None or r.name not in arms.index:
        return {"configuration": r.variant, "arm": Arm(r.variant, "")}
    return {"configuration": arms.loc[r.name, "label"], "arm": arms.loc[r.name, "arm"]}


def epoch_times(suite: Suite, arms: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tidy per-epoch training time (steady, compile excluded) of every run: a run's epochs sum
    to its :attr:`~swin_gao_lib.records.Run.training_time_s` (``arms``: :func:`run_arms`)."""
    frames = []
    for r in suite.runs:
        frames.append(pd.DataFrame({
            "dataset": r.dataset_title, **_arm_columns(r, arms),
            "run": r.name, "epoch": r.history["epoch"],
            "train time (s)": r.history["train_s_steady"],
        }))
    return pd.concat(frames, ignore_index=True)


def accuracy_curves(suite: Suite, arms: pd.DataFrame | None = None) -> pd.DataFrame:
    """Tidy accuracy per epoch: train and validation, for every run (``arms``: :func:`run_arms`)."""
    frames = []
    for r in suite.runs:
        for col, split in ((RUNNING_ACCURACY, "train"), ("val_accuracy", "validation")):
            if col in r.history and r.history[col].notna().any():
                frames.append(pd.DataFrame({
                    "dataset": r.dataset_title, **_arm_columns(r, arms),
                    "run": r.name, "epoch": r.history["epoch"], "split": split,
                    "accuracy": r.history[col],
                }))
    return pd.concat(frames, ignore_index=True)


def write_table(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Write ``stem.csv`` and ``stem.md`` atomically, without the columns empty in every row
    (a one-seed suite has no interval, statistic or p-value)."""
    stem = Path(stem)
    table = drop_empty_columns(table)
    csv_path = atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
    md_path = atomic_write_text(stem.with_suffix(".md"),
                                table.to_markdown(index=False, floatfmt=".4g") + "\n")
    return [csv_path, md_path]


def drop_empty_columns(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` without the columns that are NaN/None/"" in every row (kept if it has no rows)."""
    if table.empty:
        return table
    filled = table.notna() & table.ne("")
    return table.loc[:, filled.any(axis=0)]


def paper_pair(suite: Suite) -> Suite:
    """The runs the paper compares (:func:`study.paper_run`), which Figs. 3–6 draw; a suite
    without one is drawn whole."""
    keep = [r for r in suite.runs if paper_run(r.resolved_config)]
    return Suite(suite.path, keep or suite.runs, suite.incomplete, suite.failed, suite.references)


@dataclass
class Report:
    """What :func:`build_report` made: the tables, the figure data, the files."""

    suite: Suite
    table: pd.DataFrame
    times: pd.DataFrame
    curves: pd.DataFrame
    figures: dict[str, Any]
    files: list[Path]
    study: StudyTables | None = None
    #: Figures not drawn, each with the sentence that says why (shown in their place).
    notes: dict[str, str] = field(default_factory=dict)

    def show(self, name: str) -> Any:
        """The figure ``name``, or in its place the sentence saying why it is not drawn."""
        if name in self.figures:
            return self.figures[name]
        from swin_gao_lib.analysis.display import sentence

        return sentence(self.notes.get(name, f"No {name.replace('_', ' ')} in this report."))


def build_report(suite_dir: str | Path | None, out_dir: str | Path | None = None) -> Report:
    """Load a suite, draw its figures, write its tables: ``<suite_dir>/report/`` or ``out_dir``.

    Figures as PNG and SVG, tables as CSV and Markdown (docs/records.md lists
    them); a figure the suite cannot draw gets the sentence that says why
    (:meth:`Report.show`), and its stale files are removed. ``suite_dir=None``
    reports on the bundled example records into ``./example-report/``, never into
    the installed package.
    """
    if suite_dir is None:
        suite_dir, out_dir = EXAMPLE_SUITE, EXAMPLE_REPORT if out_dir is None else out_dir
    suite = load_suite(suite_dir)
    out = Path(out_dir) if out_dir is not None else suite.path / REPORT_DIR
    st = study_tables(suite)
    arms = run_arms(st)
    styles = ArmStyles.for_arms(arms["arm"])
    pair = paper_pair(suite)
    table = summary_table(suite, arms["label"].to_dict())
    times, curves = epoch_times(pair, arms), accuracy_curves(pair, arms)
    tests = {r.name: r.metrics["test_accuracy"] for r in pair.runs}
    rescored = {r.name: r.metrics.get("train_eval_accuracy") for r in pair.runs}
    figures: dict[str, Any] = {
        "training_time": plots.training_time(times, styles),
        "accuracy_curves": plots.accuracy_curves(curves, tests, styles, rescored),
    }
    notes: dict[str, str] = {}
    files = write_table(table, out / "summary")
    if suite.failed:  # never plotted: their records end in a failure, not in metrics
        files += write_table(failed_runs(suite), out / "failed_runs")
    if suite.references:
        files += write_table(references_table(suite), out / "references")
    files += write_table(configurations_display(st.configurations), out / "configurations")
    no_baseline = "Not drawn: no accumulating configuration with a baseline in this suite."
    for name in ("accuracy_differences", "accuracy_vs_updates", "loss_tracking", "accuracy_vs_n",
                 "cost_vs_n"):
        notes[name] = no_baseline
    if st.convergence is not None and not st.convergence.empty:
        files += write_table(convergence_display(st.convergence), out / "convergence")
    if st.design is not None and st.design.margins:
        files += write_table(design_table(st.design), out / "margins")
    if st.update_tracking is not None and not st.update_tracking.empty:
        files += write_table(tracking.update_tracking_summary(st.update_tracking),
                             out / "update_tracking")
    if not st.comparisons.empty:
        files += write_table(comparisons_display(st.comparisons), out / "comparisons")
        files += write_table(st.findings_table, out / "findings")
        files += write_table(plain_findings(st.findings), out / "answers")
        if not st.sensitivity.empty:
            files += write_table(sensitivity_display(st.sensitivity), out / "sensitivity")
        figures["accuracy_differences"] = study_plots.differences(st.comparisons)
        updates = study_plots.accuracy_vs_updates(st.configurations, styles)
        if updates is not None:
            figures["accuracy_vs_updates"] = updates
        notes["accuracy_vs_updates"] = study_plots.updates_note(st.configurations) or ""
        notes["loss_tracking"] = ("Not drawn: no equal-effective-batch configuration with in-step "
                                  "accumulation and a mean loss shares seeds with its baseline.")
        if not st.loss_tracking.empty:
            config_arms = {(r["dataset"], r["label"]): arm_of(r)
                           for _, r in st.configurations.iterrows()}
            figures["loss_tracking"] = tracking_plot.loss_tracking(st.loss_tracking, config_arms, styles)
            files += write_table(tracking.loss_tracking_summary(st.loss_tracking),
                                 out / "loss_tracking")
        notes["accuracy_vs_n"] = notes["cost_vs_n"] = (
            "Not drawn: no N sweep in this suite (no baseline with equal-effective-batch or "
            "equal-micro-batch configurations accumulated in-step with a mean loss).")
        if not st.sweeps["test_accuracy"].empty:
            spread = ("mean ± std over seeds" if (st.sweeps["test_accuracy"]["seeds"] > 1).any()
                      else "one seed per configuration")
            figures["accuracy_vs_n"] = study_plots.metric_vs_n(
                {m: st.sweeps[m] for m in ("test_accuracy", "generalization_gap")},
                {"test_accuracy": "test accuracy (%)",
                 "generalization_gap": "train - test accuracy (pp)"},
                f"Accuracy and train-test gap vs N ({spread})", styles,
                scale={"test_accuracy": 100, "generalization_gap": 100})
            figures["cost_vs_n"] = study_plots.metric_vs_n(
                {m: st.sweeps[m] for m in ("time_per_image_ms", "peak_memory_mib")},
                {"time_per_image_ms": "training time per image (ms)",
                 "peak_memory_mib": "peak memory (MiB)"},
                f"Time per image and peak memory vs N ({spread})", styles)
    rate = st.rates
    notes["accuracy_vs_effective_rate"] = (
        "Not drawn: no SGD configurations of one batch and of summed micro-batches at two or "
        "more effective rates in this suite.")
    if not rate.empty:
        files += write_table(effective_rate_display(rate), out / "effective_rate")
        figures["accuracy_vs_effective_rate"] = rates.accuracy_vs_effective_rate(rate)
    notes = {k: v for k, v in notes.items() if k not in figures and v}
    for name, fig in figures.items():
        files += plots.save(fig, out / name)
    for name in notes:  # a figure this suite no longer has: no stale file left beside the others
        for ext in ("png", "svg"):
            (out / f"{name}.{ext}").unlink(missing_ok=True)
    return Report(suite, table, times, curves, figures, files, st, notes)
