"""The findings table: what a study's comparisons decide about each of the paper's claims.

Per claim, control and data set: the verdict from the comparisons alone
(*inconclusive* is never read as "no effect") and the numbers a reviewer needs
to check it: role, prediction and outcome, method, difference and 95%
interval, MDE, margin and the margin needed, and the budget behind it.
"""

from __future__ import annotations

import math

import pandas as pd

from swin_gao_lib.analysis.convergence import SETTLED
from swin_gao_lib.analysis.stats import EQUIVALENT, HIGHER, INCONCLUSIVE, LOWER, UNTESTED
from swin_gao_lib.analysis.study import MARGINS, NOT_JUDGED

CLAIMS = {
    "accuracy": "GA lowers test accuracy",
    "time": "GA raises training time",
    "overfitting": "the accuracy drop is due to overfitting",
}
#: The metric each claim is decided on.
CLAIM_METRIC = {"accuracy": "test_accuracy", "time": "time_per_image_ms",
                "overfitting": "generalization_gap"}
#: How each claim's numbers are shown: scale, unit, digits.
_DISPLAY = {"accuracy": (100, " pp", 1), "time": (1, " ms/img", 3), "overfitting": (100, " pp", 2)}
NO_TIME_MARGIN = "none: no noise floor measured, so no time verdict (numbers only)"
LONG_COLUMNS = ["claim", "role", "control", "prediction", "margin", "dataset", "verdict",
                "evidence"]


def margin_text(claim: str, margins: dict[str, float] | None = None,
                margin: float | None = None) -> str:
    """The margin a claim is decided with, as the findings table states it."""
    if margin is None or not margin > 0:
        margin = (MARGINS if margins is None else margins).get(CLAIM_METRIC[claim])
    if not margin or (isinstance(margin, float) and math.isnan(margin)):
        return NO_TIME_MARGIN
    scale, unit, digits = _DISPLAY[claim]
    what = " of the train-test gap" if claim == "overfitting" else ""
    return f"±{scale * margin:.{digits}g}{unit}{what}"


def _number(value: float, claim: str, sign: bool = True) -> str:
    scale, unit, digits = _DISPLAY[claim]
    if math.isinf(value):
        return "beyond the range"
    return f"{scale * value:{'+' if sign else ''}.{digits}f}{unit}"


def _fmt(row: pd.Series, claim: str) -> str:
    """One comparison as the findings show it (module docstring)."""
    scale, unit, digits = _DISPLAY[claim]
    d = row["difference"] * scale
    if row["test"] == "none":  # one seed: the verdict says so once
        return f"{row['point']}: {d:+.{digits}f}{unit}"
    lo, hi = row["ci_low"] * scale, row["ci_high"] * scale
    text = f"{row['point']}: "
    if claim == "accuracy" and (row.get("collapsed", 0) or row.get("partner_collapsed", 0)):
        # a collapse claim's primary test: the counts, which need no scoring of diverged runs
        text += (f"collapsed {row['collapsed']:.0f}/{row['runs']:.0f} vs "
                 f"{row['partner_collapsed']:.0f}/{row['partner_runs']:.0f} "
                 f"(Fisher exact p = {row['collapse_p']:.2g}); ")
    text += f"{d:+.{digits}f}{unit} [{lo:+.{digits}f}, {hi:+.{digits}f}]"
    if claim == "time":
        return f"{text} (x{row['ratio']:.2f})"
    decision = row["decision"]
    if decision in (LOWER, HIGHER) and row["within_margin"]:
        decision += " (within the margin)"
    text += f" {decision}; {_method(row)}"
    size = row.get("family_size", 1)
    if size == size and size > 1:  # not NaN: the Holm family this decision was corrected in
        text += f"; Holm over {size:.0f} comparisons"
    text += f"; MDE {_number(row['mde'], claim, sign=False)}"
    needed = row.get("margin_needed", math.nan)
    if needed == needed:  # not NaN
        text += ("; equivalent at no margin within the range" if math.isinf(needed) else
                 f"; equivalent from ±{_number(needed, claim, sign=False)}")
    if isinstance(row.get("same_values_as"), str):
        text += (f'; the same values seed by seed as "{row["same_values_as"]}": one result, '
                 "not a second one")
    if claim == "accuracy" and isinstance(row.get("confounds"), str):
        text += f"; confounded: {row['confounds']}"
    return text


def _method(row: pd.Series) -> str:
    reason = row.get("method_reason")
    return f"{row['test']}" + (f" ({reason})" if isinstance(reason, str) and reason else "")


def _verdict(decisions: list[str], claimed: str, margin: str) -> str:
    """A claim's verdict from its comparisons' decisions (``claimed``: LOWER or HIGHER):
    *supported* / *contradicted* only from differences that survive Holm's correction, *not
    supported* only from equivalence within the margin, else *inconclusive*."""
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


def _tail(g: pd.DataFrame) -> str:
    """What follows the numbers: the prediction's outcome and the budget behind the verdict."""
    parts = []
    outcomes = [o for o in g.get("outcome", pd.Series(dtype=object)) if isinstance(o, str)]
    if outcomes:
        parts.append("prediction " + ", ".join(dict.fromkeys(outcomes)))
    notes = [n for n in g.get("scoring_note", pd.Series(dtype=object)) if isinstance(n, str)]
    parts.extend(dict.fromkeys(notes))
    if "budget" in g:
        for _, r in g.drop_duplicates("point").iterrows():
            if r["budget"] == SETTLED:
                continue
            unsettled = [f"{label} {state}" for label, state in
                         ((r["arm_label"], r["arm_state"]), (r["partner_label"], r["partner_state"]))
                         if state != SETTLED]
            parts.append(f"{r['point']} a fixed-budget verdict, {r['budget']}: "
                         + ", ".join(unsettled))
    return "; ".join(parts)


def _budget(g: pd.DataFrame) -> str:
    """The verdict's budget mark: empty when every compared arm settled, else ``(at E epochs)``."""
    if "budget" not in g:
        return ""
    tested = g[g["decision"] != UNTESTED]  # one seed: the verdict says "untestable" and no more
    fixed = sorted({b for b in tested["budget"] if isinstance(b, str) and b != SETTLED})
    return f" ({', '.join(fixed)})" if fixed else ""


def _claim_rows(comp: pd.DataFrame, claim: str) -> tuple[str, str]:
    """Verdict and evidence for one claim within one control of one data set."""
    by_metric = {m: g.sort_values(["N", "batch"]) for m, g in comp.groupby("metric")}
    acc = by_metric.get("test_accuracy")
    if claim != "time" and acc is None:
        return "untestable (these records lack test accuracy)", ""
    if claim == "accuracy":
        margin = margin_text(claim, margin=acc["margin"].iloc[0])
        evidence = "; ".join(_fmt(r, claim) for _, r in acc.iterrows())
        tail = _tail(acc)
        return (_verdict(list(acc["decision"]), LOWER, margin) + _budget(acc),
                evidence + (f" — {tail}" if tail else ""))
    if claim == "time":
        g = by_metric.get("time_per_image_ms")
        if g is None:
            return f"untestable ({_nothing_measured(by_metric, 'training time per image')})", ""
        ev = "; ".join(_fmt(r, claim) for _, r in g.iterrows())
        if (g["test"] == "none").all():
            return "untestable (one seed per configuration)", ev
        if (g["decision"] == NOT_JUDGED).all():
            return "no verdict (runs not timed interleaved, no noise floor)", ev
        return _verdict(list(g["decision"]), HIGHER, margin_text(claim, margin=g["margin"].iloc[0])), ev
    # overfitting: only where accuracy drops (after Holm) while the arm still learns
    gap = by_metric.get("generalization_gap")
    if (acc["test"] == "none").all():
        return "untestable (one seed per configuration)", ""
    drops = acc[acc["decision"] == LOWER]
    if drops.empty:
        return "not applicable (no accuracy drop that survives Holm's correction)", ""
    learning = drops[drops.get("collapsed", 0) == 0]
    if learning.empty:
        k = ", ".join(f"{r['point']}: {r['collapsed']:.0f} of {r['runs']:.0f} runs"
                      for _, r in drops.iterrows())
        return ("not applicable (accuracy drops where the arm collapsed to chance, "
                f"{k}: a model at chance has no train-test gap to test)"), ""
    g = gap[gap["point"].isin(learning["point"])] if gap is not None else ()
    if not len(g):
        return f"untestable ({_nothing_measured(by_metric, 'the train-set evaluation')})", ""
    return _overfitting(learning, g, by_metric.get("train_eval_accuracy"))


def _overfitting(drops: pd.DataFrame, gap: pd.DataFrame, train: pd.DataFrame | None) -> tuple[str, str]:
    """Overfitting at each learning arm's accuracy drop, which would widen the gap by about
    the drop: *supported* where the gap grows (after Holm), *not supported* where it is
    equivalent within less than the drop (``margin_needed``), else *inconclusive*; a re-scored
    train accuracy that falls too is the opposite of overfitting."""
    decisions, evidence, falls = [], [], []
    train_at = train.set_index("point") if train is not None else None
    drop_at = drops.set_index("point")["difference"].abs()
    for _, r in gap.iterrows():
        drop = drop_at[r["point"]]
        needed = r.get("margin_needed", math.nan)
        decisions.append(r["decision"] if r["decision"] in (HIGHER, LOWER)
                         else EQUIVALENT if needed == needed and needed < drop else INCONCLUSIVE)
        text = (f"drop {_number(-drop, 'overfitting')}, gap "
                + _fmt(r, "overfitting").split(": ", 1)[1])
        if train_at is not None and r["point"] in train_at.index:
            t = train_at.loc[r["point"]]
            text += (f"; train accuracy (re-scored) {100 * t['difference']:+.2f} pp "
                     f"[{100 * t['ci_low']:+.2f}, {100 * t['ci_high']:+.2f}] {t['decision']}")
            falls.append(t["decision"] == LOWER)
        evidence.append(f"{r['point']}: {text}")
    verdict = _verdict(decisions, HIGHER, "a margin smaller than the drop") + _budget(gap)
    if verdict.startswith("contradicted"):
        verdict += ": the gap shrinks, as when a model underfits"
    elif verdict.startswith("not supported"):
        verdict += ", at each drop"
    if falls and all(falls) and not verdict.startswith("supported"):
        verdict += "; the train accuracy falls too: the model fits its own images less well"
    return verdict, "; ".join(evidence)


def _nothing_measured(by_metric: dict[str, pd.DataFrame], what: str) -> str:
    """Why a comparison has no row for a metric: every run of a side diverged, or old records."""
    acc = by_metric.get("test_accuracy")
    if acc is not None:
        gone = acc[(acc["diverged"] == acc["runs"]) | (acc["partner_diverged"] == acc["partner_runs"])]
        if len(gone):
            return f"every run of a side diverged: no {what} to compare"
    return f"these records lack {what}"


def _prediction(g: pd.DataFrame) -> str:
    if "prediction" not in g:
        return ""
    found = g[g["metric"] == "test_accuracy"].dropna(subset=["prediction"])
    texts = [f"{p} ({w})" for p, w in dict.fromkeys(zip(found["prediction"], found["why"]))]
    return "; ".join(texts) if texts else "(none stated)"


def findings(comp: pd.DataFrame, margins: dict[str, float] | None = None,
             not_made: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per claim, control and data set: role, prediction, margin, verdict, numbers;
    ``not_made`` (:func:`.comparisons.not_made`) adds the declared comparisons without runs."""
    rows = [{"claim": CLAIMS["accuracy"], "role": r["role"], "control": r["label"],
             "prediction": f"{r['prediction']} ({r['why']})", "margin": margin_text("accuracy", margins),
             "dataset": r["dataset"],
             "verdict": f"not made: this suite has no run of its {r['missing']}", "evidence": ""}
            for _, r in (not_made if not_made is not None else pd.DataFrame()).iterrows()]
    if comp.empty:
        return pd.DataFrame(rows, columns=LONG_COLUMNS)
    roles = comp.get("role", pd.Series(["secondary"] * len(comp), index=comp.index))
    comp = comp.assign(role=roles)
    order = comp.assign(_primary=(comp["role"] != "primary")).sort_values("_primary",
                                                                         kind="stable")
    controls = list(dict.fromkeys(order["control"]))
    for claim, text in CLAIMS.items():
        for control in controls:
            for dataset, g in comp[comp["control"] == control].groupby("dataset", sort=True):
                verdict, evidence = _claim_rows(g, claim)
                metric_rows = g[g["metric"] == CLAIM_METRIC[claim]]
                margin = metric_rows["margin"].iloc[0] if len(metric_rows) else None
                rows.append({"claim": text, "role": g["role"].iloc[0], "control": control,
                             "prediction": _prediction(g),
                             "margin": margin_text(claim, margins, margin),
                             "dataset": dataset, "verdict": verdict, "evidence": evidence})
    return pd.DataFrame(rows, columns=LONG_COLUMNS)


def findings_table(found: pd.DataFrame) -> pd.DataFrame:
    """Findings with one column per data set, ``verdict: evidence`` in each cell (with the
    margin where data sets' margins differ)."""
    if found.empty:
        return found
    index = ["claim", "role", "control", "prediction", "margin"]
    one_margin = found.groupby(["claim", "control"])["margin"].transform("nunique") == 1
    cell = [v + (f": {e}" if e else "") for v, e in zip(found["verdict"], found["evidence"])]
    found = found.assign(
        cell=[c if one else f"(margin {m}) {c}" for c, one, m in zip(cell, one_margin,
                                                                     found["margin"])],
        margin=[m if one else "per data set" for m, one in zip(found["margin"], one_margin)],
        prediction=found["prediction"].fillna(""))
    wide = found.pivot_table(index=index, columns="dataset", values="cell", aggfunc="first",
                             sort=False).reset_index()
    wide.columns.name = None
    # pivot_table sorts its index whatever ``sort`` says (pandas 3.1): put the rows back in
    # the order findings() made them, claim by claim, the paper's own comparison first
    pairs = list(zip(found["claim"], found["control"]))
    first = {key: i for i, key in reversed(list(enumerate(pairs)))}
    claims = {c: i for i, c in reversed(list(enumerate(found["claim"])))}

    def rank(i: int) -> tuple:
        row = wide.iloc[i]
        return claims[row["claim"]], row["role"] != "primary", first[(row["claim"], row["control"])]

    wide = wide.iloc[sorted(range(len(wide)), key=rank)]
    return wide.reset_index(drop=True).fillna("(not run)")
