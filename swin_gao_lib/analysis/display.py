"""What a person reads in a report: tables in the report's units, and how a notebook shows them.

:class:`Table` shows a DataFrame without pandas' index column (in HTML and in
the plain text nbval compares); :class:`Sentence` shows text as Markdown
instead of a repr; :func:`glossary` explains the columns a table shows.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

from swin_gao_lib.analysis.convergence import SETTLE_EPOCHS
from swin_gao_lib.analysis.study import ACCURACY_METRICS, METRICS


class Table:
    """A DataFrame as a notebook shows it: no index column, empty cells for missing values."""

    def __init__(self, table: pd.DataFrame, digits: int = 4):
        self.table = table.round(digits)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False, na_rep="", border=0)

    def __repr__(self) -> str:
        return self.table.to_string(index=False, na_rep="")


class Sentence:
    """Text a notebook shows as Markdown (and as itself in plain text, not as a repr)."""

    def __init__(self, text: str):
        self.text = text

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def sentence(text: str) -> Sentence:
    """``text`` as a notebook cell's output."""
    return Sentence(text)


def glossary(table: pd.DataFrame, meanings: Mapping[str, str]) -> Sentence:
    """One line per column of ``table`` that ``meanings`` explains, in the table's order."""
    lines = [f"- `{c}`: {meanings[c]}" for c in table.columns if c in meanings]
    return Sentence("\n".join(lines))


#: What each column of the comparisons table means (:func:`comparisons_display`).
COMPARISON_COLUMNS = {
    "label": "the configuration compared",
    "metric": "what is compared",
    "unit": "the unit of the row's numbers (accuracy and the train-test gap in percent, so "
            "differences are percentage points)",
    "baseline_mean": "the partner's mean over its seeds",
    "mean": "the configuration's mean over its seeds",
    "difference": "configuration minus partner",
    "ci_low": "lower end of the difference's 95% confidence interval",
    "ci_high": "upper end of the difference's 95% confidence interval",
    "test": "the t-test used: paired over shared seeds, Welch otherwise, none with one seed",
    "p_value": "the difference test's p-value",
    "p_holm": "that p-value after Holm's correction for the comparisons of the same data set "
              "and metric",
    "margin": "the equivalence margin the decision uses (empty: the metric gets no decision)",
    "tost_p_holm": "the equivalence test's (TOST) p-value after Holm's correction",
    "mde": "the minimum detectable effect: the difference the t-test finds with 80% power",
    "decision": "lower, higher, equivalent, inconclusive, untestable (one seed) or not judged "
                "(no margin)",
    "n": "seeds per configuration",
}

def configurations_display(configs: pd.DataFrame) -> pd.DataFrame:
    """The configurations table as people read it: mean ± std over seeds."""
    def pm(metric: str, scale: float = 1.0, digits: int = 2) -> list[str]:
        out = []
        for m, s in zip(configs[f"{metric}_mean"], configs[f"{metric}_std"]):
            if pd.isna(m):
                out.append("")
            elif pd.isna(s):
                out.append(f"{scale * m:.{digits}f}")
            else:
                out.append(f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}")
        return out

    return pd.DataFrame({
        "dataset": configs["dataset"], "configuration": configs["label"],
        "family": configs["family"], "seeds": configs["seeds"],
        "optimizer lr": configs["effective_lr"],
        # Eq. 9's sum hands the optimizer N times the mean gradient: for SGD an
        # N-times larger step, for Adam(W) almost no change (it divides by sqrt(v)).
        "gradient scale": [n if r == "sum" else 1 for n, r in zip(configs["N"], configs["reduction"])],
        "updates": configs["optimizer_updates_mean"].round().astype("Int64"),
        "test accuracy (%)": pm("test_accuracy", 100, 1),
        "train-test gap (pp)": pm("generalization_gap", 100, 1),
        "time/image (ms)": pm("time_per_image_ms", 1, 3),
        "peak memory (MiB)": pm("peak_memory_mib", 1, 0),
    })


#: The comparisons' columns in a metric's units (scaled with it).
_VALUE_COLUMNS = ("baseline_mean", "mean", "difference", "ci_low", "ci_high", "se", "mde",
                  "margin", "margin_needed")


def comparisons_display(comp: pd.DataFrame) -> pd.DataFrame:
    """The comparisons table in the report's units: the accuracies (fractions in the records) in
    percent, their differences in pp; a ``unit`` column says each row's unit."""
    out = comp.copy()
    pct = out["metric"].isin(ACCURACY_METRICS)
    for col in _VALUE_COLUMNS:
        if col in out:
            out[col] = out[col].astype(float).where(~pct, out[col].astype(float) * 100)
    units = {"time_per_image_ms": "ms", "peak_memory_mib": "MiB", "optimizer_updates": "updates"}
    unit = [("%" if m in ACCURACY_METRICS else units.get(m, "")) for m in out["metric"]]
    out.insert(out.columns.get_loc("metric") + 1, "unit", unit)
    return out


#: Digits shown per unit: accuracy to a hundredth of a point, time to a microsecond.
_DIGITS = {"%": 2, "ms": 3, "MiB": 1, "updates": 0}
#: The page's headers for the comparisons' columns (``comparisons_page``).
PAGE_HEADERS = {"label": "configuration", "baseline_mean": "partner mean",
                "ci_low": "95% CI low", "ci_high": "95% CI high", "p_value": "p",
                "p_holm": "p (Holm)", "tost_p_holm": "equivalence p (Holm)", "mde": "MDE",
                "n": "seeds"}


def comparisons_page(shown: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """``comparisons_display`` columns as a page shows them (metrics in words, each value with
    its unit's digits, margins with their unit, plain headers), and their meanings."""
    out = shown.copy()
    units = out["unit"] if "unit" in out else pd.Series("", index=out.index)
    for col in sorted(set(_VALUE_COLUMNS) & set(out.columns) - {"margin"}):
        sign = col in ("difference", "ci_low", "ci_high")
        out[col] = [("" if pd.isna(v) else f"{v:{'+' if sign else ''}.{_DIGITS.get(u, 3)}f}")
                    for v, u in zip(out[col], units)]
    if "margin" in out:
        out["margin"] = [f"±{v:g} {'pp' if u == '%' else u}" if v == v and v else ""
                         for v, u in zip(out["margin"], units)]
    for col in ("p_value", "p_holm", "tost_p_holm"):
        if col in out:
            out[col] = ["" if pd.isna(v) else f"{v:.3g}" for v in out[col]]
    if "metric" in out:
        out["metric"] = [METRICS.get(m, m) for m in out["metric"]]
    meanings = {PAGE_HEADERS.get(c, c): COMPARISON_COLUMNS[c] for c in out.columns
                if c in COMPARISON_COLUMNS}
    return out.rename(columns=PAGE_HEADERS), meanings


def _pct(column: pd.Series) -> pd.Series:
    return (100 * column.astype(float)).round(2)


def _interval(lows: pd.Series, highs: pd.Series, sign: str = "+") -> list[str]:
    """``[low, high]`` in percent (points), empty where there is none."""
    return [f"[{100 * lo:{sign}.2f}, {100 * hi:{sign}.2f}]" if lo == lo else ""
            for lo, hi in zip(lows.astype(float), highs.astype(float))]


def convergence_display(conv: pd.DataFrame) -> pd.DataFrame:
    """The settling table (:func:`.convergence.convergence`) in pp per epoch and percent."""
    return pd.DataFrame({
        "dataset": conv["dataset"], "configuration": conv["configuration"],
        "family": conv["family"], "seeds": conv["seeds"],
        "learning seeds": conv["learning_seeds"], "epochs": conv["epochs"],
        f"val slope, last {SETTLE_EPOCHS} epochs (pp/epoch)": _pct(conv["val_slope"]),
        "95% interval (pp/epoch)": _interval(conv["val_slope_low"], conv["val_slope_high"]),
        "settled below (pp/epoch)": _pct(conv["threshold"]),
        "state": conv["state"],
        "final val accuracy (%)": _pct(conv["final_val_accuracy"]),
        "train-set accuracy (%)": _pct(conv["train_eval_accuracy"]),
        "test accuracy (%)": _pct(conv["test_accuracy"]),
    })


def effective_rate_display(rate: pd.DataFrame) -> pd.DataFrame:
    """The effective-rate table (:func:`swin_gao_lib.analysis.rates.rate_table`) in percent."""
    return pd.DataFrame({
        "dataset": rate["dataset"], "momentum": rate["momentum"], "series": rate["series"],
        "lr": rate["learning_rate"], "N": rate["N"], "effective rate": rate["effective_rate"],
        "seeds": rate["seeds"], "collapsed": rate["collapsed"], "diverged": rate["diverged"],
        "test accuracy of learning seeds (%)": _pct(rate["learning_mean"]),
        "bootstrap 95% CI (%)": _interval(rate["learning_low"], rate["learning_high"], ""),
        "all seeds, diverged at chance (%)": _pct(rate["mean_at_chance"]),
    })


def sensitivity_display(table: pd.DataFrame) -> pd.DataFrame:
    """The scorings of diverged runs (:mod:`swin_gao_lib.analysis.sensitivity`) in pp."""
    return pd.DataFrame({
        "dataset": table["dataset"], "comparison": table["label"], "role": table["role"],
        "diverged runs scored": table["scoring"],
        "diverged (arm / partner)": [f"{a} / {b}" for a, b in
                                     zip(table["diverged"], table["partner_diverged"])],
        "seeds (arm / partner)": [f"{a} / {b}" for a, b in zip(table["n"], table["n_baseline"])],
        "test": table["test"], "difference (pp)": _pct(table["difference"]),
        "95% CI (pp)": _interval(table["ci_low"], table["ci_high"]),
        "p (Holm)": table["p_holm"], "margin (pp)": _pct(table["margin"]),
        "decision": table["decision"],
        "collapsed (arm / partner)": [f"{a:.0f}/{n:.0f} / {b:.0f}/{m:.0f}" for a, n, b, m in zip(
            table["collapsed"], table["runs"], table["partner_collapsed"], table["partner_runs"])],
        "Fisher exact p (collapse counts)": table["collapse_p"],
    })
