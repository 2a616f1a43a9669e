"""Replay a finished suite through run-all's time-left estimate, and score it.

``swin-gao run-all`` estimates the time left from the images its runs have
trained so far (swin_gao_lib/runs/progress.py: the average rate, as tqdm's
``smoothing=0``). This script feeds that estimator a suite that already ran,
event by event, on a fake clock: each run's start and end (its executed
notebook's papermill timestamps), the end of each of its epochs (the train
cell's start, plus the part before ``fit`` — taken as half of the cell's time
outside ``fit`` — plus the epochs' recorded durations), and the report. At
every epoch end it prints the estimate beside the true time left, and at the
end the error at the suite's halfway point (the first estimate at or after
half the suite's time), so the estimate can be judged on any suite's records,
a quiet machine's or a busy one's, without running it again.

    python benchmarks/eta_replay.py examples/quick params/quick --report-s 16
    python benchmarks/eta_replay.py outputs/quick params/quick

``--total`` gives the suite's measured wall time (from the driver's start to
the report's end) when the suite folder holds no executed report notebook;
``--report-s`` the report's time if there is no report notebook either.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tempfile
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from swin_gao_lib.runs.plan import plan_suite  # noqa: E402
from swin_gao_lib.runs.progress import SuiteProgress  # noqa: E402


def _time(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _events(suite: Path, plan) -> tuple[float, float, list[tuple[float, dict]], bool]:
    """(start, end, [(time, history row)...], complete) of one run, from its notebook and
    history. A failed run (no metrics.json: it diverged, or broke) has its epochs up to the
    failure, if any; its time outside ``fit`` is not on record and counts as none."""
    notebook = json.loads((suite / plan.run_dir.name / "train.ipynb").read_text())
    meta = notebook["metadata"]["papermill"]
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    train = next(c for c in cells if "train(cfg" in "".join(c["source"]))["metadata"]["papermill"]
    folder = suite / plan.run_dir.name
    done = (folder / "metrics.json").is_file()
    metrics = json.loads((folder / "metrics.json").read_text()) if done else {}
    rows = []
    if (folder / "history.csv").is_file():
        with (folder / "history.csv").open(newline="") as f:
            rows = list(csv.DictReader(f))
    outside = max(train["duration"] - metrics.get("fit_wall_s", train["duration"]), 0.0)
    t = _time(train["start_time"]) + outside / 2
    events = []
    for row in rows:
        t += float(row["epoch_s"])
        events.append((t, row))
    return _time(meta["start_time"]), _time(meta["end_time"]), events, done


def replay(suite: Path, params: Path, total: float | None, report_s: float | None) -> dict:
    """Feed the suite's events to the estimator in time order; score it at every epoch end."""
    files = sorted(params.glob("*.yaml")) if params.is_dir() else [params]
    with tempfile.TemporaryDirectory() as tmp:
        plans = plan_suite(files, Path(tmp) / "out")
        runs = [(p, *_events(suite, p)) for p in plans]
        first = min(start for _, start, _, _, _ in runs)
        last = max(end for _, _, end, _, _ in runs)
        report_nb = suite / "report" / "report.ipynb"
        if report_nb.is_file():
            meta = json.loads(report_nb.read_text())["metadata"]["papermill"]
            end = _time(meta["end_time"])
        elif total is not None:
            end = first + total
        else:
            end = last + (report_s or 0.0)
        t0 = first
        events = []  # (time, order, kind, plan, rows so far)
        for plan, start, stop, epochs, done in runs:
            events.append((start, 0, "start", plan, None))
            for i, (when, _) in enumerate(epochs, 1):
                events.append((when, 1, "epoch", plan, [row for _, row in epochs[:i]]))
            events.append((stop, 2, "finish" if done else "fail", plan, None))
        events.sort(key=lambda e: (e[0], e[1]))
        clock = {"t": t0}
        progress = SuiteProgress(plans, "replay", ticker=False, clock=lambda: clock["t"],
                                 enabled=False)
        timeline = []
        for when, _, kind, plan, rows in events:
            clock["t"] = when
            if kind == "start":
                progress.start(plan)
                continue
            if kind == "epoch":
                plan.run_dir.mkdir(parents=True, exist_ok=True)
                with (plan.run_dir / ".h.csv").open("w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                    writer.writeheader()
                    writer.writerows(rows)
                (plan.run_dir / ".h.csv").replace(plan.run_dir / "history.csv")
                progress.poll()
                label = len(rows)
            else:
                progress.finish(plan, ok=kind == "finish")
                label = "done" if kind == "finish" else "failed"
            timeline.append((when - t0, progress.remaining(), end - when, plan.run_dir.name,
                             label))
        shutil.rmtree(Path(tmp) / "out", ignore_errors=True)
    span = end - t0
    half = next(((e, l, tr) for e, l, tr, *_ in timeline if e >= span / 2 and l is not None),
                None)
    return {"span": span, "timeline": timeline, "half": half}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite", type=Path, help="a suite's output folder (run folders with "
                        "their executed train.ipynb)")
    parser.add_argument("params", type=Path, help="the params folder or file it was run from")
    parser.add_argument("--total", type=float, default=None,
                        help="the suite's measured wall time in seconds, report included")
    parser.add_argument("--report-s", type=float, default=None)
    args = parser.parse_args(argv)
    result = replay(args.suite, args.params, args.total, args.report_s)
    def error(left, true):
        return f"{(left - true) / true:+.0%}" if left is not None and true > 0 else "-"

    print(f"{'elapsed':>8} {'estimate':>9} {'true':>6} {'error':>6}  run, epoch")
    for elapsed, left, true, run, epoch in result["timeline"]:
        shown = f"{left:9.0f}" if left is not None else "        ?"
        print(f"{elapsed:8.0f} {shown} {true:6.0f} {error(left, true):>6}  {run}, {epoch}")
    if result["half"]:
        elapsed, left, true = result["half"]
        print(f"halfway ({elapsed:.0f} s of {result['span']:.0f} s): estimate {left:.0f} s, "
              f"true {true:.0f} s, error {error(left, true)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
