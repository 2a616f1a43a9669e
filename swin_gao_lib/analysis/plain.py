"""The findings in plain words: a verdict word and one sentence per claim, control and data set.

Every word is cut from the full findings row (:mod:`.findings`), so the two
never disagree: the verdict's leading words with its budget mark, and the
first comparison's numbers, the verdict's reason and the prediction's fate.
"""

from __future__ import annotations

import re

import pandas as pd

from swin_gao_lib.analysis.decisions import AS_PREDICTED, CONTRADICTED, UNDECIDED

COLUMNS = ["claim", "dataset", "control", "verdict", "in one sentence"]
#: Verdicts that decide nothing: shown for the paper's own comparison only.
_SILENT = ("no verdict", "not applicable")
_WORD = re.compile(r"^(not made|[a-z ]+?)(?=\s*[(:]|$)")
_BUDGET = re.compile(r"\(at \d+(?:, \d+)* epochs\)")
_DECISION = re.compile(r" (?:equivalent|inconclusive)$")
_OUTCOME = {AS_PREDICTED: "held", CONTRADICTED: "failed", UNDECIDED: "is undecided"}


def verdict_word(verdict: str) -> str:
    """A verdict's leading words, with its budget mark: ``not supported (at 12 epochs)``."""
    word = _WORD.match(verdict)
    head = word.group(1).strip() if word else verdict
    budget = _BUDGET.search(verdict)
    return head + (f" {budget.group(0)}" if budget else "")


def sentence(verdict: str, evidence: str, prediction: str) -> str:
    """One sentence: the first comparison's numbers, the verdict's reason, the prediction's fate."""
    numbers = evidence.split(" — ")[0].split("; ")[0].strip() if evidence else ""
    head = verdict_word(verdict)
    # the verdict's own reason where it gives one: "(one seed per configuration)", ": equivalent ..."
    reason = _BUDGET.sub("", verdict[len(_WORD.match(verdict).group(0)):] if _WORD.match(verdict)
                         else "").strip(" :")
    if reason.startswith("(") and reason.endswith(")"):
        reason = reason[1:-1]
    all_one_way = re.fullmatch(r"(\d+) of \1 (?:higher|lower)", reason)
    if all_one_way:  # "contradicted (1 of 1 higher)": the numbers already say it
        reason = ""
    if reason:  # the verdict's reason names the decision: not twice in one sentence
        numbers = _DECISION.sub("", numbers)
    parts = [p.replace(" ,", ",") for p in (numbers, reason) if p]
    outcome = re.search(r"prediction (as predicted|contradicted|undecided)", evidence or "")
    predicted = (prediction or "").split(" (")[0].strip()
    if outcome and predicted and predicted != "(none stated)":
        parts.append(f"the prediction ({predicted}) {_OUTCOME[outcome.group(1)]}")
    text = "; ".join(parts) if parts else head
    return text[0].upper() + text[1:] + "."


def plain_findings(found: pd.DataFrame) -> pd.DataFrame:
    """The long findings (``StudyTables.findings``) as verdict words and sentences: the
    paper's own comparison first, a control's row that decides nothing (``_SILENT``) left out."""
    if found.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for _, r in found.iterrows():
        word = verdict_word(r["verdict"])
        if r["role"] != "primary" and word.startswith(_SILENT):
            continue
        rows.append({"claim": r["claim"], "dataset": r["dataset"], "control": r["control"],
                     "verdict": word,
                     "in one sentence": sentence(r["verdict"], r["evidence"], r["prediction"]),
                     "_primary": r["role"] != "primary"})
    table = pd.DataFrame(rows, columns=COLUMNS + ["_primary"])
    return table.sort_values("_primary", kind="stable").drop(columns="_primary").reset_index(drop=True)
