"""What a report page says first (the suite, its run counts, a one-seed warning) and, at its end,
the runs that did not finish as one collapsible list."""

from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd

from swin_gao_lib.analysis.display import Sentence
from swin_gao_lib.records import EXAMPLE_SUITE
from swin_gao_lib.records.suite import Suite

#: The committed study page, where a one-seed suite's reader should look instead.
STUDY_PAGE = "examples/study-quick/report/report.html"


def suite_name(suite: Suite) -> str:
    """The suite's folder name; the bundled example is named as the suite it copies."""
    path = suite.path.resolve()
    return "quick (the bundled example)" if path == Path(EXAMPLE_SUITE).resolve() else path.name


def _counts(suite: Suite) -> dict[str, int]:
    failed = suite.failed
    diverged = sum(1 for f in failed.values() if f.get("diverged"))
    unfinished = [p for p in suite.incomplete if p.name not in failed]
    return {"complete": len(suite.runs), "diverged": diverged,
            "failed": len(failed) - diverged, "unfinished": len(unfinished)}


def opening(suite: Suite, configurations: pd.DataFrame | None) -> Sentence:
    """The page's first lines (Markdown): suite, run counts, and the one-seed warning."""
    n = _counts(suite)
    parts = [f"{n['complete']} complete runs"]
    parts += [f"{n[k]} {k}" for k in ("diverged", "failed") if n[k]]
    if n["unfinished"]:
        parts.append(f"{n['unfinished']} unfinished (no records yet; a rerun resumes them)")
    text = f"**Suite `{suite_name(suite)}`**: " + ", ".join(parts)
    if n["diverged"] or n["failed"]:
        text += " — the runs that did not finish are listed at the end of the page"
    text += "."
    seeds = (configurations["seeds"] if configurations is not None and "seeds" in configurations
             else pd.Series(dtype=float))
    if len(seeds) and seeds.max() <= 1:
        text += ("\n\n**One seed per configuration: this suite tests nothing.** A difference "
                 "between two runs here is one draw of the seed, with no interval and no test; "
                 "every verdict below says *untestable*. It shows the kit working end to end. "
                 f"For answers, open the study's page, `{STUDY_PAGE}` in the kit (10 seeds for most "
                 "configurations), or run a suite with `seeds:` in its params.")
    return Sentence(text)


class Details:
    """A collapsible block: its summary line always shown, its list on a click (HTML)."""

    def __init__(self, summary: str, items: list[str]):
        self.summary, self.items = summary, items

    def _repr_html_(self) -> str:
        rows = "".join(f"<li>{escape(i)}</li>" for i in self.items)
        return f"<details><summary>{escape(self.summary)}</summary><ul>{rows}</ul></details>"

    def __repr__(self) -> str:
        return "\n".join([self.summary, *(f"- {i}" for i in self.items)])


def failures(suite: Suite) -> Details | Sentence:
    """The runs that diverged or failed, as one collapsible list with a count."""
    failed, n = suite.failed, _counts(suite)
    if not failed:
        return Sentence("Every run of this suite finished.")
    items = []
    for name, f in sorted(failed.items()):
        if f.get("diverged"):
            where = f"loss {f.get('loss')} at epoch {f.get('epoch')}, step {f.get('step')}"
            items.append(f"{name}: diverged ({where})")
        else:
            items.append(f"{name}: failed: {f.get('error')}")
    summary = (f"{n['diverged']} diverged" + (f", {n['failed']} failed" if n["failed"] else "")
               + " runs: their records end in a failure (each in failed_runs.csv) — click to list them")
    return Details(summary, items)
