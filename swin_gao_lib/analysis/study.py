"""A suite read as a study: configurations over seeds, controls, comparisons, findings.

Runs that differ only in their seed are one *configuration*. Configurations
that differ only in how a batch is accumulated (``accumulation_steps``,
``batch_size``, ``accumulation_mode``, ``reduction``, ``lr_scaling``) share a
*baseline*: the one among them with N=1 (at ``lr_base_batch`` if there are
several). Against that baseline, with ``B0`` its batch, each accumulating
configuration belongs to a *family*:

* **equal effective batch** -- ``B = B0`` in N micro-batches of ``B0/N``: the
  same data per update and as many updates; with a mean loss, the same
  gradient. What may change is time and memory.
* **equal micro-batch** -- micro-batches of ``B0``, so ``B = N B0`` and N times
  fewer updates per epoch; optionally a learning rate scaled by sqrt(N) or N.
* **equal updates** -- micro-batches of ``B0`` as above, trained N times the
  baseline's epochs, so that they make as many updates as the baseline (the
  same config otherwise; issue #11, control 2b).
* **plain large batch** -- N=1 at ``B = N B0`` (a multiple of the baseline's
  batch), without accumulation: the larger batch and the fewer updates alone.

Each equal-micro-batch configuration is also compared with its *plain
partner* when the suite has one: the plain-large-batch configuration at its
batch ``N B0`` with the same learning-rate scaling (control 2a). Both make the
same updates on the same batches; a difference there is accumulation's, while
the plain configuration against the baseline shows what the larger batch
does. Where a family promises as many updates as its partner (equal effective
batch, equal updates, vs plain), the recorded ``optimizer_updates`` are
checked: where they differ (Keras's optimizer mode carries micro-steps across
epoch ends) the control says *updates differ*, never *same updates*
(control 2d).

A *control* is a family at fixed optimizer, mode, reduction and learning-rate
scaling, seen across N. Every comparison with its partner (the baseline, or
the plain partner) is a difference of means over seeds with a 95% confidence
interval and a t-test
(:mod:`swin_gao_lib.analysis.stats`), paired by seed when the seeds match.

Each comparison also gets a *decision* (:func:`swin_gao_lib.analysis.stats.decide`):
within a family -- one data set and one metric, every control together -- the
difference tests and the equivalence tests (TOST against a stated margin,
:data:`MARGINS`) are Holm-adjusted, and a comparison is *lower* / *higher*
when its adjusted difference test rejects at 5%, *equivalent within +-m* when
only its adjusted TOST does, and *inconclusive* when neither does: the data
can neither show a difference nor rule out one as large as the margin. Each
comparison carries its minimum detectable effect (80% power, 5% two-sided,
before Holm's correction, which only raises it). A metric without a margin
gets no decision: a suite's runs are timed one or a few at a time on a
machine shared with other work, not interleaved, and without a noise floor
measured by repeating identical runs their time differences are reported as
numbers only.

The findings table states, for each claim of the paper and each control,
what this suite's data decides about it, from those comparisons alone; it
never reads *inconclusive* as "no effect".
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from swin_gao_lib.config.labels import (BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES,
                                 LR_SCALING_TITLES, PLAIN_BATCH, configuration_label,
                                 control_label, dataset_title, series_label, training_title,
                                 versus_plain_label)
from swin_gao_lib.records import Suite
from swin_gao_lib.analysis.stats import (compare,
                                decide, holm, mean_std)

#: Keys that do not make a configuration: the seed and where the records went.
NOT_CONFIGURATION = ("seed", "run_name", "output_dir")
#: Keys that say how a batch is accumulated; the rest of the config is the control.
ACCUMULATION_KEYS = ("accumulation_steps", "batch_size", "accumulation_mode", "reduction",
                     "lr_scaling")
FAMILIES = (BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES, PLAIN_BATCH, "no accumulation",
            "other")
#: Families whose configurations make as many updates as their baseline (checked per run).
SAME_UPDATES = (EQUAL_BATCH, EQUAL_UPDATES)
#: Whom a comparison is against: the baseline, or the plain partner at the same batch.
VS_BASELINE, VS_PLAIN = "baseline", "plain"
#: Per-run measurements the study compares, with their display names.
METRICS = {
    "test_accuracy": "test accuracy",
    "generalization_gap": "train-test gap",
    "time_per_image_ms": "time per image (ms)",
    "peak_memory_mib": "peak memory (MiB)",
    "optimizer_updates": "optimizer updates",
}
#: Equivalence margins (in the metric's units) for a decision: +-2 percentage points of
#: accuracy and of the train-test gap. Time has none until a noise floor is measured
#: (repeated identical runs or interleaved measurements): without one, time differences
#: between runs that were not interleaved, on a shared machine, are numbers, not verdicts.
#: Memory and update counts are descriptive.
MARGINS: dict[str, float] = {"test_accuracy": 0.02, "generalization_gap": 0.02}
#: The decision of a comparison whose metric has no margin.
NOT_JUDGED = "not judged"
#: The level of every test: difference, TOST and power.
ALPHA = 0.05
#: The power at which the minimum detectable effect is stated.
POWER = 0.8


def _key(config: dict[str, Any], drop: tuple[str, ...]) -> str:
    return json.dumps({k: v for k, v in config.items() if k not in drop}, sort_keys=True)


def runs_frame(suite: Suite) -> pd.DataFrame:
    """One row per run: what it varied and what it measured (see :class:`records.Run`)."""
    rows = []
    for r in suite.runs:
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
            "test_accuracy": r.metrics["test_accuracy"],
            "train_eval_accuracy": r.measured("train_eval_accuracy"),
            "generalization_gap": r.measured("generalization_gap"),
            "time_per_image_ms": r.time_per_image_ms,
            "peak_memory_mib": r.measured("peak_memory_mib"),
            "optimizer_updates": r.metrics["optimizer_updates"],
            "configuration": _key(c, NOT_CONFIGURATION),
            "control_group": _key(c, NOT_CONFIGURATION + ACCUMULATION_KEYS),
            "budget_group": _key(c, NOT_CONFIGURATION + ACCUMULATION_KEYS + ("epochs",)),
        })
    return pd.DataFrame(rows)


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
        row["same_updates"] = (bool(means[row["configuration"]] == means[row["baseline"]])
                               if row["family"] in SAME_UPDATES else None)
        row["plain"] = _plain_partner(row, first) if row["family"] == EQUAL_MICRO else None
        row["label"] = configuration_label(row)
        row["control"] = control_label(row)
    table = pd.DataFrame(out).infer_objects()
    rank = {**{f: i for i, f in enumerate(FAMILIES)}, **{s: i for i, s in enumerate(LR_SCALING_TITLES)}}
    table["_family"] = table["family"].map(rank)
    table["_lr"] = table["lr_scaling"].map(rank)
    table = table.sort_values(["dataset", "optimizer", "_family", "mode", "reduction", "_lr", "N"],
                              kind="stable")
    return table.drop(columns=["_family", "_lr"]).reset_index(drop=True)


def _equal_updates_baseline(row: pd.Series, baselines: Any) -> pd.Series | None:
    """The baseline an N>1 configuration trained N x its epochs matches, if any (control 2b).

    Same config but for the accumulation keys and the epochs; micro-batches of
    the baseline's batch; ``epochs == N * baseline epochs``.
    """
    for base in baselines:
        if (base["budget_group"] == row["budget_group"] and row["micro_batch"] == base["batch"]
                and row["epochs"] == row["N"] * base["epochs"]):
            return base
    return None


def _plain_partner(row: pd.Series, first: pd.DataFrame) -> str | None:
    """The plain N=1 configuration at this equal-micro-batch configuration's batch (control 2a).

    Same control group (optimizer, epochs, data, model...), N=1, the same batch
    and the same ``lr_scaling`` (hence the same optimizer learning rate).
    """
    match = first[(first["control_group"] == row["control_group"]) & (first["N"] == 1)
                  & (first["batch"] == row["batch"]) & (first["lr_scaling"] == row["lr_scaling"])]
    return match.iloc[0]["configuration"] if len(match) == 1 else None


def comparisons(runs: pd.DataFrame, configs: pd.DataFrame, confidence: float = 0.95,
                margins: dict[str, float] | None = None) -> pd.DataFrame:
    """Every accumulating configuration against its baseline, metric by metric.

    Each comparison is against the configuration's baseline (``partner``
    ``"baseline"``) and, for an equal-micro-batch configuration with a plain
    partner, also against that (``"plain"``, control ``equal micro-batch vs
    plain ...``). ``point`` names the comparison within its control (``N=4``,
    or ``B=512`` for plain batches), with the two update counts when they
    should agree and do not; ``updates`` / ``partner_updates`` are the mean
    recorded counts, ``same_updates`` whether they agree (None where the
    family does not promise it).

    Besides the difference with its CI and t-test: the minimum detectable
    effect ``mde``, the equivalence margin and TOST p-value, both p-values
    Holm-adjusted within each data set and metric (``p_holm``,
    ``tost_p_holm``), and the ``decision`` (module docstring). ``margins``
    maps a metric to its margin (default :data:`MARGINS`).
    """
    margins = MARGINS if margins is None else margins
    rows: list[dict[str, Any]] = []
    by_config = {k: g for k, g in runs.groupby("configuration", sort=False)}
    updates = dict(zip(configs["configuration"], configs["optimizer_updates_mean"]))
    base_batch = dict(zip(configs["configuration"], configs["batch"]))
    pairs = []  # (configuration row, partner configuration, partner kind): baselines first
    for _, c in configs.iterrows():
        if c["family"] != BASELINE and isinstance(c["baseline"], str):
            pairs.append((c, c["baseline"], VS_BASELINE))
    for _, c in configs.iterrows():
        if isinstance(c.get("plain"), str):
            pairs.append((c, c["plain"], VS_PLAIN))
    for c, partner, kind in pairs:
        mine, base = by_config[c["configuration"]], by_config[partner]
        n_mine, n_partner = updates[c["configuration"]], updates[partner]
        if kind == VS_PLAIN:
            same = bool(n_mine == n_partner)
            control, label = versus_plain_label(c, same), f"{c['label']} vs plain"
        else:
            same = c["same_updates"] if c["family"] in SAME_UPDATES else None
            control, label = c["control"], c["label"]
        if c["family"] == PLAIN_BATCH:
            point = f"B={c['batch']}"
        else:
            point = f"N={c['N']}"
        if same is False or same == False:  # noqa: E712 (numpy bools)
            point += f" ({n_mine:.0f} vs {n_partner:.0f} updates)"
        for metric in METRICS:
            a = dict(zip(mine["seed"], mine[metric]))
            b = dict(zip(base["seed"], base[metric]))
            a = {s: v for s, v in a.items() if pd.notna(v)}
            b = {s: v for s, v in b.items() if pd.notna(v)}
            if not a or not b:
                continue
            d = compare(a, b, confidence)
            margin = margins.get(metric, np.nan)
            tost_p = d.equivalence(margin).p_value if margin > 0 else np.nan
            mean, base_mean = float(np.mean(list(a.values()))), float(np.mean(list(b.values())))
            rows.append({
                "dataset": c["dataset"], "control": control, "family": c["family"],
                "label": label, "partner": kind, "point": point,
                "partner_batch": base_batch[partner], "updates": n_mine,
                "partner_updates": n_partner, "same_updates": same,
                "optimizer": c["optimizer"], "N": c["N"],
                "batch": c["batch"], "micro_batch": c["micro_batch"], "mode": c["mode"],
                "reduction": c["reduction"], "lr_scaling": c["lr_scaling"], "metric": metric,
                "baseline_mean": base_mean, "mean": mean,
                "difference": d.estimate, "ci_low": d.ci_low, "ci_high": d.ci_high,
                "ratio": mean / base_mean if base_mean else np.nan,
                "test": d.test, "t": d.statistic, "df": d.df, "p_value": d.p_value,
                "n": d.n_a, "n_baseline": d.n_b, "significant": d.significant(),
                "se": d.se, "mde": d.minimum_detectable_effect(ALPHA, POWER),
                "margin": margin, "tost_p": tost_p,
            })
    table = pd.DataFrame(rows)
    if not table.empty:
        # Many comparisons at 5% each make a few "significant" (or "equivalent") by
        # chance; Holm's adjustment within each data set and metric says which survive.
        table["p_holm"] = np.nan
        table["tost_p_holm"] = np.nan
        for _, g in table.groupby(["dataset", "metric"], sort=False):
            table.loc[g.index, "p_holm"] = holm(g["p_value"].tolist())
            table.loc[g.index, "tost_p_holm"] = holm(g["tost_p"].tolist())
        table["decision"] = [
            decide(e, p, q, ALPHA) if m > 0 else NOT_JUDGED
            for e, p, q, m in zip(table["difference"], table["p_holm"], table["tost_p_holm"],
                                  table["margin"].fillna(0))]
        table["within_margin"] = table["tost_p_holm"] < ALPHA
    return table


def n_sweep(configs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and std of ``metric`` against N, one series per family (and lr scaling).

    Each series starts at its baseline (N=1) and follows one family at in-step
    accumulation with a mean reduction, per data set and training arm (optimizer,
    momentum, schedule: :func:`swin_gao_lib.config.labels.training_title`).
    """
    rows = []
    sel = configs[(configs["mode"] == "in_step") & (configs["reduction"] == "mean")]
    for (dataset, training), g in sel.groupby(["dataset", "training"], sort=False):
        base = g[g["family"] == BASELINE]
        if len(base) != 1:
            continue
        b0, opt = base.iloc[0]["batch"], base.iloc[0]["optimizer"]
        series = [(series_label(training, EQUAL_BATCH, b0), EQUAL_BATCH, "none",
                   g[g["family"] == EQUAL_BATCH])]
        micro = g[g["family"] == EQUAL_MICRO]
        for scaling in LR_SCALING_TITLES:
            series.append((series_label(training, EQUAL_MICRO, b0, scaling), EQUAL_MICRO, scaling,
                           micro[micro["lr_scaling"] == scaling]))
        for name, family, scaling, members in series:
            if members.empty:
                continue
            for _, r in pd.concat([base, members]).sort_values("N").iterrows():
                rows.append({"dataset": dataset, "series": name, "family": family,
                             "optimizer": opt, "training": training, "lr_scaling": scaling,
                             "N": int(r["N"]),
                             "mean": float(r[f"{metric}_mean"]), "std": float(r[f"{metric}_std"]),
                             "seeds": int(r["seeds"]),
                             "optimizer_updates": float(r["optimizer_updates_mean"])})
    return pd.DataFrame(rows, columns=["dataset", "series", "family", "optimizer", "training",
                                       "lr_scaling", "N", "mean", "std", "seeds", "optimizer_updates"])


def loss_tracking(suite: Suite, runs: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """How closely equal-effective-batch accumulation follows its baseline, epoch by epoch.

    For each configuration of the *equal effective batch* family with in-step
    accumulation and a mean loss -- the one that computes the baseline's
    gradient, ``(1/N) sum_i g_i = g`` for N equal micro-batches -- and each seed
    it shares with its baseline: the training loss and validation loss per
    epoch of both runs and their relative difference
    ``|loss_N - loss_1| / |loss_1|``. Where training draws nothing at random
    per micro-batch (no dropout, drop path or augmentation: the deterministic
    arm, issue #11 2c), the two runs see the same weights, data order and
    gradient up to float32 rounding, and the difference stays near float32's
    resolution; with dropout, N micro-batches draw N masks where the baseline
    draws one, and the curves part like two seeds'.
    """
    histories = {r.name: r.history for r in suite.runs}
    rows: list[dict[str, Any]] = []
    sel = configs[(configs["family"] == EQUAL_BATCH) & (configs["mode"] == "in_step")
                  & (configs["reduction"] == "mean")]
    for _, c in sel.iterrows():
        mine = runs[runs["configuration"] == c["configuration"]]
        base = runs[runs["configuration"] == c["baseline"]].set_index("seed")
        for _, r in mine.iterrows():
            if r["seed"] not in base.index:
                continue
            h, h0 = histories[r["run"]], histories[base.loc[r["seed"], "run"]]
            both = h.merge(h0, on="epoch", suffixes=("", "_baseline"))
            for _, e in both.iterrows():
                rows.append({
                    "dataset": c["dataset"], "configuration": c["label"], "N": int(c["N"]),
                    "seed": int(r["seed"]), "epoch": int(e["epoch"]),
                    "loss": e["loss"], "baseline_loss": e["loss_baseline"],
                    "relative_difference": abs(e["loss"] - e["loss_baseline"])
                    / abs(e["loss_baseline"]),
                    "val_loss": e["val_loss"], "baseline_val_loss": e["val_loss_baseline"],
                    "val_relative_difference": abs(e["val_loss"] - e["val_loss_baseline"])
                    / abs(e["val_loss_baseline"]),
                })
    return pd.DataFrame(rows, columns=[
        "dataset", "configuration", "N", "seed", "epoch", "loss", "baseline_loss",
        "relative_difference", "val_loss", "baseline_val_loss", "val_relative_difference"])
