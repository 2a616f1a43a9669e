"""benchmarks/suite_times.py: a suite's parts, their worker-seconds and the model's ratio."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location("suite_times",
                                                  ROOT / "benchmarks" / "suite_times.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(suite: Path, name: str, start: float, end: float, complete: bool = True) -> None:
    iso = lambda t: f"2026-11-29T{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}Z"
    (suite / name).mkdir(parents=True)
    (suite / name / "train.ipynb").write_text(json.dumps(
        {"metadata": {"papermill": {"start_time": iso(start), "end_time": iso(end)}}, "cells": []}))
    if complete:
        (suite / name / "metrics.json").write_text("{}")


def test_parts_ratios_and_the_stored_times(tmp_path, capsys):
    st = _module()
    suite = tmp_path / "suite"
    # part 1: two workers, busy (runs take 2x the prediction); a stop of an hour; part 2
    # quiet (1x), with a run that failed early (predicted 100 s, took 10)
    _run(suite, "a", 36000, 36200)
    _run(suite, "b", 36000, 36200)
    _run(suite, "c", 40000, 40100)
    _run(suite, "d", 40000, 40010, complete=False)
    cost = tmp_path / "cost.json"
    cost.write_text(json.dumps({"workers": 2, "runs": [{"run": r, "run_s": 100.0}
                                                       for r in "abcd"]}))
    assert st.main([str(suite), "--cost", str(cost), "--write"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("part 1 (2026-11-29 10:00–10:03 UTC): 2 runs, span 3.3 min, "
                             "400 worker-seconds")
    assert "x2.000" in out[0] and "x1.000" in out[1]
    # the whole suite at part 2's rate: 3 complete runs x 100 s + the failed run's 10 s
    assert "310 worker-seconds, 0.04 h on 2 workers" in out[1]
    assert out[2].startswith("all: 4 runs (1 failed, 10 worker-seconds), 510 worker-seconds")
    assert "predicted at 100 worker-seconds" in out[3]
    # without the notebooks (committed records keep none) the stored times say the same
    for nb in suite.glob("*/train.ipynb"):
        nb.unlink()
    assert st.main([str(suite), "--cost", str(cost)]) == 0
    assert capsys.readouterr().out.splitlines() == out
    with pytest.raises(SystemExit, match="no executed notebooks"):
        st.read_times(tmp_path)


def test_stored_times_of_runs_without_notebooks_are_kept_when_written_again(tmp_path, capsys):
    """A suite resumed with new runs: --write stored only the new notebooks' times and lost
    the 163 committed runs' (their notebooks are not kept)."""
    st = _module()
    suite = tmp_path / "suite"
    _run(suite, "a", 36000, 36200)
    assert st.main([str(suite), "--write"]) == 0
    (suite / "a" / "train.ipynb").unlink()  # committed: records only
    _run(suite, "b", 40000, 40100)  # a run added later, its notebook beside it
    assert st.main([str(suite), "--write"]) == 0
    stored = [line.split(",") for line in (suite / "run_times.csv").read_text().splitlines()]
    assert [(r[0], r[3], r[4]) for r in stored] == [("run", "seconds", "complete"),
                                                   ("a", "200.000", "True"),
                                                   ("b", "100.000", "True")]
    assert float(stored[2][1]) - float(stored[1][1]) == 4000
