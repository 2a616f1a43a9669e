"""How long a suite's runs took, part by part, against what tools/study_cost.py predicted.

A long suite may be stopped and started again (``run-all`` resumes it), and its
parts may run on a quiet or a busy machine. This script reads when each run
ran -- its executed notebook's papermill start and end times -- splits the
suite into *parts* wherever no run was active for more than ``--gap`` minutes,
and prints per part: the runs, the span, the worker-seconds, and for the runs
that completed their actual time against the cost model's prediction
(``--cost``, the ``cost.json`` of ``tools/study_cost.py``). From a part's ratio
it prices the whole suite: the complete runs at that ratio, the failed ones
(which stop early) at what they took.

Notebooks are not kept with committed records, so ``--write`` stores the times
as ``run_times.csv`` in the suite folder, and the script reads that file when
the notebooks are gone::

    python benchmarks/suite_times.py outputs/study-quick --write
    python benchmarks/suite_times.py examples/study-quick \\
        --cost examples/study-tuning/cost/study-quick-16/cost.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

TIMES = "run_times.csv"
FIELDS = ["run", "start", "end", "seconds", "complete"]


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def read_times(suite: Path) -> list[dict]:
    """Each run's start and end (epoch seconds) and whether it completed, oldest first.

    From the executed notebooks, and for runs without one (committed records keep
    none) from the stored ``run_times.csv``: a suite resumed with a few new runs
    keeps its earlier runs' times when ``--write`` stores them again.
    """
    rows = {}
    if (suite / TIMES).is_file():
        with (suite / TIMES).open(newline="") as f:
            rows = {r["run"]: {"run": r["run"], "start": float(r["start"]),
                               "end": float(r["end"]), "seconds": float(r["seconds"]),
                               "complete": r["complete"] == "True"}
                    for r in csv.DictReader(f)}
    notebooks = sorted(suite.glob("*/train.ipynb"))
    for nb in notebooks:
        meta = json.loads(nb.read_text()).get("metadata", {}).get("papermill", {})
        if not meta.get("start_time") or not meta.get("end_time"):
            continue
        start, end = _time(meta["start_time"]), _time(meta["end_time"])
        rows[nb.parent.name] = {"run": nb.parent.name, "start": start, "end": end,
                                "seconds": end - start,
                                "complete": (nb.parent / "metrics.json").is_file()}
    if not rows and not notebooks:
        raise SystemExit(f"{suite}: no executed notebooks and no {TIMES}")
    rows = list(rows.values())
    return sorted(rows, key=lambda r: r["start"])


def parts(rows: list[dict], gap_s: float) -> list[list[dict]]:
    """Runs grouped into stretches of activity: a new part wherever nothing ran for gap_s."""
    out: list[list[dict]] = []
    busy_until = None
    for r in rows:
        if busy_until is None or r["start"] - busy_until > gap_s:
            out.append([])
        out[-1].append(r)
        busy_until = r["end"] if busy_until is None else max(busy_until, r["end"])
    return out


def summary(rows: list[dict], predicted: dict[str, float] | None, workers: int,
            gap_s: float) -> list[str]:
    lines, stretches = [], parts(rows, gap_s)
    for i, part in enumerate(stretches, 1):
        span = max(r["end"] for r in part) - min(r["start"] for r in part)
        first = datetime.fromtimestamp(min(r["start"] for r in part), timezone.utc)
        last = datetime.fromtimestamp(max(r["end"] for r in part), timezone.utc)
        when = f"{first:%Y-%m-%d %H:%M}–{last:%H:%M} UTC"
        line = (f"part {i} ({when}): {len(part)} runs, span {span / 60:.1f} min, "
                f"{sum(r['seconds'] for r in part):,.0f} worker-seconds")
        done = [r for r in part if r["complete"] and predicted and r["run"] in predicted]
        if done:
            actual, model = sum(r["seconds"] for r in done), sum(predicted[r["run"]] for r in done)
            ratio = actual / model
            line += (f"; its {len(done)} complete runs took {actual:,.0f} s against "
                     f"{model:,.0f} s predicted: x{ratio:.3f}")
            complete_model = sum(predicted.get(r["run"], 0.0) for r in rows if r["complete"])
            failed = sum(r["seconds"] for r in rows if not r["complete"])
            whole = complete_model * ratio + failed
            line += (f"; the whole suite at that rate: {whole:,.0f} worker-seconds, "
                     f"{whole / workers / 3600:.2f} h on {workers} workers")
        lines.append(line)
    total = sum(r["seconds"] for r in rows)
    failed = [r for r in rows if not r["complete"]]
    spans = sum(max(r["end"] for r in p) - min(r["start"] for r in p) for p in stretches)
    lines.append(f"all: {len(rows)} runs ({len(failed)} failed, "
                 f"{sum(r['seconds'] for r in failed):,.0f} worker-seconds), "
                 f"{total:,.0f} worker-seconds; spans summed {spans / 3600:.2f} h")
    if predicted and failed:
        lines.append(f"the failed runs were predicted at "
                     f"{sum(predicted.get(r['run'], 0.0) for r in failed):,.0f} worker-seconds "
                     "(the model prices every run to its last epoch)")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("suite", type=Path)
    ap.add_argument("--cost", type=Path, help="tools/study_cost.py's cost.json for this suite")
    ap.add_argument("--workers", type=int, default=None,
                    help="default: the cost file's, else 1")
    ap.add_argument("--gap", type=float, default=5.0,
                    help="minutes without a running run that start a new part (default 5)")
    ap.add_argument("--write", action="store_true", help=f"store the times as SUITE/{TIMES}")
    args = ap.parse_args(argv)
    rows = read_times(args.suite)
    if args.write:
        with (args.suite / TIMES).open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows({**r, "start": f"{r['start']:.3f}", "end": f"{r['end']:.3f}",
                              "seconds": f"{r['seconds']:.3f}"} for r in rows)
    predicted, workers = None, args.workers or 1
    if args.cost:
        cost = json.loads(args.cost.read_text())
        predicted = {r["run"]: r["run_s"] for r in cost["runs"]}
        workers = args.workers or cost.get("workers", 1)
    print("\n".join(summary(rows, predicted, workers, 60 * args.gap)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
