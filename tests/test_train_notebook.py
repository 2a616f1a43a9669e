"""The train notebook's parameters, as a user passes them: which run it makes (the notebook cut
after its config cell, through papermill), and that a second identical run stops."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TINY_DETERMINISTIC
from swin_gao_lib.config import make_config, to_yaml
from swin_gao_lib.config.params import load_config
from swin_gao_lib.errors import ConfigError
from swin_gao_lib.records import COMPLETE_MARKER
from swin_gao_lib.runs.train_notebook import (DEMO_RUN_NAME, CompleteRunExists, notebook_config,
                                              notebook_values)

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
QUICK = "../params/quick/mnist-gao.yaml"  # as the docs write it: relative to notebooks/


def notebook_defaults() -> dict:
    """The parameters cell's values, as the notebook states them."""
    cells = json.loads((NOTEBOOKS / "train.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells
                  if "parameters" in c.get("metadata", {}).get("tags", []))
    values: dict = {}
    exec(source, {}, values)
    return values


# ------------------------------------------------------------------ the rules, fast
def test_the_demo_applies_only_without_a_params_file_and_overrides_merge_key_by_key():
    demo = notebook_defaults()["demo"]
    assert notebook_values(None, demo, {"epochs": 1}, "out", None) == {
        **demo, "epochs": 1, "output_dir": "out", "run_name": DEMO_RUN_NAME}
    assert notebook_values("p.yaml", demo, {"epochs": 1}, "out", None) == {
        "epochs": 1, "output_dir": "out"}  # the file names the run
    # output_dir and run_name win over both
    assert notebook_values(None, demo, {"run_name": "x", "output_dir": "o"}, "out", "mine")[
        "run_name"] == "mine"
    assert notebook_values(None, demo, {"run_name": "x"}, "out", None)["run_name"] == "x"
    # papermill's -p passes text: read as YAML (JSON is YAML)
    assert notebook_values(None, {}, '{"epochs": 1}', None, None) == {
        "epochs": 1, "run_name": DEMO_RUN_NAME}
    with pytest.raises(ConfigError, match=r"^overrides: expected a mapping of config keys"):
        notebook_values(None, {}, "[1, 2]", None, None)


def test_the_defaults_are_the_demo_and_never_replace_a_run():
    values = notebook_defaults()
    assert values["params_file"] is None and values["overrides"] == {}
    assert values["run_name"] is None and values["overwrite"] is False
    assert values["config_yaml"] is None


def test_run_all_config_is_taken_as_it_is_even_where_a_run_is_complete(tmp_path):
    # run-all decides itself which complete runs to skip (or re-run with --force)
    cfg = make_config(dataset="mnist", epochs=1, output_dir=str(tmp_path), run_name="r")
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / COMPLETE_MARKER).write_text("{}")
    assert notebook_config(config_yaml=to_yaml(cfg), overrides={"epochs": 9},
                           overwrite=False) == cfg
    with pytest.raises(CompleteRunExists):  # by hand, the same run stops
        notebook_config(overrides={"dataset": "mnist", "epochs": 1}, output_dir=str(tmp_path),
                        run_name="r")


# ------------------------------------------------------------------ through papermill
def config_notebook(tmp_path: Path) -> Path:
    """A copy of train.ipynb cut after its config cell (parameters, setup, config)."""
    nb = json.loads((NOTEBOOKS / "train.ipynb").read_text())
    end = next(i for i, c in enumerate(nb["cells"]) if "notebook_config(" in "".join(c["source"]))
    nb["cells"] = nb["cells"][:end + 1]
    path = tmp_path / "train-config.ipynb"
    path.write_text(json.dumps(nb))
    return path


def printed_config(executed: Path) -> dict:
    """The config the notebook printed (its config cell's YAML)."""
    cells = json.loads(executed.read_text())["cells"]
    cell = next(c for c in cells if "notebook_config(" in "".join(c["source"]))
    text = "".join("".join(o.get("text", "")) for o in cell["outputs"])
    return yaml.safe_load(text.split("micro-batch:")[0])


def papermill_cli(*args: str) -> subprocess.CompletedProcess:
    """``papermill ARGS`` as a user types it, from the repository's root."""
    return subprocess.run([sys.executable, "-m", "papermill", "--no-progress-bar", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=300)


@pytest.mark.slow(14)
def test_partial_overrides_change_only_their_keys_of_the_demo(tmp_path):
    out = tmp_path / "out.ipynb"
    proc = papermill_cli(str(config_notebook(tmp_path)), str(out), "--cwd", "notebooks",
                         "-p", "overrides", '{"epochs": 1}',
                         "-p", "output_dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    demo = notebook_defaults()["demo"]
    expected = load_config(None, {**demo, "epochs": 1, "output_dir": str(tmp_path / "runs"),
                                  "run_name": DEMO_RUN_NAME})
    assert printed_config(out) == yaml.safe_load(to_yaml(expected))
    assert printed_config(out)["max_train_samples"] == 1000  # the demo's, not all images


@pytest.mark.slow(14)
def test_a_params_file_with_overrides_as_the_docs_write_it(tmp_path):
    out = tmp_path / "out.ipynb"
    proc = papermill_cli(str(config_notebook(tmp_path)), str(out), "--cwd", "notebooks",
                         "-p", "params_file", QUICK, "-y", "overrides: {epochs: 1}",
                         "-p", "output_dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    expected = load_config(NOTEBOOKS / QUICK, {"epochs": 1, "output_dir": str(tmp_path / "runs")})
    assert printed_config(out) == yaml.safe_load(to_yaml(expected))
    printed = printed_config(out)
    assert (printed["run_name"], printed["batch_size"]) == ("mnist-gao", 128)


#: A run of a few seconds, set through the notebook's overrides on top of its demo.
TINY = {**TINY_DETERMINISTIC, "max_train_samples": 64, "max_test_samples": 32, "epochs": 1}


@pytest.mark.slow(45)
def test_a_second_identical_hand_run_stops_and_keeps_the_first(tmp_path):
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    runs = tmp_path / "runs"
    params = {"overrides": TINY, "output_dir": str(runs)}
    pm.execute_notebook(str(NOTEBOOKS / "train.ipynb"), str(tmp_path / "first.ipynb"),
                        cwd=str(NOTEBOOKS), parameters=params, progress_bar=False)
    run = runs / DEMO_RUN_NAME
    assert (run / COMPLETE_MARKER).is_file()
    before = {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}

    with pytest.raises(PapermillExecutionError) as stop:
        pm.execute_notebook(str(NOTEBOOKS / "train.ipynb"), str(tmp_path / "second.ipynb"),
                            cwd=str(NOTEBOOKS), parameters=params, progress_bar=False)
    assert stop.value.ename == "CompleteRunExists"
    assert stop.value.traceback == [  # one line: the folder and the two ways out
        f"CompleteRunExists: output: {run} already holds a complete run; set overwrite = True "
        "to replace it, or choose another run_name"]
    assert {p: p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()} == before
