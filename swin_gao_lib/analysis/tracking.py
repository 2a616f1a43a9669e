r"""How closely in-step accumulation follows its baseline, seed by seed: per epoch and per update.

Without per-micro-batch randomness (the deterministic arm) and with a mean
loss, both compute the same gradient up to float32 rounding, and their curves
coincide; with dropout they part like two seeds. :func:`loss_tracking` compares
``history.csv``'s losses (equal effective batch, in-step, mean);
:func:`update_tracking` compares ``lr.csv`` per update (mean and sum):

* ``loss_relative_difference`` -- of each update's batch loss, recovered from
  the running epoch mean after update ``k``: ``L_k = k m_k - (k-1) m_{k-1}``
  (float32 limits this to about ``k`` units in the last place);
* ``update_ratio`` -- the norm of the weights' change over the baseline's: N
  from the first update for SGD with a summed gradient, 1 for Adam(W).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from swin_gao_lib.analysis.comparisons import declared_keys
from swin_gao_lib.config.labels import EQUAL_BATCH
from swin_gao_lib.records import Suite

TRACK_COLUMNS = ["dataset", "configuration", "N", "seed", "epoch", "loss", "baseline_loss",
                 "relative_difference", "val_loss", "baseline_val_loss",
                 "val_relative_difference"]
UPDATE_COLUMNS = ["dataset", "configuration", "optimizer", "reduction", "N", "seed", "update",
                  "epoch", "batch_loss", "baseline_batch_loss", "loss_relative_difference",
                  "update_norm", "baseline_update_norm", "update_ratio"]


def _pairs(runs: pd.DataFrame, configs: pd.DataFrame, reductions: tuple[str, ...]):
    """(configuration row, run row, the baseline's run name) for every seed both ran."""
    sel = configs[(configs["family"] == EQUAL_BATCH) & (configs["mode"] == "in_step")
                  & (configs["reduction"].isin(reductions))]
    for _, c in sel.iterrows():
        yield from _shared_seeds(runs, c, c["configuration"], c["baseline"])


def _shared_seeds(runs: pd.DataFrame, c: pd.Series, arm: str, partner: str):
    base = runs[runs["configuration"] == partner].set_index("seed")
    for _, r in runs[runs["configuration"] == arm].iterrows():
        if r["seed"] in base.index:
            yield c, r, base.loc[r["seed"], "run"]


def loss_tracking(suite: Suite, runs: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """Per epoch: training and validation loss of N micro-batches (mean) against the baseline."""
    histories = {r.name: r.history for r in suite.runs}
    rows: list[dict[str, Any]] = []
    for c, r, base_run in _pairs(runs, configs, ("mean",)):
        both = histories[r["run"]].merge(histories[base_run], on="epoch",
                                         suffixes=("", "_baseline"))
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
    return pd.DataFrame(rows, columns=TRACK_COLUMNS)


def loss_tracking_summary(track: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and seed: the largest relative loss difference from the baseline."""
    g = track.groupby(["dataset", "configuration", "N", "seed"], sort=False)
    return g.agg(epochs=("epoch", "count"),
                 max_relative_difference=("relative_difference", "max"),
                 max_val_relative_difference=("val_relative_difference", "max")).reset_index()


def batch_losses(updates: pd.DataFrame) -> np.ndarray:
    """Each update's batch loss from the running epoch means of ``lr.csv`` (full batches)."""
    out = np.empty(len(updates))
    for _, g in updates.groupby("epoch", sort=False):
        m = g["loss"].to_numpy(dtype=np.float64)
        k = np.arange(1, len(m) + 1, dtype=np.float64)
        totals = k * m
        out[g.index.to_numpy() - updates.index[0]] = np.diff(totals, prepend=0.0)
    return out


def _declared_pairs(runs: pd.DataFrame, configs: pd.DataFrame, design: Any):
    """As :func:`_pairs`, for a design's declared in-step comparisons (SGD's sum at lr/N...)."""
    from swin_gao_lib.config import RunConfig

    defaults = RunConfig().to_dict()
    by_key = configs.set_index("configuration")
    for d in design.comparisons if design is not None else []:
        arm, partner = declared_keys(d, defaults)
        if (arm not in by_key.index or partner not in by_key.index
                or d.arm.get("accumulation_mode", "in_step") != "in_step"
                or by_key.loc[arm, "baseline"] == partner):  # already an inferred pair
            continue
        c = by_key.loc[arm].copy()
        c["label"] = d.label or f"{c['label']} vs {by_key.loc[partner, 'label']}"
        yield from _shared_seeds(runs, c, arm, partner)


def update_tracking(suite: Suite, runs: pd.DataFrame, configs: pd.DataFrame,
                    design: Any = None, diverged: Any = ()) -> pd.DataFrame:
    """Per update: batch loss and step size of in-step N micro-batches against the baseline,
    and of every in-step comparison a ``design`` declares.

    Only runs whose ``lr.csv`` has the per-update columns and as many updates as
    their partner's are compared; where a side diverged (``diverged``, included
    in ``runs`` and ``configs``), the updates both made before it stopped.
    """
    import itertools

    by_name = {r.name: r for r in [*suite.runs, *diverged]}
    stopped = {r.name for r in diverged}
    rows: list[dict[str, Any]] = []
    for c, r, base_run in itertools.chain(_pairs(runs, configs, ("mean", "sum")),
                                          _declared_pairs(runs, configs, design)):
        mine, base = by_name[r["run"]].learning_rates, by_name[base_run].learning_rates
        if (mine is None or base is None
                or not {"loss", "update_norm"} <= set(mine.columns) & set(base.columns)):
            continue
        if len(mine) != len(base):
            if not {r["run"], base_run} & stopped:
                continue
            n = min(len(mine), len(base))
            mine, base = mine.iloc[:n], base.iloc[:n]
        mine, base = mine.reset_index(drop=True), base.reset_index(drop=True)
        loss, loss0 = batch_losses(mine), batch_losses(base)
        norm, norm0 = mine["update_norm"].to_numpy(float), base["update_norm"].to_numpy(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.abs(loss - loss0) / np.abs(loss0)
            ratio = norm / norm0
        rows.append(pd.DataFrame({
            "dataset": c["dataset"], "configuration": c["label"], "optimizer": c["optimizer"],
            "reduction": c["reduction"], "N": int(c["N"]), "seed": int(r["seed"]),
            "update": mine["update"], "epoch": mine["epoch"], "batch_loss": loss,
            "baseline_batch_loss": loss0, "loss_relative_difference": rel,
            "update_norm": norm, "baseline_update_norm": norm0, "update_ratio": ratio}))
    if not rows:
        return pd.DataFrame(columns=UPDATE_COLUMNS)
    return pd.concat(rows, ignore_index=True)[UPDATE_COLUMNS]


def update_tracking_summary(track: pd.DataFrame) -> pd.DataFrame:
    """Per configuration and seed: the largest loss difference and the update-size ratio."""
    g = track.groupby(["dataset", "configuration", "optimizer", "reduction", "N", "seed"],
                      sort=False)
    return g.agg(updates=("update", "count"),
                 max_loss_relative_difference=("loss_relative_difference", "max"),
                 first_update_ratio=("update_ratio", "first"),
                 median_update_ratio=("update_ratio", "median"),
                 min_update_ratio=("update_ratio", "min"),
                 max_update_ratio=("update_ratio", "max")).reset_index()
