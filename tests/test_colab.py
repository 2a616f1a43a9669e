"""The notebooks as Colab runs them: the notebook alone, the kit from pip, nothing else.

Opened from its badge, a notebook has no clone beside it: only the kit that
``pip install git+...`` built and installed. These tests do the same without
Colab: build a wheel of the project (not an editable install), install it into
a fresh virtual environment, copy **only** the notebook into an empty folder,
execute it there with papermill, and check the figures it produced.

The fresh environment installs the wheel *with* its declared dependencies, at
the tested versions of ``requirements.txt`` (pip's cache makes that quick after
the set-up): a dependency the wheel forgets to declare, or a file it forgets to
ship (the data sample, the example records), fails here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def colab(tmp_path_factory, kit_wheel) -> dict:
    """A fresh venv with the kit installed from its wheel, and a clean environment for it."""
    root = tmp_path_factory.mktemp("colab")
    wheel = kit_wheel  # built once per session (tests/conftest.py)
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["JUPYTER_DATA_DIR"] = str(root / "jupyter")  # no user-level kernel spec can interfere
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    _run([str(python), "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
          "-c", str(REPO / "requirements.txt"), str(wheel)], env=env)
    return {"python": python, "env": env, "root": root}


def _execute(colab: dict, notebook: str, name: str) -> tuple[Path, dict]:
    """Copy one notebook into an empty folder and execute it there with papermill."""
    work = colab["root"] / name
    work.mkdir()
    shutil.copy2(NOTEBOOKS / notebook, work / notebook)
    _run([str(colab["python"]), "-m", "papermill", "--no-progress-bar", notebook,
          f"executed-{notebook}"], cwd=work, env=colab["env"])
    return work, json.loads((work / f"executed-{notebook}").read_text())


def _images(nb: dict) -> int:
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"]
               for out in cell.get("outputs", []))


@pytest.mark.slow(35)
def test_the_kit_comes_from_the_wheel(colab):
    where = _run([str(colab["python"]), "-c", "import swin_gao_lib; print(swin_gao_lib.__file__)"],
                 cwd=colab["root"], env=colab["env"]).stdout.strip()
    assert Path(where).is_relative_to(colab["root"] / "env"), where


@pytest.mark.slow(27)
def test_train_notebook_alone(colab):
    work, nb = _execute(colab, "train.ipynb", "train")
    assert _images(nb) >= 1  # the train vs validation curves
    runs = list((work / "outputs" / "notebook").glob("*/metrics.json"))
    assert len(runs) == 1
    metrics = json.loads(runs[0].read_text())
    assert "SAMPLE of mnist" in metrics["data"] and metrics["optimizer_updates"] > 0


@pytest.mark.slow(22)
def test_report_notebook_alone_shows_the_bundled_example(colab):
    work, nb = _execute(colab, "report.ipynb", "report")
    assert _images(nb) >= 2  # Figs. 3-4 and 5-6 at least
    report = work / "example-report"
    for figure in ("training_time", "accuracy_curves"):
        assert (report / f"{figure}.png").stat().st_size > 0
    summary = (report / "summary.csv").read_text()
    for run in ("mnist-baseline", "mnist-gao", "cifar10-baseline", "cifar10-gao"):
        assert run in summary
