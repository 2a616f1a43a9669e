"""Has a configuration converged? The plateau rule, on validation accuracy.

A comparison of two configurations that are still learning measures how fast
they learn, not where they end. The study's rule, stated before its runs
(issue #19): a configuration is **at a plateau** when the least-squares slope
of its validation accuracy -- the mean over its seeds, epoch by epoch -- over
its last :data:`PLATEAU_EPOCHS` epochs is below :data:`PLATEAU_SLOPE` (0.2
percentage points per epoch). Validation, never test: the rule decides how
long to train. A falling curve counts as a plateau (it no longer gains).

The slope of the mean curve is the slope of the seeds' own slopes' mean; their
standard error (``val_slope_se``) says how much of the verdict is noise -- with
few validation images an epoch's accuracy jumps by a point or two, and three
epochs make a short line. Besides the slope, :func:`convergence` lists what says *why* a model stops
where it does: its final accuracy on its own training images (scored like the
test images, without dropout) beside validation and test. A model whose train
accuracy also stays low is limited by capacity or data, not by overfitting.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from swin_gao_lib.records import Suite

#: Epochs the slope is fitted over.
PLATEAU_EPOCHS = 3
#: The largest slope (accuracy per epoch, a fraction: 0.002 = 0.2 pp) of a plateau.
PLATEAU_SLOPE = 0.002

COLUMNS = ["dataset", "configuration", "family", "seeds", "epochs", "val_slope",
           "val_slope_se", "plateau", "seeds_at_plateau", "final_val_accuracy", "train_eval_accuracy",
           "test_accuracy"]


def slope(values: Sequence[float], epochs: int = PLATEAU_EPOCHS) -> float:
    """Least-squares slope of the last ``epochs`` values, per epoch (NaN if too few)."""
    y = np.asarray(values, dtype=float)[-epochs:]
    if y.size < max(epochs, 2) or not np.isfinite(y).all():
        return float("nan")
    x = np.arange(y.size, dtype=float)
    return float(np.polyfit(x, y, 1)[0])


def at_plateau(value: float, limit: float = PLATEAU_SLOPE) -> bool:
    """The rule: a slope below ``limit`` (a NaN slope -- too few epochs -- is not)."""
    return bool(np.isfinite(value) and value < limit)


def convergence(suite: Suite, runs: pd.DataFrame, configs: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: its validation slope, plateau verdict and final accuracies.

    The slope is that of the mean curve over the configuration's seeds (only
    epochs every seed reached); ``seeds_at_plateau`` counts the seeds whose own
    curve passes the rule.
    """
    histories = {r.name: r.history for r in suite.runs}
    rows = []
    for _, c in configs.iterrows():
        mine = runs[runs["configuration"] == c["configuration"]]
        curves = [histories[name].set_index("epoch")["val_accuracy"] for name in mine["run"]]
        if not curves:
            continue
        table = pd.concat(curves, axis=1).dropna()
        mean_curve = table.mean(axis=1).sort_index()
        value = slope(mean_curve.to_numpy())
        own = np.array([slope(col.sort_index().to_numpy()) for _, col in table.items()])
        rows.append({
            "dataset": c["dataset"], "configuration": c["label"], "family": c["family"],
            "seeds": len(curves), "epochs": int(mean_curve.index.max()) if len(mean_curve) else 0,
            "val_slope": value,
            # the spread of the seeds' own slopes: how much of the verdict is noise
            "val_slope_se": float(own.std(ddof=1) / np.sqrt(own.size)) if own.size > 1 else np.nan,
            "plateau": at_plateau(value), "seeds_at_plateau": int(sum(map(at_plateau, own))),
            "final_val_accuracy": float(mean_curve.iloc[-1]) if len(mean_curve) else np.nan,
            "train_eval_accuracy": float(mine["train_eval_accuracy"].mean()),
            "test_accuracy": float(mine["test_accuracy"].mean()),
        })
    return pd.DataFrame(rows, columns=COLUMNS)
