"""tools/bench_targets.py: the GPU speed targets judged on a summary made from hand numbers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from swin_gao_lib.bench.specs import Spec
from swin_gao_lib.bench.summary import summarise

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench_targets import judge, markdown  # noqa: E402


def _fit(variant, n, epoch_s, images, seeds=1, pipeline="device"):
    s = Spec("paper", 128, n, variant, backend="jax", jit=True, level="fit", pipeline=pipeline,
             seeds=seeds)
    return {"key": s.key, "spec": s.__dict__, "step_times_s": [epoch_s] * 3,
            "step_samples": images * seeds, "peak_memory_mib": 500.0,
            "peak_memory_increase_mib": 500.0, "train_images_per_s": images * seeds / epoch_s,
            "compile_s": 5.0, "test_accuracy": [0.5] * seeds}


def test_targets_against_hand_numbers():
    # 40,000 images/s alone (>= 37,000), in-step N=4 at 1/1.25 = 0.8x (< 0.85x), 10 seeds at
    # 100,000 images/s (< 150,000)
    rows = summarise([_fit("plain_full", 1, 0.1, 4000), _fit("in_step", 4, 0.125, 4000),
                      _fit("plain_full", 1, 0.2, 4000, pipeline="host"),
                      _fit("plain_full", 1, 0.4, 4000, seeds=10)])
    judged = judge(rows, "NVIDIA H200")
    assert [t["verdict"] for t in judged] == ["met", "missed: 0.94 of the target",
                                              "missed: 0.67 of the target"]
    assert judged[0]["measured"] == pytest.approx(40_000)
    assert all(v["verdict"].startswith("not judged") for v in judge(rows, "cpu"))
    assert judge([], "NVIDIA H100")[0]["verdict"] == "not measured"
    table = markdown(judged).splitlines()
    assert len(table) == 2 + 3 and "| 40,000 images/s | met |" in table[2]
