r"""Has an arm settled? The settling rule, on validation accuracy, with its interval.

A comparison of two configurations that are still learning measures how fast
they learn in the budget, not where they end. The rule (written before the
learning-rate sweep's runs, ``params/study-lr-sweep``), per configuration:

* each seed's validation accuracy over its last :data:`SETTLE_EPOCHS` epochs is
  fitted by least squares, giving one slope per seed;
* the configuration's slope is the mean of its seeds' slopes, with a 95%
  t-interval over the seeds (:func:`scipy.stats.t`);
* it has **settled** when the interval's upper end is below the threshold:
  :data:`SETTLE_FRACTION` of the data set's equivalence margin per epoch
  (0.1 pp on MNIST's 0.5 pp margin) -- at that pace, five more epochs stay
  inside the margin.

The rule can fail: a rising configuration, or one whose seeds disagree so much
that the interval reaches the threshold, has not settled. Runs that collapsed
(at chance, or diverged) are left out of the slope; a configuration with fewer
than :data:`MIN_SEEDS` learning seeds gets no verdict (``collapsed`` when its
other seeds collapsed, ``too few seeds`` otherwise), nor one whose runs are
shorter than the fit. A falling curve settles (it no longer gains). A
comparison of two settled configurations gets a plain verdict; every other
verdict is a **fixed-budget** verdict, "at E epochs"
(:func:`budget_label`).

Beside the slope, :func:`convergence` lists what says *why* a model stops
where it does: its final accuracy on its own training images (scored like the
test images, without dropout) beside validation and test.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from swin_gao_lib.records import Suite

#: Epochs each seed's slope is fitted over.
SETTLE_EPOCHS = 6
#: The threshold per epoch, as a fraction of the data set's equivalence margin.
SETTLE_FRACTION = 0.2
#: The fewest learning seeds a verdict needs (an interval over seeds).
MIN_SEEDS = 3
CONFIDENCE = 0.95
SETTLED, LEARNING, COLLAPSED, TOO_FEW, TOO_SHORT = (
    "settled", "still learning", "collapsed", "too few seeds", "too few epochs")

COLUMNS = ["dataset", "configuration", "family", "seeds", "learning_seeds", "epochs",
           "val_slope", "val_slope_low", "val_slope_high", "threshold", "settled", "state",
           "final_val_accuracy", "train_eval_accuracy", "test_accuracy"]


def slope(values: Sequence[float], epochs: int = SETTLE_EPOCHS) -> float:
    """Least-squares slope of the last ``epochs`` values, per epoch (NaN if too few)."""
    y = np.asarray(values, dtype=float)[-epochs:]
    if y.size < max(epochs, 2) or not np.isfinite(y).all():
        return float("nan")
    x = np.arange(y.size, dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def settling(slopes: Sequence[float], threshold: float,
             confidence: float = CONFIDENCE) -> tuple[float, float, float, bool]:
    """(mean slope, interval low, interval high, settled) from the learning seeds' slopes.

    The interval is the t-interval of the mean over seeds; settled when its
    upper end is below ``threshold``. Fewer than :data:`MIN_SEEDS` finite
    slopes: NaNs and not settled.
    """
    s = np.asarray([v for v in slopes if np.isfinite(v)], dtype=float)
    if s.size < MIN_SEEDS:
        return float("nan"), float("nan"), float("nan"), False
    mean = float(s.mean())
    half = float(stats.t.ppf(0.5 + confidence / 2, s.size - 1) * s.std(ddof=1) / np.sqrt(s.size))
    return mean, mean - half, mean + half, bool(mean + half < threshold)


def budget_label(arm_settled: bool, partner_settled: bool, epochs: int) -> str:
    """``settled`` when both configurations settled, else the fixed budget: ``at E epochs``."""
    return SETTLED if arm_settled and partner_settled else f"at {epochs} epochs"


def convergence(suite: Suite, runs: pd.DataFrame, configs: pd.DataFrame,
                margins: Mapping[str, float]) -> pd.DataFrame:
    """One row per configuration: its settling verdict and final accuracies.

    ``margins`` maps a data set's title to its test-accuracy margin (a
    fraction); the threshold is :data:`SETTLE_FRACTION` of it per epoch.
    ``runs`` may hold diverged runs (:func:`study.runs_frame` with ``gone``):
    like a run that ``collapsed`` at chance, each is counted but not fitted.
    """
    histories = {r.name: r.history for r in suite.runs}
    rows = []
    for _, c in configs.iterrows():
        mine = runs[runs["configuration"] == c["configuration"]]
        if mine.empty:
            continue
        learning = mine[~mine["collapsed"].astype(bool) & mine["run"].isin(histories)]
        curves = [histories[name].sort_values("epoch")["val_accuracy"].to_numpy()
                  for name in learning["run"]]
        epochs = int(mine["epochs"].max())
        threshold = SETTLE_FRACTION * margins[c["dataset"]]
        mean, low, high, settled = settling([slope(v) for v in curves], threshold)
        if len(curves) < MIN_SEEDS:
            state = COLLAPSED if len(mine) >= MIN_SEEDS else TOO_FEW
        elif min(len(v) for v in curves) < SETTLE_EPOCHS:
            state = TOO_SHORT
        else:
            state = SETTLED if settled else LEARNING
        final = [v[-1] for v in curves]
        rows.append({
            "dataset": c["dataset"], "configuration": c["label"], "family": c["family"],
            "seeds": len(mine), "learning_seeds": len(curves), "epochs": epochs,
            "val_slope": mean, "val_slope_low": low, "val_slope_high": high,
            "threshold": threshold, "settled": state == SETTLED, "state": state,
            "final_val_accuracy": float(np.mean(final)) if final else np.nan,
            "train_eval_accuracy": float(mine["train_eval_accuracy"].mean()),
            "test_accuracy": float(mine["test_accuracy"].mean()),
        })
    return pd.DataFrame(rows, columns=COLUMNS)
