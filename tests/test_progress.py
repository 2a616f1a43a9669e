"""The suite's time left (runs/progress.py), on hand-made histories and a fake clock.

Each expected value is worked out by hand from the module's cost model: an
epoch costs its run's measured seconds per image (or the nearest measured
config's) times its images; a run adds its measured start and tail; runs
waiting go to the executor slot free first; the report adds a fixed estimate.
"""

import io
from pathlib import Path

import pytest
import yaml

from swin_gao_lib.runs.plan import plan_suite
from swin_gao_lib.runs.progress import REPORT_PER_RUN_S, REPORT_S, SuiteProgress

BASE = dict(dataset="mnist", source="sample", max_train_samples=100, max_test_samples=32,
            batch_size=50, embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8)


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def _plans(tmp_path: Path, **runs) -> dict:
    params = tmp_path / "params"
    params.mkdir()
    for name, extra in runs.items():
        (params / f"{name}.yaml").write_text(yaml.safe_dump({**BASE, **extra}))
    plans = plan_suite(sorted(params.glob("*.yaml")), tmp_path / "out")
    return {p.run_dir.name: p for p in plans}


def _history(plan, rows) -> None:
    """Write a run's history.csv with rows of (epoch_s, compile_s)."""
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,epoch_s,compile_s"] + [f"{i},{e},{c}" for i, (e, c) in enumerate(rows, 1)]
    tmp = plan.run_dir / ".h.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(plan.run_dir / "history.csv")  # a new inode, as the kit's atomic writes


def _progress(plans, clock, **kw):
    return SuiteProgress(list(plans.values()), "test", ticker=False, clock=clock,
                         stream=io.StringIO(), interactive=False, **kw)


def _one_epoch_runs(progress, plans, clock, **epoch_s) -> None:
    """Run each named plan for one epoch of the given seconds: a start and a tail of 1 s each."""
    for name, seconds in epoch_s.items():
        progress.start(plans[name])
        clock.t += 1.0 + seconds
        _history(plans[name], [(seconds, 0.0)])
        progress.poll()
        clock.t += 1.0
        progress.finish(plans[name])


def test_time_left_follows_the_epochs_and_the_measured_start_and_tail(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=3), b=dict(epochs=2))
    a, b = plans["a"], plans["b"]
    clock = Clock()
    progress = _progress(plans, clock, report=False)
    progress.start(a)
    assert progress.remaining() is None  # nothing measured yet: no guess
    clock.t += 12.0  # start 8 s, then a first epoch of 4 s (1 s of it compiling)
    _history(a, [(4.0, 1.0)])
    progress.poll()
    # start = 12 - (4 - 1) = 9; epoch = 3 s (100 images at 0.03 s); tail = 9 / 4 (no run ended)
    start, epoch, tail = 9.0, 3.0, 9.0 * 0.25
    assert progress.remaining() == pytest.approx(2 * epoch + tail + start + 2 * epoch + tail)
    clock.t += 1.0  # a third of the way into epoch 2
    assert progress.remaining() == pytest.approx(2.0 + epoch + tail + start + 2 * epoch + tail)
    clock.t += 2.0
    _history(a, [(4.0, 1.0), (3.0, 0.0)])
    progress.poll()
    clock.t += 3.0
    _history(a, [(4.0, 1.0), (3.0, 0.0), (3.0, 0.0)])
    progress.poll()
    clock.t += 5.0  # its tail: 5 s measured
    progress.finish(a)
    assert progress.remaining() == pytest.approx(start + 2 * epoch + 5.0)
    progress.start(b)
    clock.t += 4.0
    assert progress.remaining() == pytest.approx(start + 2 * epoch + 5.0 - 4.0)


def test_a_run_not_started_is_priced_like_the_nearest_measured_config(tmp_path):
    # a (MNIST) and c (CIFAR-10) measured at very different costs per image; d is MNIST
    # with accumulation: one key from a, several from c, so it costs what a costs.
    plans = _plans(tmp_path, a=dict(epochs=1), c=dict(epochs=1, dataset="cifar10"),
                   d=dict(epochs=2, accumulation_steps=2))
    clock = Clock()
    progress = _progress(plans, clock, report=False)
    _one_epoch_runs(progress, plans, clock, a=2.0, c=20.0)
    # start 1 s, tail 1 s (both runs); d: 2 epochs of 100 images at a's 0.02 s per image
    assert progress.remaining() == pytest.approx(1.0 + 2 * 2.0 + 1.0)


def test_a_change_measured_elsewhere_scales_the_borrowed_cost(tmp_path):
    # a, b: MNIST without and with accumulation; c: CIFAR-10 without. d (CIFAR-10 with
    # accumulation) borrows c's cost scaled by what accumulation cost on MNIST (b / a).
    plans = _plans(tmp_path, a=dict(epochs=1), b=dict(epochs=1, accumulation_steps=2),
                   c=dict(epochs=1, dataset="cifar10"),
                   d=dict(epochs=2, dataset="cifar10", accumulation_steps=2))
    clock = Clock()
    progress = _progress(plans, clock, report=False)
    _one_epoch_runs(progress, plans, clock, a=2.0, b=3.0, c=20.0)
    # start 1 s, tail 1 s; d: 2 epochs of 100 images at 0.2 s x (0.03 / 0.02) per image
    assert progress.remaining() == pytest.approx(1.0 + 2 * 30.0 + 1.0)
    # the unscaled borrow would have said c's 2 x 20 s: the scaling is what moved it
    assert progress._seconds_per_image(progress.runs[3]) == pytest.approx(0.3)


def test_waiting_runs_go_to_the_slot_free_first_and_the_report_comes_last(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=1), b=dict(epochs=1), c=dict(epochs=1),
                   d=dict(epochs=1))
    clock = Clock()
    progress = _progress(plans, clock, slots=2)
    progress.start(plans["a"])
    clock.t += 10.0  # start 5 s, epoch 5 s
    _history(plans["a"], [(5.0, 0.0)])
    progress.poll()
    clock.t += 1.25  # tail 1.25 s (a quarter of the start)
    progress.finish(plans["a"])
    report = REPORT_S + 4 * REPORT_PER_RUN_S
    # b, c, d take 5 + 5 + 1.25 = 11.25 s each; two slots: b and c at once, then d
    assert progress.remaining() == pytest.approx(2 * 11.25 + report)
    progress.report_start()
    clock.t += 3.0
    assert progress.remaining() == pytest.approx(report - 3.0)


def test_skipped_runs_leave_the_estimate_and_the_image_count(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=1), b=dict(epochs=4))
    clock = Clock()
    progress = _progress(plans, clock, report=False)
    progress.skip(plans["b"])
    progress.start(plans["a"])
    clock.t += 4.0
    _history(plans["a"], [(2.0, 0.0)])
    progress.poll()
    assert progress.remaining() == pytest.approx(0.5)  # the tail: a quarter of the 2 s start
    assert "100/100 images" in progress._status()


def test_without_a_terminal_it_writes_plain_lines(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=3))
    clock = Clock()
    stream = io.StringIO()
    progress = SuiteProgress(list(plans.values()), "run-all t", ticker=False, clock=clock,
                             stream=stream, interactive=False, log_every=20.0)
    progress.start(plans["a"])
    for epoch in (1, 2, 3):
        clock.t += 6.0
        _history(plans["a"], [(5.0, 0.0)] * epoch)
        progress.poll()
    progress.finish(plans["a"])
    progress.report_start()
    clock.t += 2.0
    progress.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0].startswith("run-all t:   0% | 0:00 elapsed, estimating time left")
    assert lines[0].endswith("run 1/1 a started")
    # epochs 2 and 3 ended within 20 s of the line before: one epoch line, not three
    assert sum("epoch" in line and "started" not in line for line in lines) == 1
    assert "~0:" in lines[1] and "run 1/1 a epoch 2/3" in lines[1]
    assert lines[-3].endswith("run 1/1 a done") and lines[-2].endswith("report started")
    assert lines[-1].startswith("run-all t: 100% | 0:20 elapsed | report done")


def test_on_a_terminal_one_bar_is_redrawn_in_place(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=2))
    clock = Clock()
    stream = io.StringIO()
    progress = SuiteProgress(list(plans.values()), "run-all t", ticker=False, clock=clock,
                             stream=stream, interactive=True)
    progress.start(plans["a"])
    clock.t += 5.0
    _history(plans["a"], [(3.0, 1.0)])
    progress.poll()
    progress.report_start()
    clock.t += 1.0
    progress.close()
    text = stream.getvalue()
    assert text.count("\n") == 1 and "\r" in text  # one line, redrawn
    frames = text.strip().split("\r")
    assert any("| 0:05 elapsed, ~" in f and "run 1/1 a epoch 2/2 | 100/200 images" in f
               for f in frames)
    assert frames[-1].startswith("run-all t: 100%|") and "0:06 elapsed | report done" in frames[-1]


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
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location(
        "eta_replay", Path(__file__).resolve().parents[1] / "benchmarks" / "eta_replay.py")
    eta_replay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(eta_replay)
    plans = _plans(tmp_path, a={}, b={"learning_rate": 1e30})
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
    # beside the cost model, tqdm's own estimate: the image rate so far on the images left
    # (run a's first epoch ends 10 s + half its 4 s outside fit + 30 s after the suite began)
    total = sum(p.images_per_epoch * p.config.epochs for p in plans.values())
    done = plans["a"].images_per_epoch
    elapsed, _, _, rate, *_ = result["timeline"][0]
    assert elapsed == pytest.approx(42) and rate == pytest.approx(42 * (total - done) / done)


def test_a_run_not_measured_borrows_the_nearest_cost_scaled_by_the_same_change_elsewhere():
    from swin_gao_lib.runs.run_costs import borrowed_cost

    def key(**kv):
        return tuple(sorted(kv.items()))

    measured = {key(dataset="cifar10", n=1): 2.0, key(dataset="cifar10", n=4): 3.0,
                key(dataset="mnist", n=1): 1.0}
    # mnist N=4 = mnist N=1 x (cifar10 N=4 / cifar10 N=1), and the same from the other side
    assert borrowed_cost(key(dataset="mnist", n=4), measured) == pytest.approx(1.5)
    # no pair shows the change: the nearest costs as they are (here both at one key's distance)
    alone = {key(dataset="cifar10", n=1): 2.0, key(dataset="mnist", n=1): 1.0}
    assert borrowed_cost(key(dataset="mnist", n=4), alone) == pytest.approx(1.0)
    assert borrowed_cost(key(dataset="svhn", n=1), alone) == pytest.approx(1.5)
