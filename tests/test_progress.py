"""The suite's time left on hand-made histories and a fake clock: elapsed x images left / images
trained since the start, skipped runs, resumed epochs and a failed run's rest in neither count."""

import io
from pathlib import Path

import pytest
import yaml

from swin_gao_lib.runs.plan import plan_suite
from swin_gao_lib.runs.progress import SuiteProgress

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
    plan.run_dir.mkdir(parents=True, exist_ok=True)
    lines = ["epoch,epoch_s,compile_s"] + [f"{i},{e},{c}" for i, (e, c) in enumerate(rows, 1)]
    tmp = plan.run_dir / ".h.tmp"
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(plan.run_dir / "history.csv")  # a new inode, as the kit's atomic writes


def _progress(plans, clock, **kw):
    return SuiteProgress(list(plans.values()), "test", ticker=False, clock=clock,
                         stream=io.StringIO(), interactive=False, **kw)


def test_time_left_is_the_average_rate_on_the_images_left(tmp_path):
    # a: 3 epochs, b: 2 epochs; 100 training images per epoch each (max_train_samples)
    plans = _plans(tmp_path, a=dict(epochs=3), b=dict(epochs=2))
    a, b = plans["a"], plans["b"]
    assert a.images_per_epoch == b.images_per_epoch == 100
    clock = Clock()
    progress = _progress(plans, clock)
    progress.start(a)
    clock.t += 8.0
    assert progress.remaining() is None  # nothing trained yet: no rate
    _history(a, [(5.0, 1.0)])
    progress.poll()
    assert progress.images() == (100, 500)
    assert progress.remaining() == pytest.approx(8.0 * 400 / 100)
    clock.t += 12.0
    _history(a, [(5.0, 1.0), (5.0, 0.0)])
    progress.poll()
    assert progress.remaining() == pytest.approx(20.0 * 300 / 200)
    assert progress.fraction() == pytest.approx(200 / 500)
    progress.report_start()
    assert progress.remaining() is None  # the report is not counted in images


def test_a_failed_run_leaves_its_untrained_epochs_out(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=4), b=dict(epochs=1))
    clock = Clock()
    progress = _progress(plans, clock)
    progress.start(plans["a"])
    clock.t += 10.0
    _history(plans["a"], [(5.0, 0.0)])
    progress.finish(plans["a"], ok=False)  # diverged in its second epoch
    assert progress.images() == (100, 200)
    assert progress.remaining() == pytest.approx(10.0 * 100 / 100)
    assert "1 failed" in progress._status()


def test_skipped_runs_and_a_resumed_runs_earlier_epochs_are_in_neither_count(tmp_path):
    plans = _plans(tmp_path, a=dict(epochs=4), b=dict(epochs=4))
    clock = Clock()
    progress = _progress(plans, clock)
    progress.skip(plans["b"])
    _history(plans["a"], [(5.0, 0.0)] * 3)  # a resumes after 3 of its 4 epochs
    progress.start(plans["a"])
    assert progress.images() == (0, 100)
    clock.t += 6.0
    _history(plans["a"], [(5.0, 0.0)] * 4)
    progress.poll()
    assert progress.images() == (100, 100) and progress.remaining() == 0.0
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
    # after one epoch of three, 6 s in: 2 x 6 s left at that rate
    assert "0:06 elapsed, ~0:12 left" in lines[1] and "run 1/1 a epoch 2/3" in lines[1]
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
