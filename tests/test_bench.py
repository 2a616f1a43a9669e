"""The benchmark runs at a tiny size and writes valid JSON. No timing is asserted."""

import json

import pytest

from swin_gao_lib import cli
from swin_gao_lib.bench import Spec, plan, summarise


def test_plan_covers_variants():
    specs = plan(["paper"], 8, [1, 2, 4], [False, True], False, 2, 1)
    keys = [s.key for s in specs]
    assert "paper/B8/N1/plain_full" in keys and "paper/B8/N1/plain_full+xla" in keys
    for n in (2, 4):
        for v in ("plain_micro", "in_step", "optimizer"):
            assert f"paper/B8/N{n}/{v}" in keys and f"paper/B8/N{n}/{v}+xla" in keys
    assert "paper/B8/N1/plain_full+tensors" in keys
    assert len(keys) == len(set(keys)) == 2 * (1 + 2 * 3) + 1
    with pytest.raises(ValueError, match="not divisible"):
        plan(["paper"], 8, [3], [False], False, 2, 1)


def test_spec_configs():
    assert Spec("paper", 8, 4, "in_step").config().micro_batch_size == 2
    assert Spec("paper", 8, 4, "optimizer").config().fit_batch_size == 2
    assert Spec("paper", 8, 4, "plain_micro").config().batch_size == 2
    assert Spec("paper", 8, 4, "optimizer").step_samples() == 2
    assert Spec("large", 8, 1, "plain_full").config().depths == (2, 2, 2)


def test_summary_ratios_against_hand_numbers():
    def fake(variant, n, step_s, samples, mem):
        s = Spec("paper", 8, n, variant)
        return {"key": s.key, "spec": s.__dict__, "step_times_s": [step_s] * 3,
                "step_samples": samples, "peak_memory_mib": mem}
    rows = {r["key"]: r for r in summarise([
        fake("plain_full", 1, 0.8, 8, 1000), fake("plain_micro", 2, 0.5, 4, 600),
        fake("in_step", 2, 1.0, 8, 630), fake("optimizer", 2, 0.55, 4, 640)])}
    r = rows["paper/B8/N2/in_step"]
    assert r["s_per_sample"] == pytest.approx(0.125)
    assert r["time_vs_plain_micro"] == pytest.approx(1.0)  # 0.125 / (0.5 / 4)
    assert r["time_vs_plain_full"] == pytest.approx(1.25)  # 0.125 / 0.1
    assert r["memory_vs_plain_micro"] == pytest.approx(1.05)
    assert r["memory_vs_plain_full"] == pytest.approx(0.63)
    assert rows["paper/B8/N2/optimizer"]["time_vs_plain_micro"] == pytest.approx(1.1)


def test_bench_smoke_writes_valid_json(tmp_path, capsys):
    code = cli.main(["bench", "--batch", "4", "--n", "1", "2", "--jit", "off", "--steps", "2",
                     "--warmup", "1", "--repeats", "1", "--dataset", "mnist",
                     "--out", str(tmp_path)])
    assert code == 0, capsys.readouterr()
    report = json.loads((tmp_path / "bench.json").read_text())
    keys = {r["key"] for r in report["summary"]}
    assert keys == {"paper/B4/N1/plain_full", "paper/B4/N2/plain_micro", "paper/B4/N2/in_step",
                    "paper/B4/N2/optimizer", "paper/B4/N1/plain_full+tensors"}
    for r in report["summary"]:
        assert "error" not in r and r["s_per_sample"] > 0 and r["peak_memory_mib"] > 0
    assert all(len(r["step_times_s"]) == 2 for r in report["raw"])
    assert (tmp_path / "bench.png").stat().st_size > 0 and (tmp_path / "bench.md").is_file()
    assert "in_step" in (tmp_path / "bench.md").read_text()
