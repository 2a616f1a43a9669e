"""benchmarks/eta_replay.py: a finished suite's records replayed through the time-left estimate."""

import importlib.util
import json
from pathlib import Path

import pytest
import yaml

from swin_gao_lib.runs.plan import plan_suite

ROOT = Path(__file__).resolve().parents[2]
BASE = dict(dataset="mnist", source="sample", max_train_samples=100, max_test_samples=32,
            batch_size=50, embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8)


def _notebook(start: float, end: float, train_start: float, train_s: float) -> dict:
    """An executed notebook as papermill leaves it: the times eta_replay reads."""
    iso = lambda t: f"2026-11-29T{int(t // 3600):02d}:{int(t % 3600 // 60):02d}:{t % 60:06.3f}Z"
    return {"metadata": {"papermill": {"start_time": iso(start), "end_time": iso(end)}},
            "cells": [{"cell_type": "code", "source": ["result = train(cfg)"],
                       "metadata": {"papermill": {"start_time": iso(train_start),
                                                  "duration": train_s}}}]}


def test_the_replay_reads_a_suite_with_a_failed_run(tmp_path):
    """benchmarks/eta_replay.py stopped on the quick study: its diverged runs have no
    metrics.json. A failed run is replayed up to its failure and ends as a failure."""
    spec = importlib.util.spec_from_file_location("eta_replay",
                                                  ROOT / "benchmarks" / "eta_replay.py")
    eta_replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eta_replay)
    params = tmp_path / "params"
    params.mkdir()
    for name, extra in (("a", {}), ("b", {"learning_rate": 1e30})):
        (params / f"{name}.yaml").write_text(yaml.safe_dump({**BASE, **extra}))
    plans = {p.run_dir.name: p for p in plan_suite(sorted(params.glob("*.yaml")), tmp_path / "out")}
    suite = tmp_path / "suite"
    for i, (name, plan) in enumerate(sorted(plans.items())):
        run = suite / plan.run_dir.name
        run.mkdir(parents=True)
        start = 36000.0 + 100 * i
        if name == "a":  # complete: two epochs of 30 s in a fit of 62 s
            (run / "history.csv").write_text("epoch,epoch_s,compile_s\n1,30,5\n2,30,0\n")
            (run / "metrics.json").write_text(json.dumps({"fit_wall_s": 62.0}))
            nb = _notebook(start, start + 80, start + 10, 66.0)
        else:  # diverged in its first epoch: no epoch row, no metrics
            (run / "history.csv").write_text("epoch,epoch_s,compile_s\n")
            (run / "failure.json").write_text('{"diverged": true, "epoch": 1, "step": 2}')
            nb = _notebook(start, start + 20, start + 10, 6.0)
        (run / "train.ipynb").write_text(json.dumps(nb))
    result = eta_replay.replay(suite, tmp_path / "params", total=None, report_s=5.0)
    labels = [(name, label) for *_, name, label in result["timeline"]]
    assert labels == [(plans["a"].run_dir.name, 1), (plans["a"].run_dir.name, 2),
                      (plans["a"].run_dir.name, "done"), (plans["b"].run_dir.name, "failed")]
    assert result["span"] == pytest.approx(100 + 20 + 5)
    # the estimate: the image rate so far on the images left (run a's first epoch ends
    # 10 s + half its 4 s outside fit + 30 s after the suite began)
    total = sum(p.images_per_epoch * p.config.epochs for p in plans.values())
    done = plans["a"].images_per_epoch
    elapsed, left, *_ = result["timeline"][0]
    assert elapsed == pytest.approx(42) and left == pytest.approx(42 * (total - done) / done)
