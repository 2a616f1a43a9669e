"""The paper's figures of a suite (Figs. 3–6), one run's curves, and what every figure shares.

Shared: sizes and fonts that read at 100% zoom, legends below the panels,
accuracy axes that show the differences compared (:func:`accuracy_range`), the
report's one :class:`~swin_gao_lib.analysis.arms.ArmStyles`, accuracy in percent.
Figures use the object-oriented API, not pyplot: no global state, so a notebook
shows a figure once and a long batch run keeps no figures open.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import MaxNLocator

from swin_gao_lib.analysis.arms import Arm, ArmStyles
from swin_gao_lib.records.history import RUNNING_ACCURACY, current_columns

#: Font sizes in points. Saved at :data:`DPI`, 10 pt is 17 px: readable at 100% zoom.
FONT = {"suptitle": 12.5, "title": 11.5, "label": 10.5, "tick": 10.0, "legend": 10.0,
        "note": 9.5}
#: Resolution of the saved PNGs (dots per inch).
DPI = 120
#: The widest figure, in inches (1,380 px at :data:`DPI`).
MAX_WIDTH = 11.5
#: The smallest span of an accuracy axis, in percentage points: a zoomed axis makes a
#: one-seed difference of 1 pp look like a collapse.
MIN_ACCURACY_SPAN = 10.0
#: The smallest span of a zoom panel beside its full 0-100 view (the context is in sight).
ZOOM_MIN_SPAN = 4.0


def new_figure(width: float, height: float) -> Figure:
    """A figure laid out by matplotlib's constrained layout (room for a legend below)."""
    return Figure(figsize=(min(width, MAX_WIDTH), height), layout="constrained")


def style_axes(ax, title: str | None = None, xlabel: str | None = None,
               ylabel: str | None = None, grid: str = "both") -> None:
    """Title, labels, tick labels and grid at the kit's sizes (set here, not from rcParams,
    so a figure drawn later, e.g. by a notebook, looks the same)."""
    if title is not None:
        ax.set_title(title, fontsize=FONT["title"])
    if xlabel is not None:
        ax.set_xlabel(xlabel, fontsize=FONT["label"])
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=FONT["label"])
    ax.tick_params(labelsize=FONT["tick"])
    if grid:
        ax.grid(alpha=0.3, axis=grid)


def legend_below(fig: Figure, handles: Sequence, labels: Sequence[str]) -> None:
    """One legend for the whole figure, below its panels, where it hides nothing."""
    if not handles:
        return
    width_in = fig.get_figwidth()
    longest = max(len(label) for label in labels)
    per_entry = longest * FONT["legend"] * 0.55 / 72 + 0.6  # inches: text + handle
    ncols = max(1, min(len(labels), int(width_in // per_entry)))
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols,
               fontsize=FONT["legend"], frameon=False)


def arm_handle(styles: ArmStyles, arm: Arm, linestyle: str = "-") -> Line2D:
    """A legend entry drawn as the arm is drawn: its colour and marker."""
    s = styles[arm]
    return Line2D([], [], color=s.color, marker=s.marker, linestyle=linestyle, markersize=7)


def accuracy_range(values: np.ndarray, span: float = MIN_ACCURACY_SPAN) -> tuple[float, float]:
    """Axis limits (percent) that hold ``values`` with a margin and span at least ``span`` pp."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 100.0
    lo, hi = values.min(), values.max()
    pad = max(0.1 * (hi - lo), 1.0)
    lo, hi = lo - pad, hi + pad
    if hi - lo < span:
        mid = (lo + hi) / 2
        lo, hi = mid - span / 2, mid + span / 2
    if lo < 0:
        lo, hi = 0.0, hi - lo
    if hi > 100:
        lo, hi = max(lo - (hi - 100), 0.0), 100.0
    return lo, hi


def arm_order(table: pd.DataFrame, key: str = "configuration") -> list[str]:
    """The values of ``key`` in the order of their arms (baseline first), then by name."""
    first = table.drop_duplicates(key)
    return [k for _, k in sorted(zip(first["arm"], first[key]), key=lambda t: (t[0]._rank(), t[1]))]


def training_time(times: pd.DataFrame, styles: ArmStyles) -> Figure:
    """Per-epoch training time (Figs. 3–4) of each configuration (:func:`.report.epoch_times`),
    one panel per data set; under each box the run's training time, or the runs' mean."""
    datasets = list(dict.fromkeys(times["dataset"]))
    fig = new_figure(5.4 * len(datasets), 4.9)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, ds in zip(axes, datasets):
        sub = times[times["dataset"] == ds]
        order = arm_order(sub)
        groups = [sub[sub["configuration"] == c] for c in order]
        ax.boxplot([g["train time (s)"].to_numpy(float) for g in groups],
                   positions=range(len(order)), widths=0.55, showfliers=False, patch_artist=True,
                   boxprops={"facecolor": "#eeeeee", "edgecolor": "0.55"},
                   medianprops={"color": "0.35"}, whiskerprops={"color": "0.55"},
                   capprops={"color": "0.55"})
        jitter = np.random.default_rng(0)  # seeded: the same records give the same figure
        labels, top = [], 0.0
        for i, g in enumerate(groups):
            s = styles[g["arm"].iloc[0]]
            ys = g["train time (s)"].to_numpy(float)
            ax.scatter(i + jitter.uniform(-0.17, 0.17, len(ys)), ys, color=s.color,
                       marker=s.marker, s=26, zorder=3, edgecolors="white", linewidths=0.5)
            top = max(top, np.nanmax(ys) if len(ys) else 0.0)
            runs = g["run"].nunique()
            total = g["train time (s)"].sum()  # records.Run.training_time_s, summed over runs
            time = (f"training {total:.0f} s" if runs == 1
                    else f"training {total / runs:.0f} s per run\n(mean of {runs} runs)")
            labels.append(textwrap.fill(order[i], 24, break_on_hyphens=False) + "\n" + time)
        ax.set_xticks(range(len(order)), labels)
        ax.set_xlim(-0.6, len(order) - 0.4)
        ax.set_ylim(0, top * 1.12 if top > 0 else 1)  # headroom: no dot on the upper edge
        style_axes(ax, f"{ds}: training time per epoch", None, "training time per epoch (s)",
                   grid="y")
    fig.suptitle("Training time per epoch (dots: epochs; compile time excluded)",
                 fontsize=FONT["suptitle"])
    return fig


_SPLITS = (("train", "-", True), ("validation", "--", False))


def accuracy_curves(curves: pd.DataFrame, test_accuracy: Mapping[str, float],
                    styles: ArmStyles,
                    train_accuracy: Mapping[str, float | None] | None = None) -> Figure:
    """Train and validation accuracy per epoch (Figs. 5–6): all epochs on 0-100%, and zoomed.

    ``curves``: :func:`.report.accuracy_curves`; ``test_accuracy`` and
    ``train_accuracy`` (re-scored like test: the star): each run's final
    accuracies (fractions). Per data set: left, every epoch (a box marks the
    zoom); right, the second half on at least :data:`ZOOM_MIN_SPAN` pp. Several
    seeds: means, bands of ± one std. The train curve is the epoch's running
    mean under dropout and augmentation, so it lies below validation.
    """
    train_accuracy = train_accuracy or {}
    datasets = list(dict.fromkeys(curves["dataset"]))
    fig = new_figure(11.0, 3.7 * len(datasets) + 1.3)
    axes = fig.subplots(len(datasets), 2, squeeze=False, width_ratios=[1, 1.5])
    seeds = 1
    for (full, zoom), ds in zip(axes, datasets):
        sub = curves[curves["dataset"] == ds]
        last = int(sub["epoch"].max())
        first = max(1, math.ceil(last / 2))
        shown: list[float] = []
        for conf in arm_order(sub):
            g = sub[sub["configuration"] == conf]
            s = styles[g["arm"].iloc[0]]
            runs = list(g["run"].unique())
            seeds = max(seeds, len(runs))
            for split, ls, filled in _SPLITS:
                stats = (100 * g[g["split"] == split].groupby("epoch")["accuracy"]
                         .agg(["mean", "std"])).fillna({"std": 0.0})
                if stats.empty:
                    continue
                x, y, sd = stats.index.to_numpy(), stats["mean"].to_numpy(), stats["std"].to_numpy()
                for ax in (full, zoom):
                    ax.plot(x, y, linestyle=ls, marker=s.marker, color=s.color, markersize=5.5,
                            markerfacecolor=s.color if filled else "white", linewidth=1.6)
                    if len(runs) > 1:
                        ax.fill_between(x, y - sd, y + sd, color=s.color, alpha=0.12, linewidth=0)
                late = x >= first
                shown += list(y[late] - sd[late]) + list(y[late] + sd[late])
            tests = [100 * test_accuracy[r] for r in runs if r in test_accuracy]
            if tests:
                for ax in (full, zoom):
                    ax.axhline(float(np.mean(tests)), color=s.color, linestyle=":", linewidth=1.6)
                shown.append(float(np.mean(tests)))
            rescored = [100 * train_accuracy[r] for r in runs
                        if r in train_accuracy and train_accuracy[r] is not None]
            if rescored:  # what the paper's figures compare: train and test scored alike
                for ax in (full, zoom):
                    ax.plot([last], [float(np.mean(rescored))], marker="*", markersize=13,
                            color=s.color, markeredgecolor="black", linestyle="none", zorder=6)
                shown.append(float(np.mean(rescored)))
        lo, hi = accuracy_range(np.array(shown), span=ZOOM_MIN_SPAN)
        full.set_ylim(0, 100)
        full.set_xlim(0.5, last + 0.5)
        full.add_patch(Rectangle((first - 0.35, lo), last - first + 0.7, hi - lo, fill=False,
                                 edgecolor="0.35", linestyle="--", linewidth=0.9, zorder=5))
        zoom.set_ylim(lo, hi)
        zoom.set_xlim(first - 0.35, last + 0.35)
        for ax in (full, zoom):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        style_axes(full, f"{ds}: all epochs, 0–100%", "epoch", "accuracy (%)")
        style_axes(zoom, f"{ds}: epochs {first}–{last}, zoomed (the box on the left)", "epoch",
                   "accuracy (%)")
    configs = curves.drop_duplicates("configuration")
    order = arm_order(configs)
    arms = dict(zip(configs["configuration"], configs["arm"]))
    handles = [arm_handle(styles, arms[c]) for c in order]
    labels = list(order)
    grey = {"color": "0.4", "markersize": 6}
    handles += [Line2D([], [], linestyle="-", marker="o", **grey),
                Line2D([], [], linestyle="--", marker="o", markerfacecolor="white", **grey),
                Line2D([], [], linestyle=":", linewidth=1.6, color="0.4")]
    labels += ["train, running mean during the epoch, dropout on (solid, filled)",
               "validation, held out from train (dashed, open)",
               "test accuracy at the end (dotted)"]
    if train_accuracy:
        handles.append(Line2D([], [], marker="*", markersize=11, color="0.4",
                              markeredgecolor="black", linestyle="none"))
        labels.append("train accuracy at the end, re-scored like test (star)")
    if seeds > 1:
        handles.append(Patch(color="0.4", alpha=0.25))
        labels.append("mean over seeds ± one std (band)")
    legend_below(fig, handles, labels)
    fig.suptitle("Train vs held-out accuracy per epoch", fontsize=FONT["suptitle"])
    return fig


def run_curves(history: pd.DataFrame, test_accuracy: float | None = None,
               title: str = "") -> Figure:
    """Accuracy and loss per epoch of one run: train vs validation."""
    fig = new_figure(10.5, 4.4)
    acc_ax, loss_ax = fig.subplots(1, 2)
    colors = {"train": "#c0504d", "validation": "#1f4e79"}
    accuracies: list[float] = []
    history = current_columns(history)
    for ax, train, held_out, k in ((acc_ax, RUNNING_ACCURACY, "val_accuracy", 100.0),
                                   (loss_ax, "loss", "val_loss", 1.0)):
        ax.plot(history["epoch"], k * history[train], marker="o", color=colors["train"])
        if ax is acc_ax:
            accuracies += list(k * history[train])
        if held_out in history and history[held_out].notna().any():
            ax.plot(history["epoch"], k * history[held_out], marker="o",
                    color=colors["validation"])
            if ax is acc_ax:
                accuracies += list(k * history[held_out])
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if test_accuracy is not None:
        acc_ax.axhline(100 * test_accuracy, color="black", linestyle="--", linewidth=1)
        accuracies.append(100 * test_accuracy)
    acc_ax.set_ylim(*accuracy_range(np.array(accuracies)))
    style_axes(acc_ax, "accuracy per epoch", "epoch", "accuracy (%)")
    style_axes(loss_ax, "loss per epoch (label-smoothed cross-entropy)", "epoch", "loss")
    handles = [Line2D([], [], color=colors["train"], marker="o"),
               Line2D([], [], color=colors["validation"], marker="o")]
    # the train curve is the epoch's running mean under dropout and augmentation
    labels = ["train (running mean over the epoch)", "validation"]
    if test_accuracy is not None:
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1))
        labels.append("test (final)")
    legend_below(fig, handles, labels)
    if title:
        fig.suptitle(title, fontsize=FONT["suptitle"])
    return fig


def save(fig: Figure, stem: str | Path) -> list[Path]:
    """Save ``fig`` as ``stem.png`` and ``stem.svg``; return the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "svg"):
        path = stem.with_suffix(f".{ext}")
        tmp = path.with_name(f".{path.name}.tmp")
        # No creation date in the files: the same records give byte-identical figures.
        meta = {"Date": None} if ext == "svg" else {}
        with matplotlib.rc_context({"svg.hashsalt": "swin-gao"}):  # stable SVG ids
            fig.savefig(tmp, format=ext, dpi=DPI, bbox_inches="tight", metadata=meta)
        tmp.replace(path)  # atomic, like every other record
        paths.append(path)
    return paths
