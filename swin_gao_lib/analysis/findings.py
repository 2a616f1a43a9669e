"""The findings table: what a study's comparisons decide about each of the paper's claims.

For each claim of the paper and each control it states what the suite's data
decides, from the comparisons of :mod:`swin_gao_lib.analysis.study` alone; it
never reads *inconclusive* as "no effect".
"""

from __future__ import annotations


import pandas as pd

from swin_gao_lib.analysis.stats import (EQUIVALENT, HIGHER, INCONCLUSIVE, LOWER, UNTESTED)

#: Keys that do not make a configuration: the seed and where the records went.
from swin_gao_lib.analysis.study import MARGINS, NOT_JUDGED


# ---------------------------------------------------------------- findings
CLAIMS = {
    "accuracy": "GA lowers test accuracy",
    "time": "GA raises training time",
    "overfitting": "the accuracy drop is due to overfitting",
}
#: The metric each claim is decided on.
CLAIM_METRIC = {"accuracy": "test_accuracy", "time": "time_per_image_ms",
                "overfitting": "generalization_gap"}
#: How each claim's numbers are shown: scale, unit, digits.
_DISPLAY = {"accuracy": (100, " pp", 1), "time": (1, " ms/img", 3), "overfitting": (100, " pp", 1)}


def margin_text(claim: str, margins: dict[str, float] | None = None) -> str:
    """The margin a claim is decided with, as the findings table states it."""
    margin = (MARGINS if margins is None else margins).get(CLAIM_METRIC[claim])
    if not margin:
        return "none: no noise floor measured, so no time verdict (numbers only)"
    scale, unit, digits = _DISPLAY[claim]
    what = " of the train-test gap" if claim == "overfitting" else ""
    return f"±{scale * margin:.{digits}g}{unit}{what}"


def _fmt(row: pd.Series, claim: str) -> str:
    """One comparison as the findings show it: difference [95% CI], decision, MDE."""
    scale, unit, digits = _DISPLAY[claim]
    d = row["difference"] * scale
    if row["test"] == "none":  # one seed: the verdict says so once
        return f"{row['point']}: {d:+.{digits}f}{unit}"
    lo, hi = row["ci_low"] * scale, row["ci_high"] * scale
    text = f"{row['point']}: {d:+.{digits}f}{unit} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
    if claim == "time":
        return f"{text} (x{row['ratio']:.2f})"
    decision = row["decision"]
    if decision == EQUIVALENT:
        decision = "equivalent"
    elif decision in (LOWER, HIGHER) and row["within_margin"]:
        decision += " (within the margin)"
    return f"{text} {decision}, MDE {row['mde'] * scale:.{digits}f}{unit}"


def _verdict(decisions: list[str], claimed: str, margin: str) -> str:
    """A claim's verdict from its comparisons' decisions (``claimed``: LOWER or HIGHER).

    Wording rules: *supported* / *contradicted* only from differences that
    survive Holm's correction; *not supported* only from equivalence within
    the margin; everything else is *inconclusive*, never "no effect".
    """
    tested = [d for d in decisions if d != UNTESTED]
    if not tested:
        return "untestable (one seed per configuration)"
    n = len(tested)
    other = HIGHER if claimed == LOWER else LOWER
    pro, con = tested.count(claimed), tested.count(other)
    eq, inc = tested.count(EQUIVALENT), tested.count(INCONCLUSIVE)
    rest = "; ".join(part for part in (
        f"equivalent within {margin} at {eq}" if eq else "",
        f"inconclusive at {inc}" if inc else "") if part)
    if pro and con:
        return f"mixed ({pro} of {n} {claimed}, {con} {other}; {rest or 'none else'})"
    if pro:
        return "supported" if pro == n else f"partly supported ({pro} of {n} {claimed}; {rest})"
    if con:
        return f"contradicted ({con} of {n} {other}{'; ' + rest if rest else ''})"
    if eq == n:
        return f"not supported: equivalent within {margin}"
    if eq:
        return f"not supported at {eq} of {n} (equivalent within {margin}); inconclusive at {inc}"
    return f"inconclusive (neither {claimed} nor equivalent within {margin})"


def _claim_rows(comp: pd.DataFrame, claim: str,
                margins: dict[str, float] | None = None) -> tuple[str, str]:
    """Verdict and evidence for one claim within one control of one data set."""
    by_metric = {m: g.sort_values(["N", "batch"]) for m, g in comp.groupby("metric")}
    margin = margin_text(claim, margins)
    if claim == "accuracy":
        g = by_metric.get("test_accuracy")
        if g is None:
            return "untestable (these records lack test accuracy)", ""
        return (_verdict(list(g["decision"]), LOWER, margin),
                "; ".join(_fmt(r, claim) for _, r in g.iterrows()))
    if claim == "time":
        g = by_metric.get("time_per_image_ms")
        if g is None:
            return "untestable (these records lack training time per image)", ""
        ev = "; ".join(_fmt(r, claim) for _, r in g.iterrows())
        if (g["test"] == "none").all():
            return "untestable (one seed per configuration)", ev
        if (g["decision"] == NOT_JUDGED).all():
            return "no verdict (runs not timed interleaved, no noise floor)", ev
        return _verdict(list(g["decision"]), HIGHER, margin), ev
    # overfitting: only where accuracy drops (after Holm), does the train-test gap grow?
    acc, gap = by_metric.get("test_accuracy"), by_metric.get("generalization_gap")
    if acc is None or gap is None:
        return "untestable (these records lack the train-set evaluation)", ""
    if (acc["test"] == "none").all():
        return "untestable (one seed per configuration)", ""
    drops = acc[acc["decision"] == LOWER]["point"].tolist()
    if not drops:
        return "not applicable (no accuracy drop that survives Holm's correction)", ""
    g = gap[gap["point"].isin(drops)]
    verdict = _verdict(list(g["decision"]), HIGHER, margin)
    if verdict.startswith("contradicted"):
        verdict += ": the gap shrinks, as when a model underfits"
    elif verdict.startswith("not supported"):
        verdict += ", where accuracy drops"
    return verdict, "gap " + "; ".join(_fmt(r, claim) for _, r in g.iterrows())


def findings(comp: pd.DataFrame, margins: dict[str, float] | None = None) -> pd.DataFrame:
    """One row per claim, control and data set: the margin, the verdict and its numbers."""
    rows = []
    if comp.empty:
        return pd.DataFrame(columns=["claim", "margin", "control", "dataset", "verdict",
                                     "evidence"])
    controls = list(dict.fromkeys(comp["control"]))
    for claim, text in CLAIMS.items():
        for control in controls:
            for dataset, g in comp[comp["control"] == control].groupby("dataset", sort=True):
                verdict, evidence = _claim_rows(g, claim, margins)
                rows.append({"claim": text, "margin": margin_text(claim, margins),
                             "control": control, "dataset": dataset,
                             "verdict": verdict, "evidence": evidence})
    return pd.DataFrame(rows)


def findings_table(found: pd.DataFrame) -> pd.DataFrame:
    """Findings with one column per data set: ``verdict: evidence`` in each cell."""
    if found.empty:
        return found
    found = found.assign(cell=[v + (f": {e}" if e else "")
                               for v, e in zip(found["verdict"], found["evidence"])])
    wide = found.pivot_table(index=["claim", "margin", "control"], columns="dataset",
                             values="cell",
                             aggfunc="first", sort=False).reset_index()
    wide.columns.name = None
    return wide.fillna("(not run)")
