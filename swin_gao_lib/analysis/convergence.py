r"""Has a configuration settled? The settling rule on validation accuracy, with its interval.

Per configuration, over its learning seeds (collapsed and diverged runs are
counted, not fitted): each seed's least-squares slope of validation accuracy
over its last :data:`SETTLE_EPOCHS` epochs; their mean with a 95% t-interval
over seeds; **settled** when the interval's upper end is below
:data:`SETTLE_FRACTION` x the data set's test-accuracy margin per epoch (five
more epochs stay inside the margin). Fewer than :data:`MIN_SEEDS` learning
seeds, or runs shorter than the fit, get no verdict. A comparison of two
settled configurations gets a plain verdict, any other a fixed-budget one,
"at E epochs" (:func:`budget_label`).
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
    """(mean slope, t-interval low, high, settled: high < ``threshold``) of the seeds' slopes;
    NaNs and not settled with fewer than :data:`MIN_SEEDS` finite slopes."""
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
    """One row per configuration: its settling verdict and final accuracies (train-set
    accuracy beside validation and test says why a model stops where it does).

    ``margins``: each data set title's test-accuracy margin (a fraction).
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
