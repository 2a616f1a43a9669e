"""Check that every number a params file's header quotes from a trial is what the trial's records show.

A study's params files explain their choices in their header comments: "AdamW 2e-3
(validation 97.9% after 16 epochs; 4e-3: 97.5%)". Such numbers come from tuning trials,
whose records are committed (``examples/study-tuning/<suite>/<run>/``). To keep a header
from quoting a number no record shows, every such number is written as a *citation*::

    [<suite> <selector>...: <metric> <value> @<epoch>]
    [mnist-model3 lr0.004: val 97.9% @16]        validation accuracy after epoch 16
    [mnist-model3 lr0.004: val 97.6% @10-16]     its mean over epochs 10 to 16
    [mnist-model3 lr0.004: val-slope +0.05 pp/epoch @16]   fitted over epochs 14-16
    [mnist-model3 lr0.004: test 97.1%]           metrics.json (after the last epoch)
    [study-quick cifar10-paper-n1: mean-val 41.5% @12]   the mean over the runs it picks
    [study-quick cifar10-paper-n1: sd-test 1.5%]          their standard deviation (test)
    [cost study-quick: 2.41 h]                   examples/study-tuning/cost/study-quick/cost.json

``suite`` is a folder of ``examples/study-tuning/`` (or of ``examples/``); the selectors
are parts of a run's name that together pick exactly one of its runs (or, for a metric
prefixed ``mean-``, the runs -- seeds -- whose mean curve is cited). Metrics: ``val``,
``train`` (history.csv's running accuracy, with dropout and augmentation), ``val-loss``,
``val-slope`` (the least-squares slope over the last 3 epochs -- the plateau rule the
headers were written under -- by :func:`swin_gao_lib.analysis.convergence.slope`, pp per
epoch), and from
metrics.json ``test`` and ``train-eval``. The value must equal the record's, rounded to the
digits cited. And every accuracy in a header -- any number followed by ``%`` -- must be
inside a citation, unless a comparison makes it a target (``>= 97%``).

    python tools/check_citations.py            # the study's params files; exit 1 on a miss
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_gao_lib.analysis.convergence import slope  # noqa: E402
from swin_gao_lib.records.history import RUNNING_ACCURACY, current_columns  # noqa: E402

#: The epochs a cited ``val-slope`` is fitted over (the 3-epoch rule of the headers' time;
#: the settling rule fits 6).
CITED_SLOPE_EPOCHS = 3

CITATION = re.compile(r"\[([A-Za-z0-9_.-]+)((?:\s+[^\s:\]]+)*)\s*:\s*([a-z-]+)\s+"
                      r"([+-]?\d+(?:\.\d+)?)\s*(%|pp/epoch|h)?\s*(?:@(\d+)(?:-(\d+))?)?\]")
COST = re.compile(r"\[cost\s+([A-Za-z0-9_.-]+)\s*:\s*(\d+(?:\.\d+)?)\s*h\]")
#: A quoted accuracy; one after a comparison (">= 97%", "< 15%") is a stated target, and one
#: before "interval"/"CI" ("a 95% interval") a confidence level, not a record.
PERCENT = re.compile(r"(?<![<>=≥≤\d.])(?<![<>=≥≤]\s)\d+(?:\.\d+)?\s*%(?!\s*(?:interval|CI)\b)")
STUDY_FOLDERS = ("study-quick", "study", "study-deterministic", "study-tuning")
HISTORY_METRICS = {"val": "val_accuracy", "train": RUNNING_ACCURACY, "val-loss": "val_loss"}
FINAL_METRICS = {"test": "test_accuracy", "train-eval": "train_eval_accuracy"}


@dataclass
class Citation:
    file: str
    text: str
    suite: str
    selectors: list[str]
    metric: str
    value: str
    unit: str | None
    epoch: int | None
    last: int | None = None  # @first-last: the mean over those epochs


def header(path: Path) -> str:
    """The comment lines at the top of a params file (its header), without the ``#``."""
    lines = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line[1:])
    return "\n".join(lines)


def citations(path: Path) -> tuple[list[Citation], list[str]]:
    """The citations of a header, and the quoted percentages that are not inside one."""
    text = " ".join(header(path).split())  # a citation may wrap across comment lines
    found, spans = [], []
    for m in COST.finditer(text):
        found.append(Citation(path.name, m.group(0), m.group(1), [], "cost", m.group(2), "h", None))
        spans.append(m.span())
    for m in CITATION.finditer(text):
        if m.group(1) == "cost":
            continue
        found.append(Citation(path.name, m.group(0), m.group(1), m.group(2).split(),
                              m.group(3), m.group(4), m.group(5),
                              int(m.group(6)) if m.group(6) else None,
                              int(m.group(7)) if m.group(7) else None))
        spans.append(m.span())
    bare = [m.group(0) for m in PERCENT.finditer(text)
            if not any(a <= m.start() < b for a, b in spans)]
    return found, bare


def _suite(name: str, examples: Path) -> Path:
    for folder in (examples / "study-tuning" / name, examples / name):
        if folder.is_dir():
            return folder
    raise LookupError(f"no records of suite '{name}' under {examples}")


def _digits(value: str) -> int:
    return len(value.split(".")[1]) if "." in value else 0


def recorded(c: Citation, examples: Path) -> float:
    """The record's value of a citation, in the unit it is cited in."""
    if c.metric == "cost":
        data = json.loads((examples / "study-tuning" / "cost" / c.suite / "cost.json").read_text())
        return data["estimated_wall_s"] / 3600
    suite = _suite(c.suite, examples)
    runs = [p for p in suite.iterdir() if p.is_dir() and all(s in p.name for s in c.selectors)
            and (p / "history.csv").is_file()]
    mean = c.metric.startswith(("mean-", "sd-"))  # over every run the selectors pick (seeds)
    metric = c.metric.removeprefix("mean-").removeprefix("sd-")
    if not runs or (len(runs) != 1 and not mean):
        raise LookupError(f"{c.text}: the selectors {c.selectors} pick {len(runs)} runs of "
                          f"{suite.name}, not one")
    scale = 100 if c.unit in ("%", "pp/epoch") else 1
    if metric in FINAL_METRICS:
        values = pd.Series([json.loads((r / "metrics.json").read_text())[FINAL_METRICS[metric]]
                            for r in runs])
        return scale * (values.std(ddof=1) if c.metric.startswith("sd-") else values.mean())
    history = pd.concat([current_columns(pd.read_csv(r / "history.csv")) for r in runs]).groupby("epoch").mean()
    if c.epoch is None or c.epoch not in history.index:
        raise LookupError(f"{c.text}: name an epoch the run recorded (@1..@{history.index.max()})")
    if metric == "val-slope":
        return scale * slope(history.loc[:c.epoch, "val_accuracy"].to_numpy(), epochs=CITED_SLOPE_EPOCHS)
    if metric not in HISTORY_METRICS:
        raise LookupError(f"{c.text}: unknown metric '{c.metric}'")
    if c.last is not None:  # the mean over a range of epochs
        return scale * history.loc[c.epoch:c.last, HISTORY_METRICS[metric]].mean()
    return scale * history.loc[c.epoch, HISTORY_METRICS[metric]]


def check(paths: list[Path], examples: Path = ROOT / "examples") -> list[str]:
    """Every problem found: a citation no record bears out, or a bare percentage."""
    problems = []
    for path in paths:
        found, bare = citations(path)
        for text in bare:
            problems.append(f"{path}: '{text}' is quoted without a citation of the record "
                            "that shows it")
        for c in found:
            try:
                value = recorded(c, examples)
            except (LookupError, OSError, KeyError) as exc:
                problems.append(f"{path}: {exc}")
                continue
            if round(value, _digits(c.value)) != round(float(c.value), _digits(c.value)):
                problems.append(f"{path}: {c.text} -- the record shows {value:.4f}")
    return problems


def study_params() -> list[Path]:
    """The params files whose headers explain a study's choices."""
    return sorted(p for folder in STUDY_FOLDERS for p in (ROOT / "params" / folder).glob("*.yaml"))


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv or [])] or study_params()
    problems = check(paths)
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
