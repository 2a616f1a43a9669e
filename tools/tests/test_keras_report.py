"""tools/keras_accumulation_report.py: the report for Keras's maintainers runs and says what it shows.

One small run (a few hundred parameters, three timed rounds) in a fresh
process, as a user runs it; its JSON is checked against closed forms (the
schedule's values) and its printed text against the JSON. Times are printed
by the script and never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "keras_accumulation_report.py"
N, UPDATES = 4, 4


def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("keras-report") / "report.json"
    proc = run("--steps", str(N), "--updates", str(UPDATES), "--params", "400", "--rounds", "3",
               "--warmup", "1", "--json", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_it_runs_on_jax_and_names_its_versions(report):
    r, text = report
    assert r["versions"]["backend"] == "jax"
    import keras

    assert r["versions"]["keras"] == keras.__version__
    assert f"Keras {keras.__version__} on jax" in text.splitlines()[0]


def test_keras_reads_the_schedule_at_micro_steps_and_the_fix_at_updates(report):
    import math

    s = report[0]["schedule"]
    cosine = [0.1 * (1 + math.cos(math.pi * min(k, UPDATES) / UPDATES)) / 2 for k in range(N * UPDATES)]
    for row in s["rows"]:
        k = row["update"]
        assert row["micro_step"] == N * k + N - 1
        assert row["schedule_at_micro_step"] == pytest.approx(cosine[N * k + N - 1], abs=1e-6)
        assert row["keras"] == pytest.approx(cosine[N * k + N - 1], abs=1e-6)
        assert row["fixed"] == pytest.approx(cosine[k], abs=1e-6)
        assert row["no_accumulation"] == pytest.approx(cosine[k], abs=1e-6)
    assert (s["iterations_after"], s["micro_steps_after"]) == (UPDATES, N * UPDATES)
    assert s["fit_total_keras"] == pytest.approx(s["sum_schedule_at_micro_steps"], abs=1e-5)
    assert s["fit_total_fixed"] == pytest.approx(s["sum_schedule_at_updates"], abs=1e-5)


def test_keras_runs_the_update_on_every_micro_step_and_the_fixes_once_per_group(report):
    e = report[0]["executions"]
    micro = e["keras"]["micro_steps"]
    assert e["no_accumulation"]["update_executions"] == micro
    assert e["keras"]["update_executions"] == micro
    assert e["fix_cond"]["update_executions"] == micro // N
    assert e["fix_while"]["update_executions"] == micro // N


def test_the_compiled_steps_have_the_structure_the_report_describes(report):
    comp = {name: row["compiled"] for name, row in report[0]["cost"].items()
            if isinstance(row, dict) and "compiled" in row}
    assert comp["no_accumulation"] == {"parameter_sized_copies": 0, "conditionals": 0, "while_loops": 0}
    assert comp["keras"]["conditionals"] >= 1 and comp["keras"]["parameter_sized_copies"] > 0
    assert (comp["fix_cond"]["conditionals"], comp["fix_cond"]["while_loops"]) == (1, 0)
    assert comp["fix_while"]["while_loops"] == 1


def test_the_fixes_give_keras_numbers(report):
    for name, diffs in report[0]["equivalence"].items():
        assert diffs == {"fix_cond": 0.0, "fix_while": 0.0, "moved_between_updates": 0.0}, name


def test_the_printed_tables_show_the_json(report):
    r, text = report
    assert "1. Learning-rate schedule" in text and "4. The fixes" in text
    for variant in ("no_accumulation", "keras", "fix_cond", "fix_while"):
        cpu = r["cost"][variant]["cpu"]["ms_per_micro_step"]
        assert cpu > 0 and f"{cpu:.2f}" in text
        assert r["fit"][variant]["cpu_ms"] > 0
    row = r["schedule"]["rows"][1]
    assert f"{row['keras']:.5f}" in text and f"{row['fixed']:.5f}" in text


@pytest.mark.parametrize("args, field", [(["--steps", "1"], "--steps"), (["--rounds", "0"], "--rounds")])
def test_bad_input_is_one_clear_line_and_exit_2(args, field):
    proc = run(*args, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert f"{field} must be >=" in proc.stderr


def test_an_existing_json_path_is_not_overwritten(tmp_path):
    out = tmp_path / "kept.json"
    out.write_text("mine")
    proc = run("--json", str(out), timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "exists" in proc.stderr
    assert out.read_text() == "mine"
