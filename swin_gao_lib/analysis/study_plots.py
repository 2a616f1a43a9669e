"""The study's figures (mean ± std over seeds): accuracy vs updates, metrics vs N, differences.

Arms keep the report's colours and markers (:class:`~swin_gao_lib.analysis.arms.ArmStyles`).
"""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, NullLocator
from matplotlib.transforms import blended_transform_factory

from swin_gao_lib.analysis.arms import Arm, ArmStyles, arm_of
from swin_gao_lib.analysis.plots import (FONT, accuracy_range, arm_handle, legend_below,
                                         new_figure, style_axes)
from swin_gao_lib.analysis import study
from swin_gao_lib.config.labels import BASELINE


def _counts(sub: pd.DataFrame) -> list[int]:
    return sorted({int(round(u)) for u in sub["optimizer_updates_mean"].dropna()})


def updates_note(configs: pd.DataFrame) -> str | None:
    """The sentence that stands in for accuracy vs updates when every configuration of each
    data set made the same number of updates (None: the figure is drawn)."""
    counts = {ds: _counts(g) for ds, g in configs.groupby("dataset", sort=False)}
    if any(len(c) >= 2 for c in counts.values()):
        return None
    where = "; ".join(f"{ds}: {c[0]:,}" for ds, c in counts.items() if c)
    return ("Accuracy against the number of optimizer updates is not drawn: every configuration "
            f"made the same number of updates ({where}), so the figure would be one column of "
            "points; the configurations table has their accuracies.")


def _name_arms(configs: pd.DataFrame) -> dict[Arm, str]:
    """One legend name per arm: its configuration's label when it is one, else the arm's."""
    names = {}
    for arm, g in configs.groupby("arm", sort=False):
        labels = g["label"].unique()
        names[arm] = labels[0] if len(labels) == 1 else arm.label
    return names


def _with_arms(table: pd.DataFrame) -> pd.DataFrame:
    table = table.copy()
    table["arm"] = [arm_of(r) for _, r in table.iterrows()]
    return table


def _dodge(k: int, width: float = 0.4) -> np.ndarray:
    """Offsets of k points side by side around a tick: within +-width/2 (+-0.2 of a column)."""
    return np.linspace(-width / 2, width / 2, k) if k > 1 else np.zeros(1)


def accuracy_vs_updates(configs: pd.DataFrame, styles: ArmStyles) -> Figure | None:
    """Test accuracy (mean +- std over seeds) against the number of optimizer updates: a panel
    per data set with at least two update counts (None: none has), a column per count, an N
    sweep's points labelled with N, collapsed configurations on a strip at the floor."""
    configs = _with_arms(configs)
    panels = [ds for ds in dict.fromkeys(configs["dataset"])
              if len(_counts(configs[configs["dataset"] == ds])) >= 2]
    if not panels:
        return None
    one_seed = "seeds" in configs and (configs["seeds"] <= 1).all()
    shown = configs[configs["dataset"].isin(panels)]
    names = _name_arms(shown)
    wide = 11.0 if len(names) > 6 else 9.0  # room for a legend of two columns
    fig = new_figure(max(wide, 5.6 * len(panels) + 0.4), 5.0 + 0.2 * len(names))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, ds in zip(axes, panels):
        sub = shown[shown["dataset"] == ds]
        counts = _counts(sub)
        several = {a for a, g in sub.groupby("arm") if len(g) > 1}
        ys: list[float] = []
        at_chance: list[tuple[float, pd.Series]] = []
        for col, count in enumerate(counts):
            members = sub[sub["optimizer_updates_mean"].round() == count]
            members = members.assign(_r=[a._rank() for a in members["arm"]]).sort_values(["_r", "N"])
            for dx, (_, r), low in zip(_dodge(len(members)), members.iterrows(),
                                       study.at_chance(members)):
                if low:  # drawn on the axis' floor below, not on a 0-100% axis
                    at_chance.append((col + dx, r))
                    continue
                s = styles[r["arm"]]
                y = 100 * float(r["test_accuracy_mean"])
                err = 0.0 if pd.isna(r["test_accuracy_std"]) else 100 * float(r["test_accuracy_std"])
                ax.errorbar(col + dx, y, yerr=None if one_seed else err, fmt=s.marker,
                            color=s.color, capsize=3, markersize=7)
                ys += [y - err, y + err]
                if r["arm"] in several:
                    ax.annotate(f"N={r['N']}", (col + dx, y), xytext=(6, 0),
                                textcoords="offset points", fontsize=FONT["note"], va="center")
        lo, hi = accuracy_range(np.array(ys)) if ys else (0.0, 100.0)
        if at_chance and ys:
            # collapsed arms at chance would stretch the axis to 0-100% and squash every
            # learning arm into one line: they sit on a strip at the floor, value written
            lo = lo - 0.12 * (hi - lo)
            ax.axhspan(lo, lo + 0.08 * (hi - lo), color="0.92", zorder=0, linewidth=0)
            ax.text(0.01, lo + 0.04 * (hi - lo), "collapsed (at chance):", fontsize=FONT["note"],
                    va="center", transform=blended_transform_factory(ax.transAxes, ax.transData))
        for x, r in at_chance:
            s = styles[r["arm"]]
            y = lo + 0.04 * (hi - lo) if ys else 100 * float(r["test_accuracy_mean"])
            ax.plot(x, y, marker=s.marker, color=s.color, markersize=7, linestyle="none",
                    clip_on=False, zorder=4)
            ax.annotate(f"{100 * float(r['test_accuracy_mean']):.1f}%", (x, y),
                        xytext=(6, 0), textcoords="offset points", fontsize=FONT["note"],
                        va="center")
        for col in range(len(counts) - 1):
            ax.axvline(col + 0.5, color="0.8", linewidth=0.8)
        ax.set_xticks(range(len(counts)), [f"{c:,}" for c in counts])
        ax.set_xlim(-0.5, len(counts) - 0.5)
        ax.set_ylim(lo, hi)
        style_axes(ax, f"{ds}: accuracy vs number of updates",
                   "optimizer updates in the run (one column per count)",
                   "test accuracy (%), one seed per configuration" if one_seed
                   else "test accuracy (%), mean ± std over seeds", grid="y")
    order = sorted(names, key=Arm._rank)
    legend_below(fig, [arm_handle(styles, a, "none") for a in order], [names[a] for a in order])
    skipped = [ds for ds in dict.fromkeys(configs["dataset"]) if ds not in panels]
    title = "Test accuracy vs the number of optimizer updates"
    if skipped:
        title += "\n(" + "; ".join(
            f"not drawn for {ds}: every configuration made "
            f"{_counts(configs[configs['dataset'] == ds])[0]:,} updates" for ds in skipped) + ")"
    fig.suptitle(title, fontsize=FONT["suptitle"])
    return fig


def metric_vs_n(sweeps: dict[str, pd.DataFrame], ylabels: dict[str, str], title: str,
                styles: ArmStyles, scale: dict[str, float] | None = None) -> Figure:
    """One row per metric (``sweeps``: each metric's :func:`.study.n_sweep`), one column per
    data set: mean +- std against N, one line per arm from its baseline (N = 1)."""
    scale = scale or {}
    metrics = [m for m, t in sweeps.items() if not t.empty]
    datasets = list(dict.fromkeys(pd.concat([sweeps[m] for m in metrics])["dataset"]))
    fig = new_figure(5.6 * len(datasets) + 0.4, 3.9 * len(metrics) + 1.4)
    axes = fig.subplots(len(metrics), len(datasets), squeeze=False)
    legend: dict[Arm, str] = {}
    for i, metric in enumerate(metrics):
        k = scale.get(metric, 1.0)
        for j, ds in enumerate(datasets):
            ax = axes[i][j]
            sub = sweeps[metric][sweeps[metric]["dataset"] == ds]
            ns = sorted(sub["N"].unique())
            col = {n: c for c, n in enumerate(ns)}
            lines = []
            for _, g in sub.groupby("series", sort=False):
                first = g.iloc[0]
                arm = Arm(first["family"], first["training"], "in_step",
                          first.get("reduction", "mean"), first["lr_scaling"])
                lines.append((Arm(BASELINE, first["training"]), arm, g.sort_values("N")))
            # the points of one N side by side, in arm order; a lone point stays on its N
            column: dict[int, set[Arm]] = {}
            for base, arm, g in lines:
                for n in g["N"]:
                    column.setdefault(n, set()).add(base if n == 1 else arm)
            offset = {(n, a): dx for n, arms in column.items()
                      for a, dx in zip(sorted(arms, key=Arm._rank), _dodge(len(arms)))}
            ys: list[float] = []
            for base, arm, g in lines:
                s, sb = styles[arm], styles[base]
                x = [col[n] + offset[(n, base if n == 1 else arm)] for n in g["N"]]
                y, sd = k * g["mean"].to_numpy(float), k * g["std"].fillna(0).to_numpy(float)
                ax.plot(x, y, color=s.color, linewidth=1.4, zorder=2)
                for xi, yi, si, n in zip(x, y, sd, g["N"]):
                    st = sb if n == 1 else s
                    ax.errorbar(xi, yi, yerr=si, fmt=st.marker, color=st.color, capsize=3,
                                markersize=6.5, zorder=3)
                ys += list(y - sd) + list(y + sd)
                legend.setdefault(base, base.label)
                legend.setdefault(arm, arm.label)
            ax.set_xticks(range(len(ns)), [str(n) for n in ns])
            ax.set_xlim(-0.5, len(ns) - 0.5)
            if metric == "test_accuracy":
                ax.set_ylim(*accuracy_range(np.array(ys)))
            else:
                ax.margins(y=0.12)
            style_axes(ax, ds, "N (micro-batches per update)", ylabels[metric], grid="y")
    order = sorted(legend, key=Arm._rank)
    legend_below(fig, [arm_handle(styles, a) for a in order], [legend[a] for a in order])
    fig.suptitle(title, fontsize=FONT["suptitle"])
    return fig


#: The colour of each decision of a comparison (:mod:`study`); others grey.
DECISION_COLORS = {"lower": "#d62728", "higher": "#2ca02c", "equivalent": "#1f77b4"}
_GREY = "#7f7f7f"


def _number(value: float) -> str:
    # two decimals near the margin, where -1.97 and -2 differ; one where the scale is tens
    return f"{value:+.2f}" if abs(value) < 10 else f"{value:+.1f}"


def _value_text(r: pd.Series, scale: float, tested: bool, same_row: int | None = None) -> str:
    text = _number(scale * r["difference"])
    if tested and r["test"] != "none":
        text += (f" [{_number(scale * r['ci_low'])}, {_number(scale * r['ci_high'])}] "
                 f"{r['decision']}")
        size = r.get("family_size")
        if size == size and size is not None:
            # the reason two rows with the same numbers can differ: Holm's family size
            text += f"\nHolm over {size:.0f}"
        if same_row is not None:  # an identity: one result shown twice (comparisons.py)
            text += f", the values of row {same_row}"
    return text


def _row_label(r: pd.Series) -> str:
    """The paper's comparison under one name in every figure: its arm's, marked as the paper's."""
    if r.get("role") == "primary" and isinstance(r.get("arm_label"), str):
        return f"the paper's GAO: {r['arm_label']}"
    return r["label"]


def differences(comp: pd.DataFrame, metric: str = "test_accuracy", scale: float = 100.0,
                xlabel: str = "difference from the baseline (percentage points)") -> Figure:
    """Forest plot: each comparison's difference with its 95% CI, one panel per data set; the
    colour is its decision (red lower, green higher, blue equivalent, grey otherwise), the
    band its margin, the numbers written at the right."""
    sub = comp[comp["metric"] == metric]
    datasets = list(dict.fromkeys(sub["dataset"])) or [""]
    tested = bool(len(sub)) and (sub["test"] != "none").any()
    rows = [max(int((sub["dataset"] == ds).sum()), 1) for ds in datasets]
    fig = new_figure(11.0, sum(0.62 * n + 1.25 for n in rows) + 0.8)
    axes = fig.subplots(len(datasets), 1, squeeze=False, height_ratios=[n + 2.5 for n in rows])
    decisions: dict[str, str] = {}
    symlog: list[float] = []
    panel_margins: dict[str, float] = {}
    for ax, ds in zip(axes[:, 0], datasets):
        g = sub[sub["dataset"] == ds].reset_index(drop=True)
        # each data set's own margin; none where nothing was tested (one seed): a point beside
        # a margin line reads as a decision
        margin = (float(g["margin"].max()) if tested and "margin" in g and g["margin"].notna().any()
                  else 0.0)
        if margin > 0:
            panel_margins[ds] = margin
        y = np.arange(len(g))[::-1]
        row_of = {label: i for i, label in enumerate(g["label"], 1)}  # counted from the top
        if margin > 0:
            m = scale * margin
            ax.axvspan(-m, m, color="#1f77b4", alpha=0.08, linewidth=0, zorder=0)
            for side in (-1, 1):  # over the points: a point on the margin does not hide it
                ax.axvline(side * m, color="#1f77b4", linewidth=1.3, linestyle="--", zorder=4)
        ax.axvline(0, color="black", linewidth=1, zorder=1)
        right = blended_transform_factory(ax.transAxes, ax.transData)
        xs = [0.0, 1.4 * scale * margin, -1.4 * scale * margin]
        for yi, (_, r) in zip(y, g.iterrows()):
            decision = r.get("decision") if tested else None
            c = DECISION_COLORS.get(decision, _GREY)
            if tested:
                decisions[decision] = c
            if r["test"] != "none":
                ax.plot([scale * r["ci_low"], scale * r["ci_high"]], [yi, yi], color=c,
                        linewidth=2.2, zorder=2)
                xs += [scale * r["ci_low"], scale * r["ci_high"]]
            ax.plot(scale * r["difference"], yi, "o", color=c, markersize=7,
                    markeredgecolor="white", zorder=3)
            xs.append(scale * r["difference"])
            ax.text(1.02, yi, _value_text(r, scale, tested, row_of.get(r.get("same_values_as"))),
                    transform=right, va="center", fontsize=FONT["note"])
        lo, hi = np.nanmin(xs), np.nanmax(xs)
        pad = 0.06 * (hi - lo) if hi > lo else 1.0
        ax.set_xlim(lo - pad, hi + pad)
        m = scale * margin
        if m > 0 and max(-lo, hi) > 10 * m:
            # differences of tens of points beside ones near the margin: linear within
            # +-2 margins, where the decisions are made, logarithmic beyond
            ax.set_xscale("symlog", linthresh=2 * m, linscale=1.0)
            ticks = [m] + [10.0 ** k for k in range(6) if 10.0 ** k > 4 * m]
            ticks = sorted({0.0, *ticks, *[-t for t in ticks]})
            # a point beyond the last tick would sit on the axis' edge with no value under
            # it: the axis reaches the next decade (-87 pp is drawn against a -100 tick)
            left = min(lo - pad, max([t for t in ticks if t <= lo] or [lo - pad]))
            right = max(hi + pad, min([t for t in ticks if t >= hi] or [hi + pad]))
            ax.set_xlim(left, right)
            ax.set_xticks([t for t in ticks if left <= t <= right])
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
            symlog.append(2 * m)
        ax.set_ylim(-0.7, len(g) - 0.3)
        # two lines each: on one, the study's long labels squeezed the axis to a sliver
        ax.set_yticks(y, [textwrap.fill(_row_label(r), 42, break_on_hyphens=False)
                       for _, r in g.iterrows()])
        note = ("bars: 95% CI over seeds; colour: the decision after Holm, see the legend" if tested else
                "one seed per configuration: no confidence interval and no decision")
        label = xlabel + (f"; linear within ±{symlog[-1]:g}, logarithmic beyond"
                          if symlog and ax.get_xscale() == "symlog" else "")
        partner = ("the baseline" if "partner" not in g or (g["partner"] == "baseline").all()
                   else 'its partner: the baseline, or what the row names after "vs"')
        style_axes(ax, f"{ds}: {metric.replace('_', ' ')} minus {partner}\n({note})",
                   label, None, grid="x")
    handles, labels = [], []
    for decision, c in decisions.items():
        handles.append(Line2D([], [], color=c, marker="o", linewidth=2.2))
        labels.append(decision)
    if panel_margins:
        unit = " pp" if "percentage" in xlabel else ""
        handles.append(Patch(facecolor="#1f77b4", alpha=0.25, edgecolor="#1f77b4", linestyle="--"))
        if len(set(panel_margins.values())) == 1:
            labels.append(f"equivalence margin ±{scale * next(iter(panel_margins.values())):g}{unit}")
        else:
            labels.append("equivalence margin: " + ", ".join(
                f"{ds} ±{scale * m:g}{unit}" for ds, m in panel_margins.items()))
    legend_below(fig, handles, labels)
    return fig
