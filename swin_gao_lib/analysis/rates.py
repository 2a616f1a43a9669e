r"""Accuracy against the step's effective rate: where the paper's Eq. 9 matters (SGD only).

SGD's update is linear in the gradient, so N summed micro-batch means at rate
``lr`` are one batch's step at ``N lr``::

    w <- w - lr * sum_i g_i = w - (N lr) * mean_i g_i          (g_i: micro-batch i's mean gradient)

The *effective rate* is ``N lr`` for summed in-step accumulation, else ``lr``
(Adam divides the N out). :func:`rate_table`: per configuration its effective
rate, its collapsed seeds and the learning seeds' mean test accuracy with a
percentile-bootstrap 95% interval (``scipy.stats.bootstrap``, a fixed seed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from scipy import stats

from swin_gao_lib.analysis.plots import FONT, accuracy_range, legend_below, new_figure, style_axes

#: Optimizers whose update is linear in the gradient (so a sum of N is N x the rate).
LINEAR_OPTIMIZERS = ("sgd",)
ONE_BATCH, SUMMED = "one batch", "summed micro-batches"
#: Bootstrap resamples of an interval (a fixed seed: the same interval on every report).
BOOTSTRAP_RESAMPLES = 9999
COLUMNS = ["dataset", "momentum", "series", "learning_rate", "N", "reduction",
           "effective_rate", "seeds", "collapsed", "diverged", "learning_mean",
           "learning_low", "learning_high", "mean_at_chance"]


def _series(row: pd.Series) -> str | None:
    if row["N"] == 1:
        return ONE_BATCH
    if row["mode"] == "in_step" and row["reduction"] == "sum":
        return SUMMED
    return None  # averaged micro-batches: the baseline's rate, not part of this figure


def _interval(values: np.ndarray) -> tuple[float, float]:
    if values.size < 2 or np.ptp(values) == 0:
        return (float(values.mean()),) * 2 if values.size else (np.nan, np.nan)
    ci = stats.bootstrap((values,), np.mean, confidence_level=0.95, method="percentile",
                         n_resamples=BOOTSTRAP_RESAMPLES, random_state=0).confidence_interval
    return float(ci.low), float(ci.high)


def rate_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per SGD configuration of one batch or summed micro-batches (module doc), from
    :func:`.study.runs_frame` with the diverged runs; kept where a data set and momentum has
    both series and at least two effective rates."""
    sgd = runs[runs["optimizer"].isin(LINEAR_OPTIMIZERS)].copy()
    if sgd.empty:
        return pd.DataFrame(columns=COLUMNS)
    sgd["series"] = [_series(r) for _, r in sgd.iterrows()]
    sgd = sgd.dropna(subset=["series"])
    rows = []
    for _, g in sgd.groupby(["dataset", "momentum", "configuration"], sort=False):
        r = g.iloc[0]
        rate = r["effective_lr"] * (r["N"] if r["series"] == SUMMED else 1)
        learned = g[~g["collapsed"].astype(bool)]["test_accuracy"].dropna().to_numpy(float)
        scored = np.where(g["collapsed"].astype(bool) & g["test_accuracy"].isna(),
                          g["chance"], g["test_accuracy"])
        low, high = _interval(learned)
        rows.append({
            "dataset": r["dataset"], "momentum": r["momentum"], "series": r["series"],
            "learning_rate": r["learning_rate"], "N": r["N"], "reduction": r["reduction"],
            "effective_rate": float(rate), "seeds": len(g),
            "collapsed": int(g["collapsed"].sum()), "diverged": int(g["diverged"].sum()),
            "learning_mean": float(learned.mean()) if learned.size else np.nan,
            "learning_low": low, "learning_high": high,
            "mean_at_chance": float(np.mean(scored)),
        })
    table = pd.DataFrame(rows, columns=COLUMNS)
    keep = table.groupby(["dataset", "momentum"])["effective_rate"].transform("nunique") >= 2
    keep &= table.groupby(["dataset", "momentum"])["series"].transform("nunique") == 2
    return table[keep].sort_values(["dataset", "momentum", "series", "effective_rate"],
                                   ignore_index=True)


_STYLE = {ONE_BATCH: ("black", "s", -1), SUMMED: ("#d62728", "o", +1)}


def accuracy_vs_effective_rate(table: pd.DataFrame) -> Figure | None:
    """Final test accuracy against the effective rate, per data set and momentum: the learning
    seeds' mean and interval above, the collapsed seeds counted on a strip below (None: empty)."""
    if table.empty:
        return None
    groups = list(table.groupby(["dataset", "momentum"], sort=False))
    fig = new_figure(5.2 * len(groups), 5.0)
    grid = fig.add_gridspec(2, len(groups), height_ratios=[4, 1])
    for col, ((dataset, momentum), g) in enumerate(groups):
        top = fig.add_subplot(grid[0, col])
        strip = fig.add_subplot(grid[1, col], sharex=top)
        rates = np.sort(g["effective_rate"].unique())
        for series, s in g.groupby("series", sort=False):
            color, marker, side = _STYLE[series]
            x = s["effective_rate"].to_numpy() * 2.0 ** (0.06 * side)  # dodge: ±0.06 octave
            y = 100 * s["learning_mean"].to_numpy()
            err = np.vstack([y - 100 * s["learning_low"].to_numpy(),
                             100 * s["learning_high"].to_numpy() - y])
            top.errorbar(x, y, yerr=err, color=color, marker=marker, linestyle="-",
                         capsize=3, label=series)
            for xi, (_, r) in zip(x, s.iterrows()):
                if r["collapsed"]:
                    strip.scatter([xi], [0 if series == ONE_BATCH else 1], color=color,
                                  marker=marker)
                    strip.annotate(f"{r['collapsed']}/{r['seeds']}", (xi, 0 if series == ONE_BATCH
                                                                     else 1),
                                   textcoords="offset points", xytext=(6, -4),
                                   fontsize=FONT["tick"] - 1, color=color)
        learned = 100 * g[["learning_low", "learning_high"]].to_numpy().ravel()
        top.set_ylim(*accuracy_range(learned, span=2.0))
        top.set_xscale("log", base=2)
        top.set_xlim(rates[0] / 1.5, rates[-1] * 1.5)
        top.set_xticks(rates, [f"{r:g}" for r in rates])
        top.tick_params(labelbottom=False)
        title = f"{dataset}, SGD" + (f" momentum {momentum:g}" if momentum else "")
        style_axes(top, title=title, ylabel="test accuracy (%), learning seeds")
        strip.set_ylim(-0.7, 1.7)
        strip.set_yticks([0, 1], ["one batch", "summed"])
        strip.set_xticks(rates, [f"{r:g}" for r in rates])
        style_axes(strip, xlabel="effective rate (lr, or N x lr for a sum)", grid="x")
        strip.set_title("collapsed seeds (at chance or diverged)", fontsize=FONT["tick"])
    handles, labels = fig.axes[0].get_legend_handles_labels()
    legend_below(fig, handles, labels)
    fig.suptitle("Final test accuracy against the effective rate (mean, bootstrap 95% CI)",
                 fontsize=FONT["suptitle"])
    return fig
