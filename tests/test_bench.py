"""The benchmark runs at a tiny size and writes valid JSON. No timing is asserted."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import quick_xla_compile
from swin_gao_lib import cli
from swin_gao_lib.bench.specs import Spec, plan
from swin_gao_lib.bench.summary import summarise, trend


def test_plan_covers_variants():
    specs = plan(["paper"], 8, [1, 2, 4], [False, True], ["float32"], 2, 1)
    keys = [s.key for s in specs]
    tf = "tensorflow/paper/B8"
    assert f"{tf}/N1/plain_full" in keys and f"{tf}/N1/plain_full+xla" in keys
    for n in (2, 4):
        for v in ("plain_micro", "in_step", "optimizer"):
            assert f"{tf}/N{n}/{v}" in keys and f"{tf}/N{n}/{v}+xla" in keys
    assert f"{tf}/N1/plain_full+xla+tensors" in keys
    assert len(keys) == len(set(keys)) == 2 * (1 + 2 * 3) + 1


def test_plan_across_backends_and_precisions():
    specs = plan(["paper"], 8, [1, 2], [False, True], ["float32", "mixed_bfloat16"], 2, 1,
                 backends=["tensorflow", "jax"])
    keys = {s.key for s in specs}
    # JAX always compiles: one XLA mode, no "+xla" in its keys
    assert "jax/paper/B8/N2/in_step+mixed_bfloat16" in keys
    assert not any(k.startswith("jax/") and "+xla" in k for k in keys)
    assert all(s.jit for s in specs if s.backend == "jax")
    per_backend = {b: sum(s.key.startswith(b + "/") for s in specs) for b in ("tensorflow", "jax")}
    assert per_backend == {"tensorflow": 2 * 2 * 4 + 1, "jax": 2 * 4 + 1}


def test_spec_configs():
    assert Spec("paper", 8, 4, "in_step").config().micro_batch_size == 2
    assert Spec("paper", 8, 4, "optimizer").config().fit_batch_size == 2
    assert Spec("paper", 8, 4, "plain_micro").config().batch_size == 2
    # optimizer mode is timed per update: N micro-steps of B/N samples
    assert Spec("paper", 8, 4, "optimizer").step_samples() == 8
    assert Spec("paper", 8, 4, "optimizer").micro_steps_per_unit() == 4
    assert Spec("paper", 8, 4, "plain_micro").step_samples() == 2
    assert Spec("large", 8, 1, "plain_full").config().depths == (2, 2, 2)
    assert Spec("paper", 8, 1, "plain_full", backend="jax").config().backend == "jax"


def test_trend_is_last_third_over_first_third():
    assert trend([1.0, 1.0]) is None
    assert trend([1.0, 1.0, 1.0, 2.0, 2.0, 2.0]) == pytest.approx(2.0)
    assert trend([3.0, 1.0, 1.0, 1.0, 1.0, 1.0]) == pytest.approx(1 / 2)


def _fake(variant, n, step_s, samples, mem, backend="tensorflow", jit=False, idle=100.0):
    s = Spec("paper", 8, n, variant, backend=backend, jit=jit)
    return {"key": s.key, "spec": s.__dict__, "step_times_s": [step_s] * 3,
            "step_samples": samples, "peak_memory_mib": mem,
            "peak_memory_increase_mib": mem - idle}


def test_summary_ratios_against_hand_numbers():
    rows = {r["key"]: r for r in summarise([
        _fake("plain_full", 1, 0.8, 8, 1000), _fake("plain_micro", 2, 0.5, 4, 600),
        _fake("in_step", 2, 1.0, 8, 630), _fake("optimizer", 2, 1.1, 8, 640)])}
    r = rows["tensorflow/paper/B8/N2/in_step"]
    assert r["s_per_sample"] == pytest.approx(0.125)
    assert r["time_vs_plain_micro"] == pytest.approx(1.0)  # 0.125 / (0.5 / 4)
    assert r["time_vs_plain_full"] == pytest.approx(1.25)  # 0.125 / 0.1
    assert r["memory_vs_plain_micro"] == pytest.approx(1.05)
    assert r["memory_vs_plain_full"] == pytest.approx(0.63)
    assert r["memory_increase_vs_plain_micro"] == pytest.approx(530 / 500)
    assert r["between_process_spread"] == 0.0 and r["trend_flagged"] is False
    assert rows["tensorflow/paper/B8/N2/optimizer"]["time_vs_plain_micro"] == pytest.approx(1.1)


def test_summary_spread_between_processes_and_jax_over_tf():
    a = _fake("plain_full", 1, 0.8, 8, 1000)
    b = dict(_fake("plain_full", 1, 1.2, 8, 1000))
    j = _fake("plain_full", 1, 0.4, 8, 500, backend="jax", jit=True)
    t_xla = _fake("plain_full", 1, 0.5, 8, 900, jit=True)
    rows = {r["key"]: r for r in summarise([a, b, j, t_xla])}
    tf = rows["tensorflow/paper/B8/N1/plain_full"]
    assert tf["repeats"] == 2 and tf["s_per_sample_process_median"] == pytest.approx(0.125)
    assert tf["between_process_spread"] == pytest.approx((0.15 - 0.1) / 0.125)
    jx = rows["jax/paper/B8/N1/plain_full"]
    assert jx["time_jax_vs_tf_no_xla"] == pytest.approx(0.4 / 1.0)  # median of 0.8 and 1.2
    assert jx["time_jax_vs_tf_xla"] == pytest.approx(0.8)
    assert jx["memory_jax_vs_tf_xla"] == pytest.approx(500 / 900)


@pytest.mark.slow(20)
def test_bench_smoke_writes_valid_json(tmp_path, capsys):
    # TensorFlow, a worker process per spec: in-step against its reference (every variant runs
    # in the JAX smoke below); the tiny model: the bench's machinery, not the paper's cost
    code = cli.main(["bench", "--backend", "tensorflow", "--models", "tiny", "--batch", "4",
                     "--n", "1", "2", "--jit", "off", "--steps", "3", "--warmup", "1",
                     "--repeats", "1", "--dataset", "mnist", "--variants", "plain_full",
                     "in_step", "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr()
    report = json.loads((tmp_path / "bench.json").read_text())
    assert {r["key"] for r in report["summary"]} == {
        "tensorflow/tiny/B4/N1/plain_full", "tensorflow/tiny/B4/N2/in_step",
        "tensorflow/tiny/B4/N1/plain_full+tensors"}
    for r in report["summary"]:
        assert "error" not in r and r["s_per_sample"] > 0 and r["peak_memory_mib"] > 0
        assert r["peak_memory_increase_mib"] is not None
    assert all(len(r["step_times_s"]) == 3 and r["losses_finite"] for r in report["raw"])
    assert set(report["versions"]) == {"tensorflow"}
    assert (tmp_path / "bench.png").stat().st_size > 0
    md = (tmp_path / "bench.md").read_text()
    assert "in_step" in md and "between processes" in md


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
@pytest.mark.slow(60)
def test_jax_bench_runs_with_tensorflow_unimportable(tmp_path):
    # A stand-in `tensorflow` package that fails to import, first on PYTHONPATH, so the
    # bench driver and every worker process it starts run as on a machine without TF.
    blocker = tmp_path / "blocked"
    (blocker / "tensorflow").mkdir(parents=True)
    (blocker / "tensorflow" / "__init__.py").write_text(
        "raise ImportError('tensorflow is blocked by the test')\n")
    env = quick_xla_compile(dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(blocker), str(Path(__file__).resolve().parents[1])])))
    env.pop("KERAS_BACKEND", None)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "swin_gao_lib.cli", "bench", "--backend", "jax", "--models", "tiny",
         "--batch", "4",
         "--n", "1", "2", "--steps", "2", "--warmup", "1", "--repeats", "1", "--dataset", "mnist",
         "--out", str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "bench.json").read_text())
    b = "jax"
    assert {r["key"] for r in report["summary"]} == {
        f"{b}/tiny/B4/N1/plain_full", f"{b}/tiny/B4/N2/plain_micro", f"{b}/tiny/B4/N2/in_step",
        f"{b}/tiny/B4/N2/optimizer", f"{b}/tiny/B4/N1/plain_full+tensors"}
    for r in report["summary"]:
        assert "error" not in r and r["s_per_sample"] > 0 and r["peak_memory_mib"] > 0
    assert all(len(r["step_times_s"]) == 2 and r["losses_finite"] for r in report["raw"])
    assert set(report["versions"]) == {"jax"}


def test_plan_fit_level_lines():
    specs = plan(["tiny"], 8, [1, 2], [False], ["float32"], 2, 1, backends=["tensorflow", "jax"],
                 levels=["fit"], pipelines=["host", "device"], seeds=[1, 4], epochs=3)
    keys = {s.key for s in specs}
    # TensorFlow: the host pipeline only; JAX: host, device alone, device 4 seeds side by side
    assert "tensorflow/tiny/B8/N1/plain_full+fit" in keys
    assert not any(k.startswith("tensorflow/") and "+device" in k for k in keys)
    for tail in ("+fit", "+fit+device", "+fit+device+seeds4"):
        assert f"jax/tiny/B8/N2/in_step{tail}" in keys
    assert len(keys) == len(specs) == 4 * (1 + 3)  # no pipeline check at the fit level
    assert all(s.config().pipeline == ("device" if "+device" in s.key else "host") for s in specs)
    with pytest.raises(ValueError, match="--pipeline device: runs on the JAX backend"):
        plan(["tiny"], 8, [1], [False], ["float32"], 2, 1, levels=["fit"], pipelines=["device"])
    with pytest.raises(ValueError, match="--seeds: runs side by side on the device"):
        plan(["tiny"], 8, [1], [False], ["float32"], 2, 1, levels=["fit"], seeds=[4])
    with pytest.raises(ValueError, match="mixed_float16"):
        plan(["tiny"], 8, [1], [False], ["mixed_float16"], 2, 1, levels=["fit"])


def _fit(variant, n, epoch_s, images, seeds=1, pipeline="device", mem=500.0):
    s = Spec("paper", 128, n, variant, backend="jax", jit=True, level="fit", pipeline=pipeline,
             seeds=seeds)
    return {"key": s.key, "spec": s.__dict__, "step_times_s": [epoch_s] * 3,
            "step_samples": images * seeds, "peak_memory_mib": mem,
            "peak_memory_increase_mib": mem, "train_images_per_s": images * seeds / epoch_s,
            "compile_s": 5.0, "test_accuracy": [0.5] * seeds}


def test_fit_level_ratios_against_hand_numbers():
    rows = summarise([_fit("plain_full", 1, 0.1, 4000), _fit("in_step", 4, 0.125, 4000),
                      _fit("plain_full", 1, 0.2, 4000, pipeline="host"),
                      _fit("plain_full", 1, 0.4, 4000, seeds=10)])
    by = {r["key"]: r for r in rows}
    one = by["jax/paper/B128/N1/plain_full+fit+device"]
    assert one["images_per_s"] == pytest.approx(40_000) and one["time_device_vs_host"] == 0.5
    assert by["jax/paper/B128/N4/in_step+fit+device"]["time_vs_plain_full"] == pytest.approx(1.25)
    ten = by["jax/paper/B128/N1/plain_full+fit+device+seeds10"]
    assert ten["images_per_s"] == pytest.approx(100_000)
    assert ten["throughput_vs_one_seed"] == pytest.approx(2.5)


def test_fit_level_smoke_writes_the_fit_table(tmp_path, capsys):
    code = cli.main(["bench", "--backend", "tensorflow", "--models", "tiny", "--batch", "16",
                     "--n", "1", "--jit", "off", "--level", "fit", "--epochs", "2",
                     "--train-samples", "32", "--repeats", "1", "--dataset", "mnist",
                     "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr()
    report = json.loads((tmp_path / "bench.json").read_text())
    (row,) = report["summary"]
    assert row["key"] == "tensorflow/tiny/B16/N1/plain_full+fit"
    assert row["images_per_s"] > 0 and row["train_images_per_s"] > 0 and row["compile_s"] >= 0
    assert len(report["raw"][0]["step_times_s"]) == 1  # epoch 2; epoch 1 compiled
    md = (tmp_path / "bench.md").read_text()
    assert "Fit level" in md and "Targets" not in md
