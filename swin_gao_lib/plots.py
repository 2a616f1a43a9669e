"""Figures of a suite, drawn from the tidy tables of :mod:`report`.

* :func:`training_time` — the paper's Figs. 3–4: training time, baseline vs
  GAO, one panel per data set; each box and its dots are the per-epoch
  training times (compile time excluded), so the spread is visible.
* :func:`accuracy_curves` — Figs. 5–6: train vs held-out accuracy per epoch,
  one row per data set, one column per variant (baseline beside GAO), with the
  final test accuracy as a dashed line.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

# Figures are built with the object-oriented API, not pyplot: nothing is kept
# in pyplot's global state, so a notebook shows a figure exactly once (when it
# is the cell's value) and a long batch run does not accumulate open figures.


def _subplots(nrows: int, ncols: int, figsize, **kw):
    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _variant_order(variants) -> list[str]:
    return sorted(set(variants), key=lambda v: (v != "baseline", v))


def training_time(times: pd.DataFrame) -> Figure:
    """Per-epoch training time by variant, one panel per data set."""
    datasets = list(dict.fromkeys(times["dataset"]))
    fig, axes = _subplots(1, len(datasets), (5.5 * len(datasets), 4.2))
    for ax, ds in zip(axes[0], datasets):
        sub = times[times["dataset"] == ds]
        order = _variant_order(sub["variant"])
        sns.boxplot(data=sub, x="variant", y="train time (s)", order=order, ax=ax,
                    color="#dbe6f3", showfliers=False)
        # Dots with a seeded jitter, so the same records give the same figure.
        jitter = np.random.default_rng(0)
        for i, v in enumerate(order):
            ys = sub.loc[sub["variant"] == v, "train time (s)"].to_numpy()
            ax.scatter(i + jitter.uniform(-0.15, 0.15, len(ys)), ys, color="#1f4e79", s=25, zorder=3)
        for i, v in enumerate(order):
            total = sub.loc[sub["variant"] == v, "train time (s)"].sum()
            ax.annotate(f"total {total:.0f} s", (i, 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="bottom", fontsize=9)
        ax.set_title(f"{ds}: training time per epoch", pad=18)
        ax.set_xlabel("")
        ax.set_ylabel("training time per epoch (s)")
        ax.set_ylim(bottom=0)
        ax.tick_params(axis="x", labelrotation=10)
    fig.suptitle("Training time, baseline vs gradient accumulation (dots: epochs)", y=1.02)
    fig.tight_layout()
    return fig


def accuracy_curves(curves: pd.DataFrame, test_accuracy: dict[str, float]) -> Figure:
    """Train vs validation accuracy per epoch, data sets by row, variants by column."""
    datasets = list(dict.fromkeys(curves["dataset"]))
    variants = _variant_order(curves["variant"])
    fig, axes = _subplots(len(datasets), len(variants), (4.8 * len(variants), 3.6 * len(datasets)),
                          sharey=True)
    colors = {"train": "#c0504d", "validation": "#1f4e79"}
    for i, ds in enumerate(datasets):
        for j, variant in enumerate(variants):
            ax = axes[i][j]
            sub = curves[(curves["dataset"] == ds) & (curves["variant"] == variant)]
            if sub.empty:
                ax.set_visible(False)
                continue
            for (run, split), line in sub.groupby(["run", "split"], sort=False):
                ax.plot(line["epoch"], line["accuracy"], marker="o", color=colors[split],
                        label=f"{split}")
            for run in sub["run"].unique():
                if run in test_accuracy:
                    ax.axhline(test_accuracy[run], color="black", linestyle="--", linewidth=1,
                               label="test (final)")
            ax.set_title(f"{ds}: {variant}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            handles, labels = ax.get_legend_handles_labels()
            unique = dict(zip(labels, handles))
            ax.legend(unique.values(), unique.keys(), loc="upper left", fontsize=8)
    fig.suptitle("Train vs held-out accuracy per epoch (validation split of train; "
                 "dashed: final test accuracy)", y=1.01)
    fig.tight_layout()
    return fig


def run_curves(history: pd.DataFrame, test_accuracy: float | None = None,
               title: str = "") -> Figure:
    """Accuracy and loss per epoch of one run: train vs validation."""
    fig, axes = _subplots(1, 2, (10, 3.8))
    acc_ax, loss_ax = axes[0]
    for ax, metric, label in ((acc_ax, "accuracy", "accuracy"), (loss_ax, "loss", "loss")):
        ax.plot(history["epoch"], history[metric], marker="o", color="#c0504d", label="train")
        if f"val_{metric}" in history and history[f"val_{metric}"].notna().any():
            ax.plot(history["epoch"], history[f"val_{metric}"], marker="o", color="#1f4e79",
                    label="validation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if test_accuracy is not None:
        acc_ax.axhline(test_accuracy, color="black", linestyle="--", linewidth=1,
                       label="test (final)")
    acc_ax.set_ylim(0, 1)
    acc_ax.set_title("accuracy per epoch")
    loss_ax.set_title("loss per epoch (label-smoothed cross-entropy)")
    acc_ax.legend(loc="lower right")
    loss_ax.legend(loc="upper right")
    if title:
        fig.suptitle(title, y=1.02)
    fig.tight_layout()
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
            fig.savefig(tmp, format=ext, dpi=120, bbox_inches="tight", metadata=meta)
        tmp.replace(path)  # atomic, like every other record
        paths.append(path)
    return paths
