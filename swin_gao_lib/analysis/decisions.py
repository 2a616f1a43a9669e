"""Each comparison decided: Holm within its family, the margin it needs, its prediction's outcome.

A Holm family is a data set, a metric and a role (the paper's own comparison,
*primary*, alone; the controls, *secondary*); ``margin_needed`` lets a reader
with another margin in mind read the verdict off it.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from swin_gao_lib.analysis.resampling import ACCURACY_RANGE
from swin_gao_lib.analysis.stats import EQUIVALENT, HIGHER, LOWER, decide, holm
from swin_gao_lib.analysis.study import ALPHA, NOT_JUDGED

#: How a declared prediction reads against the decision.
AS_PREDICTED, CONTRADICTED, UNDECIDED = "as predicted", "contradicted", "undecided"


def outcome(prediction: str | None, decision: str, within_margin: bool = False) -> str | None:
    """A prediction read against a decision (None where nothing was predicted): *as predicted*
    (for *equivalent*, also a significant difference inside the margin), *contradicted* by
    another definite decision, else *undecided*."""
    if not prediction:
        return None
    if decision == prediction or (prediction == EQUIVALENT and within_margin):
        return AS_PREDICTED
    if decision in (EQUIVALENT, LOWER, HIGHER):
        return CONTRADICTED
    return UNDECIDED


def decide_table(table: pd.DataFrame, tost_of: list[Callable[[float], float]]) -> None:
    """Holm within data set, metric and role; decisions; margins needed; outcomes (in place)."""
    for column in ("p_holm", "tost_p_holm", "collapse_p_holm", "margin_needed"):
        table[column] = np.nan
    # how many comparisons share the correction: the same numbers can decide differently in a
    # family of 11 than alone, and the row says so
    table["family_size"] = table.groupby(["dataset", "metric", "role"])["metric"].transform("size")
    for _, g in table.groupby(["dataset", "metric", "role"], sort=False):
        table.loc[g.index, "p_holm"] = holm(g["p_value"].tolist())
        table.loc[g.index, "tost_p_holm"] = holm(g["tost_p"].tolist())
        table.loc[g.index, "collapse_p_holm"] = holm(g["collapse_p"].tolist())
        raw = g["tost_p"].tolist()
        for pos, i in enumerate(g.index):
            if table.at[i, "margin"] > 0:
                table.at[i, "margin_needed"] = margin_needed(tost_of[i], raw, pos)
    table["decision"] = [
        decide(e, p, q, ALPHA) if m > 0 else NOT_JUDGED
        for e, p, q, m in zip(table["difference"], table["p_holm"], table["tost_p_holm"],
                              table["margin"].fillna(0))]
    table["within_margin"] = table["tost_p_holm"] < ALPHA
    table["outcome"] = [outcome(p, d, bool(w)) if d != NOT_JUDGED else None
                        for p, d, w in zip(table["prediction"], table["decision"],
                                           table["within_margin"])]


def margin_needed(tost_p: Callable[[float], float], family_tost_p: list[float], position: int,
                  alpha: float = ALPHA, upper: float = ACCURACY_RANGE[1]) -> float:
    """The smallest margin at which this comparison's Holm-adjusted TOST rejects at ``alpha``,
    the rest of its family at their stated margins: by bisection (the adjusted p falls as the
    margin widens). ``inf`` beyond ``upper``, NaN without a test."""
    def adjusted(m: float) -> float:
        raw = list(family_tost_p)
        raw[position] = tost_p(m)
        return holm(raw)[position]

    if math.isnan(tost_p(upper)):
        return math.nan
    if not adjusted(upper) < alpha:
        return math.inf
    low, high = 0.0, upper
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if not adjusted(mid) < alpha else (low, mid)
        if high - low < 1e-10:
            break
    return high
