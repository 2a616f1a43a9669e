"""tools/study_cost.py prices a changed design from an earlier measurement.

The committed ``examples/study-tuning/cost/study-quick/cost.json`` was measured for the
quick study's design before its MNIST arms went from 12 to 16 epochs and its CIFAR-10 mean
arm from 3 to 10 seeds. Priced with
``--prices`` from that file, the 12-epoch design must cost exactly what the measuring run
wrote (the same arithmetic on the same measurements), and a class the file never measured
is refused with one line and exit 2.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COST = ROOT / "examples" / "study-tuning" / "cost" / "study-quick" / "cost.json"


def _design_at_12_epochs(folder: Path) -> Path:
    folder.mkdir()
    for path in sorted((ROOT / "params" / "study-quick").glob("*.yaml")):
        values = yaml.safe_load(path.read_text())
        values.pop("study", None)
        if path.name == "cifar10-controls.yaml":
            values["seeds"] = [0, 1, 2]
        if values["dataset"] == "mnist":
            values["epochs"] = 12
            for block in values["grid"]:
                if "epochs" in block:
                    block["epochs"] = [12 * e // 16 for e in block["epochs"]]
        (folder / path.name).write_text(yaml.safe_dump(values, sort_keys=False))
    return folder


def _price(params: Path, out: Path, prices: Path = COST) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "tools" / "study_cost.py"), str(params),
                           "--prices", str(prices), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_measured_design_priced_again_costs_what_was_measured(tmp_path):
    proc = _price(_design_at_12_epochs(tmp_path / "params"), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads((tmp_path / "out" / "cost.json").read_text())
    want = json.loads(COST.read_text())
    assert len(got["runs"]) == len(want["runs"]) == 163
    assert got["worker_seconds"] == pytest.approx(want["worker_seconds"], rel=1e-12)
    assert {r["run"]: r["run_s"] for r in got["runs"]} == \
        pytest.approx({r["run"]: r["run_s"] for r in want["runs"]}, rel=1e-12)


def test_a_class_never_measured_is_refused(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({"dataset": "mnist", "source": "sample", "embed_dim": 48}))
    proc = _price(params, tmp_path / "out")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "has no measurement of 1 cost class" in proc.stderr
    assert not (tmp_path / "out").exists()
