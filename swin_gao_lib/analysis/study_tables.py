"""A study's tables: what the analysis makes of a suite's records, before any figure.

:func:`study_tables` runs the analysis modules in order: configurations
(:mod:`.study`), comparisons, settling and budgets, sensitivity, effective
rates and findings; :mod:`.report` draws and writes them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from swin_gao_lib.analysis import comparisons as compare, convergence, findings, study
from swin_gao_lib.analysis import rates, sensitivity, tracking
from swin_gao_lib.config.design import StudyDesign, load_design
from swin_gao_lib.records import Suite


@dataclass
class StudyTables:
    """What :mod:`study` makes of a suite: configurations over seeds, comparisons, findings."""

    runs: pd.DataFrame
    configurations: pd.DataFrame
    comparisons: pd.DataFrame
    findings: pd.DataFrame  # long: claim, control, dataset, verdict, evidence
    findings_table: pd.DataFrame  # wide: one column per data set
    sweeps: dict[str, pd.DataFrame]
    loss_tracking: pd.DataFrame  # equal effective batch, in-step mean, vs baseline per epoch
    convergence: pd.DataFrame | None = None  # the plateau rule per configuration
    update_tracking: pd.DataFrame | None = None  # in-step N micro-batches vs baseline per update
    design: StudyDesign | None = None  # what the suite's params files declared
    rates: pd.DataFrame | None = None  # SGD: accuracy against the effective rate (rates.py)
    sensitivity: pd.DataFrame | None = None  # diverged runs scored three ways (sensitivity.py)


def study_tables(suite: Suite, margins: dict[str, float] | None = None,
                 design: StudyDesign | None = None) -> StudyTables:
    """Group a suite's runs into configurations and compare each with its partners.

    ``margins``: each metric's equivalence margin (default :data:`study.MARGINS`);
    ``design`` (default: the suite's ``study-design.yaml``) adds its comparisons,
    roles, predictions and margins.
    """
    design = load_design(suite.path) if design is None else design
    runs = study.runs_frame(suite)
    configs = study.configurations(runs)
    # the comparisons also see the diverged runs; the tables and figures show complete runs
    gone = study.diverged_runs(suite)
    every = study.runs_frame(suite, gone)
    compared = study.configurations(every)
    _same_labels(configs, compared)
    conv = convergence.convergence(suite, every, compared,
                                   accuracy_margins(compared, margins, design))
    comp = compare.comparisons(every, compared, margins=margins, design=design)
    if not comp.empty:  # whether both sides settled (labels repeat across data sets)
        at = conv.set_index(["dataset", "configuration"])
        states = {k: (r["state"], r["epochs"]) for k, r in at.iterrows()}
        arm = [states.get(k, (None, 0)) for k in zip(comp["dataset"], comp["arm_label"])]
        partner = [states.get(k, (None, 0)) for k in zip(comp["dataset"], comp["partner_label"])]
        comp["arm_state"] = [s for s, _ in arm]
        comp["partner_state"] = [s for s, _ in partner]
        comp["budget"] = [convergence.budget_label(a == convergence.SETTLED,
                                                   b == convergence.SETTLED, max(ea, eb))
                          for (a, ea), (b, eb) in zip(arm, partner)]
    sens = sensitivity.sensitivity(every, compared, comp, design)
    if not comp.empty:  # a decision that moves with how diverged runs are scored says so
        comp["scoring_note"] = sensitivity.notes(sens, comp)
    found = findings.findings(comp, margins, compare.not_made(compared, design))
    sweeps = {m: study.n_sweep(configs, m) for m in
              ("test_accuracy", "generalization_gap", "time_per_image_ms", "peak_memory_mib")}
    return StudyTables(runs, configs, comp, found, findings.findings_table(found), sweeps,
                       tracking.loss_tracking(suite, runs, configs), conv,
                       tracking.update_tracking(suite, every, compared, design, gone), design,
                       rates.rate_table(every), sens)


def accuracy_margins(configs: pd.DataFrame, margins: dict[str, float] | None,
                     design: StudyDesign | None) -> dict[str, float]:
    """Each data set's (title's) test-accuracy margin: declared, else the suite's default."""
    margins = study.MARGINS if margins is None else margins
    return {t: compare.margins_for(t, None, design, margins).get("test_accuracy", float("nan"))
            for t in configs["dataset"].unique()}


def _same_labels(configs: pd.DataFrame, compared: pd.DataFrame) -> None:
    """Give the complete runs' configurations the labels the comparisons use (in place): with
    the diverged runs counted, a label may need its rate (its twin at another rate diverged)."""
    names = compared.set_index("configuration")[["label", "control", "training"]]
    for column in ("label", "control", "training"):
        configs[column] = configs["configuration"].map(names[column]).fillna(configs[column])


def design_table(design: StudyDesign | None) -> pd.DataFrame:
    """The declared design as a table: each data set's margins with their reason."""
    rows = [{"dataset": dataset, "metric": metric, "margin (pp)": 100 * m,
             "reason": design.reasons.get(dataset, "")}
            for dataset, ms in (design.margins.items() if design else []) for metric, m in ms.items()]
    return pd.DataFrame(rows, columns=["dataset", "metric", "margin (pp)", "reason"])
