"""A suite read as a study: configurations over seeds, their baselines and families, N sweeps.

Runs that differ only in their seed are one *configuration*; configurations
that differ only in how a batch is accumulated (:data:`ACCUMULATION_KEYS`)
share a *baseline*: the one with N = 1 (at ``lr_base_batch`` if several). With
``B0`` its batch, an accumulating configuration's *family* is *equal effective
batch* (``B = B0`` in N micro-batches), *equal micro-batch* (micro-batches of
``B0``, ``B = N B0``; its *plain partner*: N = 1 at ``N B0``, control 2a), *equal
updates* (micro-batches of ``B0`` for N times the epochs, control 2b) or *plain
large batch* (N = 1 at a multiple of ``B0``). Where a family promises its
partner's update count, the records are checked (``same_updates``, control 2d).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from swin_gao_lib.config.labels import (BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES,
                                 LR_SCALING_TITLES, PLAIN_BATCH, configuration_label,
                                 control_label, series_label, training_title)
from swin_gao_lib.config import RunConfig
from swin_gao_lib.config.datasets import title as dataset_title
from swin_gao_lib.config.design import configuration_key
from swin_gao_lib.config.run_config import NOT_CONFIGURATION
from swin_gao_lib.records import Run, Suite
from swin_gao_lib.analysis.resampling import COLLAPSE_MARGIN, collapsed
from swin_gao_lib.analysis.stats import mean_std

#: Keys that say how a batch is accumulated; the rest of the config is the control. A warm-up
#: is part of the large-batch recipe (Goyal et al. 2017), like the rate's scaling.
ACCUMULATION_KEYS = ("accumulation_steps", "batch_size", "accumulation_mode", "reduction",
                     "lr_scaling", "warmup_updates")
FAMILIES = (BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES, PLAIN_BATCH, "no accumulation",
            "other")
#: Families whose configurations make as many updates as their baseline (checked per run).
SAME_UPDATES = (EQUAL_BATCH, EQUAL_UPDATES)
#: Whom a comparison is against: the baseline, or the plain partner at the same batch.
VS_BASELINE, VS_PLAIN = "baseline", "plain"
#: Per-run measurements the study compares, with the words a page names them by.
METRICS = {
    "test_accuracy": "test accuracy",
    "generalization_gap": "train-test gap",
    # scored like the test images (no dropout, no augmentation): what overfitting would keep
    "train_eval_accuracy": "train accuracy (re-scored)",
    "time_per_image_ms": "time per image",
    "peak_memory_mib": "peak memory",
    "optimizer_updates": "optimizer updates",
}
#: The metrics that are accuracies (fractions): bounded, possibly bimodal, shown in percent.
ACCURACY_METRICS = ("test_accuracy", "generalization_gap", "train_eval_accuracy")
#: Equivalence margins (the metric's units) where a suite declares none: +-2 points of accuracy
#: and of the gap. Time has none without a measured noise floor (runs not interleaved on a
#: shared machine give numbers, not verdicts); memory and update counts are descriptive.
MARGINS: dict[str, float] = {"test_accuracy": 0.02, "generalization_gap": 0.02}
#: The decision of a comparison whose metric has no margin.
NOT_JUDGED = "not judged"
#: The level of every test: difference, TOST and power.
ALPHA = 0.05
#: The power at which the minimum detectable effect is stated.
POWER = 0.8


def _key(config: dict[str, Any], drop: tuple[str, ...]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in drop}, sort_keys=True)


def _num_classes(dataset: str) -> int:
    from swin_gao_lib.config import datasets

    return datasets.get(dataset).num_classes


def runs_frame(suite: Suite, gone: list[Run] | tuple = ()) -> pd.DataFrame:
    """One row per run: what it varied and what it measured (see :class:`records.Run`).

    ``gone`` (:func:`diverged_runs`) adds their rows: no measurement, ``collapsed``
    and ``diverged`` true, so that an arm whose every run diverged is still compared.
    """
    rows = []
    diverged = {r.name for r in gone}
    for r in [*suite.runs, *gone]:
        c = r.resolved_config
        rows.append({
            "run": r.name, "dataset": dataset_title(r.dataset), "seed": c["seed"],
            "optimizer": c["optimizer"], "learning_rate": c["learning_rate"],
            "momentum": c["momentum"], "lr_schedule": c["lr_schedule"],
            "warmup_updates": c["warmup_updates"], "training": training_title(c),
            "N": c["accumulation_steps"], "batch": c["batch_size"], "epochs": c["epochs"],
            "micro_batch": r.micro_batch_size,
            "mode": c["accumulation_mode"], "reduction": c["reduction"],
            "lr_scaling": c["lr_scaling"], "lr_base_batch": c["lr_base_batch"],
            "effective_lr": r.effective_learning_rate,
            "test_accuracy": r.measured("test_accuracy"),
            "val_accuracy": r.measured("final_val_accuracy"),
            "collapsed": collapsed(r.measured("final_val_accuracy"), _num_classes(r.dataset)),
            "diverged": r.name in diverged, "chance": 1.0 / _num_classes(r.dataset),
            "train_eval_accuracy": r.measured("train_eval_accuracy"),
            "generalization_gap": r.measured("generalization_gap"),
            "time_per_image_ms": r.time_per_image_ms,
            "peak_memory_mib": r.measured("peak_memory_mib"),
            "optimizer_updates": r.measured("optimizer_updates"),
            "configuration": configuration_key(c),
            "control_group": _key(c, NOT_CONFIGURATION + ACCUMULATION_KEYS),
            "budget_group": _key(c, NOT_CONFIGURATION + ACCUMULATION_KEYS + ("epochs",)),
        })
    return pd.DataFrame(rows)


def diverged_runs(suite: Suite) -> list[Run]:
    """Every run that diverged (NaN loss) as a :class:`records.Run`: its config, no metrics."""
    from swin_gao_lib.config import from_yaml
    from swin_gao_lib.config.yaml_text import read_text_file
    from swin_gao_lib.records import CONFIG

    runs = []
    for name, failure in suite.failed.items():
        path = Path(suite.path) / name / CONFIG
        if not failure.get("diverged") or not path.is_file():
            continue
        config = from_yaml(read_text_file(path, "run config"), str(path))
        runs.append(Run(name, path.parent, config.to_dict(),
                        {"effective_learning_rate": config.effective_learning_rate},
                        pd.DataFrame()))
    return runs


def _family(row: pd.Series, base: pd.Series | None) -> str:
    if base is not None and row["configuration"] == base["configuration"]:
        return BASELINE
    if row["N"] == 1:
        if base is not None and row["batch"] > base["batch"] and row["batch"] % base["batch"] == 0:
            return PLAIN_BATCH
        return "no accumulation"
    if base is None:
        return "other"
    if row["batch"] == base["batch"]:
        return EQUAL_BATCH
    if row["micro_batch"] == base["batch"]:
        return EQUAL_MICRO
    return "other"


def configurations(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: family, label, control, baseline, and mean/std/n over seeds."""
    first = runs.groupby("configuration", sort=False).first().reset_index()
    baselines: dict[str, pd.Series] = {}
    for group, rows in first.groupby("control_group", sort=False):
        single = rows[rows["N"] == 1]
        at_base = single[single["batch"] == single["lr_base_batch"]]
        pick = at_base if len(at_base) == 1 else single
        if len(pick) == 1:
            baselines[group] = pick.iloc[0]
    out = []
    for _, row in first.iterrows():
        base = baselines.get(row["control_group"])
        row = row.copy()
        row["family"] = _family(row, base)
        if base is None and row["N"] > 1:
            base = _equal_updates_baseline(row, baselines.values())
            if base is not None:
                row["family"] = EQUAL_UPDATES
        row["baseline"] = base["configuration"] if base is not None else None
        seeds = runs[runs["configuration"] == row["configuration"]]
        row["seeds"] = len(seeds)
        for metric in METRICS:
            row[f"{metric}_mean"], row[f"{metric}_std"], _ = mean_std(seeds[metric].dropna())
        out.append(row)
    means = {r["configuration"]: r["optimizer_updates_mean"] for r in out}
    for row in out:
        mine, base = means[row["configuration"]], means.get(row["baseline"])
        # None where a side has no complete run to count updates on (all its runs diverged)
        row["same_updates"] = (bool(mine == base) if row["family"] in SAME_UPDATES
                               and pd.notna(mine) and pd.notna(base) else None)
        row["plain"] = _plain_partner(row, first) if row["family"] == EQUAL_MICRO else None
        row["label"] = configuration_label(row)
        row["control"] = control_label(row)
    _tell_apart(out)
    table = pd.DataFrame(out).infer_objects()
    rank = {**{f: i for i, f in enumerate(FAMILIES)}, **{s: i for i, s in enumerate(LR_SCALING_TITLES)}}
    table["_family"] = table["family"].map(rank)
    table["_lr"] = table["lr_scaling"].map(rank)
    table = table.sort_values(["dataset", "optimizer", "_family", "mode", "reduction", "_lr", "N"],
                              kind="stable")
    return table.drop(columns=["_family", "_lr"]).reset_index(drop=True)


def _tell_apart(rows: list[pd.Series]) -> None:
    """Name the learning rate where configurations would otherwise share a label, and wherever
    one optimizer runs at several rates in a data set (SGD's sum at lr/N must say its rate even
    when the sum at lr has no complete run: alone, it would read like the sum that broke)."""
    rates: dict[tuple, set[float]] = {}
    for r in rows:  # the rates each optimizer ran at, without a scaling rule
        if r["lr_scaling"] == "none":
            key = (r["dataset"], r["optimizer"], r["momentum"])
            rates.setdefault(key, set()).add(r["learning_rate"])
    several = [r["lr_scaling"] == "none"
               and len(rates[(r["dataset"], r["optimizer"], r["momentum"])]) > 1 for r in rows]
    for column in ("label", "control"):
        names = [(r["dataset"], r[column]) for r in rows]
        for row, at_several in zip(rows, several):
            if names.count((row["dataset"], row[column])) > 1 or at_several:
                row[column] = f"{row[column]}, lr {row['effective_lr']:g}"
    # and the figures' arms (:mod:`.arms`): SGD's baseline at lr and its N=1 arm at 4 lr apart
    for row, at_several in zip(rows, several):
        if at_several:
            row["training"] = f"{row['training']}, lr {row['effective_lr']:g}"


def _equal_updates_baseline(row: pd.Series, baselines: Any) -> pd.Series | None:
    """The baseline an N>1 configuration matches with micro-batches of its batch and N times
    its epochs, the rest of the config the same (control 2b); None if none."""
    for base in baselines:
        if (base["budget_group"] == row["budget_group"] and row["micro_batch"] == base["batch"]
                and row["epochs"] == row["N"] * base["epochs"]):
            return base
    return None


def _plain_partner(row: pd.Series, first: pd.DataFrame) -> str | None:
    """The plain partner of an equal-micro-batch configuration (control 2a): same control group,
    N=1, the same batch, ``lr_scaling`` and warm-up."""
    match = first[(first["control_group"] == row["control_group"]) & (first["N"] == 1)
                  & (first["batch"] == row["batch"]) & (first["lr_scaling"] == row["lr_scaling"])
                  & (first["warmup_updates"] == row["warmup_updates"])]
    return match.iloc[0]["configuration"] if len(match) == 1 else None


def at_chance(configs: pd.DataFrame) -> pd.Series:
    """Configurations whose mean test accuracy sits within the collapse margin of chance."""
    return configs["test_accuracy_mean"] <= configs["chance"] + COLLAPSE_MARGIN


def n_sweep(configs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of ``metric`` against N, one series per family (and lr scaling).

    Each series starts at its baseline (N=1) and follows one family, in-step with
    a mean loss, per data set and training arm; equal effective batch also with
    the paper's summed gradients, unless that arm collapsed.
    """
    rows = []
    # the mean (the baseline's gradient) and, in the equal-effective-batch family, the sum:
    # the paper's own GAO (Eq. 9), which is in every figure of the report
    sel = configs[(configs["mode"] == "in_step") & ((configs["reduction"] == "mean")
                                                    | (configs["family"] == EQUAL_BATCH))]
    # one series per control group: arms that differ only in their rate each have their own
    for (dataset, training, _), g in sel.groupby(["dataset", "training", "control_group"],
                                                 sort=False):
        base = g[g["family"] == BASELINE]
        if len(base) != 1:
            continue
        b0, opt = base.iloc[0]["batch"], base.iloc[0]["optimizer"]
        equal = g[g["family"] == EQUAL_BATCH]
        series = [(series_label(training, EQUAL_BATCH, b0), EQUAL_BATCH, "none", "mean",
                   equal[equal["reduction"] == "mean"]),
                  # a summed arm that collapsed or lost runs to divergence is left out: a
                  # mean over two modes would squash every learning arm into one line
                  (series_label(training, EQUAL_BATCH, b0) + ", summed (Eq. 9)", EQUAL_BATCH,
                   "none", "sum", equal[(equal["reduction"] == "sum") & ~at_chance(equal)
                                        & (equal["seeds"] >= base.iloc[0]["seeds"])])]
        micro = g[g["family"] == EQUAL_MICRO]
        for scaling in LR_SCALING_TITLES:
            series.append((series_label(training, EQUAL_MICRO, b0, scaling), EQUAL_MICRO, scaling,
                           "mean", micro[micro["lr_scaling"] == scaling]))
        for name, family, scaling, reduction, members in series:
            if members.empty:
                continue
            for _, r in pd.concat([base, members]).sort_values("N").iterrows():
                rows.append({"dataset": dataset, "series": name, "family": family,
                             "optimizer": opt, "training": training, "lr_scaling": scaling,
                             "reduction": reduction, "N": int(r["N"]),
                             "mean": float(r[f"{metric}_mean"]), "std": float(r[f"{metric}_std"]),
                             "seeds": int(r["seeds"]),
                             "optimizer_updates": float(r["optimizer_updates_mean"])})
    return pd.DataFrame(rows, columns=["dataset", "series", "family", "optimizer", "training",
                                       "lr_scaling", "reduction", "N", "mean", "std", "seeds",
                                       "optimizer_updates"])


def paper_run(c: dict[str, Any]) -> bool:
    """A run of the paper's pair: its baseline (N=1) or its GAO (in-step, summed), both at the
    default optimizer, the reference batch (unscaled) and a constant rate without warm-up."""
    d = RunConfig()
    reference = (c["optimizer"] == d.optimizer and c["lr_scaling"] == "none"
                 and c["batch_size"] == c["lr_base_batch"] and c["lr_schedule"] == d.lr_schedule
                 and c["warmup_updates"] == d.warmup_updates)
    in_step_sum = c["accumulation_mode"] == "in_step" and c["reduction"] == "sum"
    return reference and (c["accumulation_steps"] == 1 or in_step_sum)
