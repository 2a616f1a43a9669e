"""Diverged runs scored three ways, since the rule was chosen after the outcomes.

A diverged run has no test accuracy. The comparisons score it *at chance*
(1 / classes); every comparison that leans on that rule is shown here also *at
0* (the worst score) and *dropped* (only the runs that finished; unpaired where
the sides no longer share their seeds), each tested by the comparisons' method
(:func:`~swin_gao_lib.analysis.comparisons.test_metric`) and decided within its
own Holm family, the family's other comparisons keeping their p-values.
"""

from __future__ import annotations

import math

import pandas as pd

from swin_gao_lib.analysis.comparisons import pairs, per_seed, test_metric
from swin_gao_lib.analysis.stats import UNTESTED, decide, holm
from swin_gao_lib.analysis.study import ALPHA
from swin_gao_lib.config.design import StudyDesign

SCORINGS = ("at chance", "at 0", "dropped")
COLUMNS = ["dataset", "label", "role", "scoring", "diverged", "partner_diverged", "n",
           "n_baseline", "test", "difference", "ci_low", "ci_high", "p_value", "p_holm",
           "tost_p_holm", "margin", "decision", "collapsed", "runs", "partner_collapsed",
           "partner_runs", "collapse_p"]


def sensitivity(runs: pd.DataFrame, configs: pd.DataFrame, comp: pd.DataFrame,
                design: StudyDesign | None = None, confidence: float = 0.95) -> pd.DataFrame:
    """Every test-accuracy comparison with a diverged run, under each of :data:`SCORINGS`.

    ``runs`` and ``configs`` include the diverged runs (as the comparisons
    see them); ``comp`` is :func:`~swin_gao_lib.analysis.comparisons.comparisons`'s
    table, whose Holm families the rows are decided in.
    """
    acc = comp[comp["metric"] == "test_accuracy"] if not comp.empty else comp
    by_config = {k: g for k, g in runs.groupby("configuration", sort=False)}
    labels = configs.set_index("configuration")["label"]
    rows = []
    for pair in pairs(configs, design):
        c, partner, kind = pair["arm"], pair["partner"], pair["kind"]
        mine, base = by_config[c["configuration"]], by_config[partner]
        if not (mine["diverged"].any() or base["diverged"].any()) or acc.empty:
            continue
        match = acc[(acc["dataset"] == c["dataset"]) & (acc["arm_label"] == c["label"])
                    & (acc["partner_label"] == labels[partner]) & (acc["partner"] == kind)]
        if match.empty:
            continue
        row = match.iloc[0]
        family = acc[(acc["dataset"] == row["dataset"]) & (acc["role"] == row["role"])]
        pos = list(family.index).index(row.name)
        collapsed = int(mine["collapsed"].sum()) + int(base["collapsed"].sum())
        for scoring in SCORINGS:
            a = per_seed(mine, "test_accuracy", scoring)
            b = per_seed(base, "test_accuracy", scoring)
            out = {"dataset": row["dataset"], "label": row["label"], "role": row["role"],
                   "scoring": scoring, "diverged": int(mine["diverged"].sum()),
                   "partner_diverged": int(base["diverged"].sum()), "margin": row["margin"],
                   **{k: row[k] for k in ("collapsed", "runs", "partner_collapsed",
                                          "partner_runs", "collapse_p")}}
            if len(a) < 2 or len(b) < 2:
                rows.append({**out, "n": len(a), "n_baseline": len(b), "test": "none",
                             "decision": UNTESTED})
                continue
            method, _, numbers = test_metric(a, b, True, collapsed > 0, confidence)
            p = family["p_value"].tolist()
            p[pos] = numbers["p_value"]
            t = family["tost_p"].tolist()
            t[pos] = numbers["_tost"](row["margin"]) if row["margin"] > 0 else math.nan
            p_holm, tost_holm = holm(p)[pos], holm(t)[pos]
            rows.append({**out, "n": numbers["n"], "n_baseline": numbers["n_baseline"],
                         "test": method, "difference": numbers["difference"],
                         "ci_low": numbers["ci_low"], "ci_high": numbers["ci_high"],
                         "p_value": numbers["p_value"], "p_holm": p_holm,
                         "tost_p_holm": tost_holm,
                         "decision": decide(numbers["difference"], p_holm, tost_holm, ALPHA)
                         if method != "none" else UNTESTED})
    return pd.DataFrame(rows, columns=COLUMNS).astype({"difference": float}, errors="ignore")


def notes(table: pd.DataFrame, comp: pd.DataFrame) -> list[str | None]:
    """Per row of ``comp``: its test-accuracy decision under the other scorings, where that
    differs (None elsewhere)."""
    texts = {}
    if not table.empty:
        spread = table.groupby(["dataset", "label"], sort=False)["decision"].transform("nunique")
        for (dataset, label), g in table[spread > 1].groupby(["dataset", "label"], sort=False):
            others = "; ".join(f"{s} {d}" for s, d in zip(g["scoring"], g["decision"])
                               if s != SCORINGS[0])
            texts[dataset, label] = ("diverged runs scored at chance, a rule decided after the "
                                     f"outcomes: {others}")
    return [texts.get((d, lab)) if m == "test_accuracy" else None
            for d, lab, m in zip(comp["dataset"], comp["label"], comp["metric"])]
