"""Figures of a suite, drawn from the tidy tables of :mod:`report`.

* :func:`training_time` — the paper's Figs. 3–4: training time, baseline vs
  GAO, one panel per data set; each box and its dots are the per-epoch
  training times (compile time excluded), so the spread is visible.
Accuracy is drawn in percent everywhere, as the tables print it.

* :func:`accuracy_curves` — Figs. 5–6: train vs held-out accuracy per epoch,
  one row per data set, one column per variant (baseline beside GAO), with the
  final test accuracy as a dashed line.

Study figures, drawn from :mod:`study`'s tables (mean ± std over seeds):
:func:`accuracy_vs_updates`, :func:`metric_vs_n` (accuracy, train–test gap,
time per image and memory against N, per family) and :func:`differences` (each
configuration minus its baseline, with its 95% confidence interval).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter, ScalarFormatter

from swin_gao_lib.config.labels import BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES, PLAIN_BATCH

# Figures are built with the object-oriented API, not pyplot: nothing is kept
# in pyplot's global state, so a notebook shows a figure exactly once (when it
# is the cell's value) and a long batch run does not accumulate open figures.


def _subplots(nrows: int, ncols: int, figsize, **kw):
    fig = Figure(figsize=figsize)
    axes = fig.subplots(nrows, ncols, squeeze=False, **kw)
    return fig, axes


def _variant_order(variants) -> list[str]:
    return sorted(set(variants), key=lambda v: (v != BASELINE, v))


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
            # the run's training time (records.Run.training_time_s), as the summary table has it
            ax.annotate(f"training {total:.0f} s", (i, 1.0), xycoords=("data", "axes fraction"),
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
                ax.plot(line["epoch"], 100 * line["accuracy"], marker="o", color=colors[split],
                        label=f"{split}")
            for run in sub["run"].unique():
                if run in test_accuracy:
                    ax.axhline(100 * test_accuracy[run], color="black", linestyle="--",
                               linewidth=1, label="test (final)")
            ax.set_title(f"{ds}: {variant}")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch")
            ax.set_ylabel("accuracy (%)")
            ax.set_ylim(0, 100)
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
    for ax, metric, label, k in ((acc_ax, "accuracy", "accuracy (%)", 100.0),
                                 (loss_ax, "loss", "loss", 1.0)):
        ax.plot(history["epoch"], k * history[metric], marker="o", color="#c0504d", label="train")
        if f"val_{metric}" in history and history[f"val_{metric}"].notna().any():
            ax.plot(history["epoch"], k * history[f"val_{metric}"], marker="o", color="#1f4e79",
                    label="validation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if test_accuracy is not None:
        acc_ax.axhline(100 * test_accuracy, color="black", linestyle="--", linewidth=1,
                       label="test (final)")
    acc_ax.set_ylim(0, 100)
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


# ---------------------------------------------------------------- study figures
_FAMILY_COLORS = {BASELINE: "black", EQUAL_BATCH: "#1f77b4", EQUAL_MICRO: "#d62728",
                  EQUAL_UPDATES: "#2ca02c", PLAIN_BATCH: "#ff7f0e",
                  "no accumulation": "#7f7f7f", "other": "#9467bd"}
_LR_SCALING_STYLES = {"none": "-", "sqrt": "--", "linear": ":"}


#: The smallest span of an accuracy axis, in percentage points: a zoomed axis makes a
#: one-seed difference of 1 pp look like a collapse.
MIN_ACCURACY_SPAN = 10.0


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


def accuracy_vs_updates(configs: pd.DataFrame) -> Figure:
    """Test accuracy (mean +- std over seeds) against the number of optimizer updates.

    The legend sits below the panels, where it hides no point; configurations
    with the same number of updates are drawn a little apart; the accuracy
    axis spans at least :data:`MIN_ACCURACY_SPAN` points. With one seed per
    configuration there is no spread to draw, and the axis label says so.
    """
    datasets = list(dict.fromkeys(configs["dataset"]))
    fig, axes = _subplots(1, len(datasets), (5.8 * len(datasets), 4.8))
    markers = dict(zip(dict.fromkeys(configs["optimizer"]), "osD^v"))
    one_seed = "seeds" in configs and (configs["seeds"] <= 1).all()
    for ax, ds in zip(axes[0], datasets):
        sub = configs[configs["dataset"] == ds]
        ys = []
        groups = list(sub.groupby(["family", "training"], sort=False))
        for k, ((family, training), g) in enumerate(groups):
            # same-update points side by side (a few percent apart on the log axis)
            shift = 1 + 0.04 * (k - (len(groups) - 1) / 2)
            y = 100 * g["test_accuracy_mean"].to_numpy(float)
            err = 100 * g["test_accuracy_std"].fillna(0).to_numpy(float)
            ys += [y - err, y + err]
            ax.errorbar(g["optimizer_updates_mean"].to_numpy(float) * shift, y,
                        yerr=None if one_seed else err, fmt=markers[g["optimizer"].iloc[0]],
                        color=_FAMILY_COLORS.get(family, "#9467bd"), capsize=3, alpha=0.85,
                        label=f"{family} ({training})")
        ax.set_ylim(*accuracy_range(np.concatenate(ys) if ys else np.array([])))
        ax.set_xscale("log")
        updates = sub["optimizer_updates_mean"].dropna()
        if len(updates):  # room around the points: a lone update count would fill the axis
            ax.set_xlim(updates.min() / 1.6, updates.max() * 1.6)
        ticks: list[int] = []
        for u in sorted({int(round(u)) for u in sub["optimizer_updates_mean"].dropna()}, reverse=True):
            if not ticks or u < 0.85 * ticks[-1]:  # keep labels apart on the log axis
                ticks.append(u)
        ax.set_xticks(sorted(ticks))
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("optimizer updates in the run (log scale)")
        ax.set_ylabel("test accuracy (%), one seed per configuration" if one_seed
                      else "test accuracy (%), mean ± std over seeds")
        ax.set_title(f"{ds}: accuracy vs number of updates")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=2,
                  frameon=False)
    fig.tight_layout()
    return fig


def metric_vs_n(sweeps: dict[str, pd.DataFrame], ylabels: dict[str, str], title: str,
                scale: dict[str, float] | None = None) -> Figure:
    """One row per metric, one column per data set: mean +- std against N for each series.

    ``sweeps`` maps a metric to its :func:`swin_gao_lib.analysis.study.n_sweep` table.
    """
    scale = scale or {}
    metrics = [m for m, t in sweeps.items() if not t.empty]
    datasets = list(dict.fromkeys(pd.concat([sweeps[m] for m in metrics])["dataset"]))
    fig, axes = _subplots(len(metrics), len(datasets), (6.2 * len(datasets), 3.9 * len(metrics)))
    for i, metric in enumerate(metrics):
        k = scale.get(metric, 1.0)
        for j, ds in enumerate(datasets):
            ax = axes[i][j]
            sub = sweeps[metric][sweeps[metric]["dataset"] == ds]
            for name, g in sub.groupby("series", sort=False):
                first = g.iloc[0]
                ax.errorbar(g["N"].to_numpy(float), k * g["mean"].to_numpy(float),
                            yerr=k * g["std"].fillna(0).to_numpy(float),
                            marker="s" if first["optimizer"] == "sgd" else "o",
                            linestyle=_LR_SCALING_STYLES[first["lr_scaling"]],
                            color=_FAMILY_COLORS[first["family"]], capsize=3, label=name)
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(sub["N"].unique()) or [1])
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel("N (micro-batches per update)")
            ax.set_ylabel(ylabels[metric])
            ax.set_title(f"{ds}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(title, y=1.01)
    fig.tight_layout()
    return fig


def differences(comp: pd.DataFrame, metric: str = "test_accuracy", scale: float = 100.0,
                xlabel: str = "difference from the baseline (percentage points)") -> Figure:
    """Forest plot: each configuration's difference from its baseline, with its 95% CI.

    The colour is the comparison's decision (:mod:`study`: after Holm's
    correction, against the metric's margin, drawn as dotted lines): red
    lower, green higher, blue equivalent, grey inconclusive or not judged.
    """
    sub = comp[comp["metric"] == metric]
    datasets = list(dict.fromkeys(sub["dataset"]))
    tested = bool(len(sub)) and (sub["test"] != "none").any()
    height = max(3.0, 0.32 * sub.groupby("dataset").size().max() + 1.2) if len(sub) else 3.0
    fig, axes = _subplots(1, max(len(datasets), 1), (6.8 * max(len(datasets), 1), height))
    colors = {"higher": "#2ca02c", "lower": "#d62728", "equivalent": "#1f77b4"}
    for ax, ds in zip(axes[0], datasets):
        g = sub[sub["dataset"] == ds].reset_index(drop=True)
        y = np.arange(len(g))[::-1]
        margin = g["margin"].max() if "margin" in g else np.nan
        if margin > 0:
            for side in (-1, 1):
                ax.axvline(side * scale * margin, color="#1f77b4", lw=1, ls=":")
        for yi, (_, r) in zip(y, g.iterrows()):
            c = colors.get(r.get("decision"), "#7f7f7f")
            if r["test"] != "none":
                ax.plot([scale * r["ci_low"], scale * r["ci_high"]], [yi, yi], color=c, lw=2)
            ax.plot(scale * r["difference"], yi, "o", color=c)
        ax.axvline(0, color="black", lw=1)
        ax.set_yticks(y, g["label"], fontsize=8)
        ax.set_xlabel(xlabel)
        # promise only what the data can give: one seed per configuration has no CI
        # and no decision, so its points are grey and the title says why
        ax.set_title(f"{ds}: {metric.replace('_', ' ')} vs baseline\n" + (
            "(bars: 95% CI over seeds; red/green: lower/higher after Holm,\n"
            "blue: equivalent within the dotted margin, grey: inconclusive)" if tested else
            "(one seed per configuration: no confidence interval and no decision;\n"
            "dotted: the margin a decision would use)"), fontsize=10)
        ax.grid(alpha=0.3, axis="x")
    fig.tight_layout()
    return fig


#: float32's machine epsilon (2**-23): the relative resolution of one float32 number.
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def loss_tracking(track: pd.DataFrame) -> Figure:
    """Equal-effective-batch accumulation (in-step, mean) against its baseline's loss curve.

    ``track`` is :func:`swin_gao_lib.analysis.study.loss_tracking`. One row per data set:
    left, the training loss per epoch of the baseline (black, dashed) and of each
    N, for the first seed they share; right, ``|loss_N - loss_1| / loss_1`` per
    epoch on a log scale, every shared seed one thin line, with float32's
    machine epsilon dotted for scale. Coinciding curves (the deterministic arm)
    sit a few epsilons up; with dropout the runs part like different seeds.
    """
    datasets = list(dict.fromkeys(track["dataset"]))
    fig, axes = _subplots(len(datasets), 2, (12.0, 3.9 * len(datasets)))
    palette = dict(zip(sorted(track["N"].unique()), sns.color_palette("viridis", track["N"].nunique())))
    for i, ds in enumerate(datasets):
        sub = track[track["dataset"] == ds]
        seed = sub["seed"].min()
        left, right = axes[i][0], axes[i][1]
        first = sub[sub["seed"] == seed]
        for n, g in first.groupby("N"):
            if n == first["N"].min():
                left.plot(g["epoch"], g["baseline_loss"], "k--", lw=2.5, label="baseline (N=1)")
            left.plot(g["epoch"], g["loss"], marker="o", ms=3, lw=1, color=palette[n],
                      label=f"N={n}")
        left.set_xlabel("epoch")
        left.set_ylabel("training loss")
        left.set_title(f"{ds}: loss per epoch, seed {seed}")
        left.legend(fontsize=8)
        left.grid(alpha=0.3)
        for (n, s), g in sub.groupby(["N", "seed"]):
            # a difference of exactly 0 has no place on a log axis: drawn at eps/10
            y = g["relative_difference"].clip(lower=FLOAT32_EPS / 10)
            right.plot(g["epoch"], y, lw=1, alpha=0.8, color=palette[n],
                       label=f"N={n}" if s == seed else None)
        right.axhline(FLOAT32_EPS, color="grey", ls=":", lw=1, label="float32 epsilon")
        right.set_yscale("log")
        right.set_xlabel("epoch")
        right.set_ylabel("|loss_N - loss_1| / loss_1")
        right.set_title(f"{ds}: relative difference from the baseline "
                        f"({sub['seed'].nunique()} seed{'s' if sub['seed'].nunique() > 1 else ''})")
        right.legend(fontsize=8)
        right.grid(alpha=0.3, which="both")
    fig.suptitle("Equal effective batch, in-step mean: N micro-batches vs one batch", y=1.01)
    fig.tight_layout()
    return fig
