"""The loss-tracking figure: N micro-batches against one batch, epoch by epoch."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
from matplotlib import colors as mcolors
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from swin_gao_lib.analysis.arms import Arm, ArmStyles
from swin_gao_lib.analysis.plots import FONT, legend_below, new_figure, style_axes


#: float32's machine epsilon (2**-23): the relative resolution of one float32 number.
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def _shades(color: str, k: int) -> list:
    """``k`` shades of ``color``, light to full: one per N of one arm."""
    rgb = np.array(mcolors.to_rgb(color))
    return [tuple(1 - (1 - rgb) * f) for f in np.linspace(0.45, 1.0, k)] if k > 1 else [color]


def loss_tracking(track: pd.DataFrame, arms: Mapping[tuple[str, str], Arm],
                  styles: ArmStyles) -> Figure:
    """Equal-effective-batch accumulation (in-step, mean) against its baseline's loss curve.

    ``track``: :func:`.tracking.loss_tracking`; ``arms``: each ``(dataset, label)``'s
    arm. Per data set and arm: left, the losses of the baseline (black, dashed)
    and of each N (shades of the arm's colour) for their first shared seed;
    right, ``|loss_N - loss_1| / loss_1`` per epoch and seed, log scale, float32's
    epsilon dotted.
    """
    track = track.assign(arm=[arms[k] for k in zip(track["dataset"], track["configuration"])])
    panels = list(dict.fromkeys(zip(track["dataset"], track["arm"])))
    fig = new_figure(11.0, 3.6 * len(panels) + 1.0)
    axes = fig.subplots(len(panels), 2, squeeze=False)
    handles: dict[str, Line2D] = {"baseline (N=1)": Line2D([], [], color="black", linestyle="--",
                                                           linewidth=2.2)}
    for (left, right), (ds, arm) in zip(axes, panels):
        sub = track[(track["dataset"] == ds) & (track["arm"] == arm)]
        s = styles[arm]
        ns = sorted(sub["N"].unique())
        color = dict(zip(ns, _shades(s.color, len(ns))))
        seed = sub["seed"].min()
        first = sub[sub["seed"] == seed]
        base = first[first["N"] == ns[0]]
        left.plot(base["epoch"], base["baseline_loss"], "k--", linewidth=2.2)
        for n, g in first.groupby("N"):
            left.plot(g["epoch"], g["loss"], marker=s.marker, markersize=4.5, linewidth=1.2,
                      color=color[n])
            handles.setdefault(f"{arm.label}, N={n}",
                               Line2D([], [], color=color[n], marker=s.marker, linewidth=1.2))
        for (n, _), g in sub.groupby(["N", "seed"]):
            # a difference of exactly 0 has no place on a log axis: drawn at eps/10
            right.plot(g["epoch"], g["relative_difference"].clip(lower=FLOAT32_EPS / 10),
                       linewidth=1, alpha=0.8, color=color[n])
        right.axhline(FLOAT32_EPS, color="grey", linestyle=":", linewidth=1.2)
        right.set_yscale("log")
        k = sub["seed"].nunique()
        style_axes(left, f"{ds}: {arm.label}\ntraining loss per epoch, seed {seed}", "epoch",
                   "training loss")
        style_axes(right, f"{ds}: relative difference from the baseline\n"
                   f"({k} seed{'s' if k > 1 else ''}, one line each)", "epoch",
                   "|loss_N - loss_1| / loss_1")
        right.grid(alpha=0.3, which="major")
        right.grid(alpha=0.08, which="minor")
    handles["float32 epsilon (2^-23)"] = Line2D([], [], color="grey", linestyle=":", linewidth=1.2)
    legend_below(fig, list(handles.values()), list(handles))
    fig.suptitle("Equal effective batch, in-step mean: N micro-batches vs one batch",
                 fontsize=FONT["suptitle"])
    return fig
