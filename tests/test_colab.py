"""The notebooks as Colab runs them: the kit from its wheel, with its declared dependencies at
the tested pins, in a fresh venv; the notebook alone in an empty folder. A dependency or a file
the wheel forgets fails here. The helpers are tools/notebooks_alone.py's (``--newest`` runs the
same checks against the newest TensorFlow and Keras)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import types as pytypes
import zipfile
from pathlib import Path

import pytest

from swin_gao_lib.runtime import machine
from swin_gao_lib.runtime.machine import tensorflow_log_filter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import notebooks_alone as alone  # noqa: E402


@pytest.fixture(scope="module")
def colab(tmp_path_factory, kit_wheel) -> dict:
    root = tmp_path_factory.mktemp("colab")
    return alone.make_env(root, kit_wheel, REPO / "requirements.txt")


@pytest.mark.slow(35)
def test_the_kit_comes_from_the_wheel(colab):
    where = alone.run([colab["python"], "-c", "import swin_gao_lib; print(swin_gao_lib.__file__)"],
                      cwd=colab["root"], env=colab["env"]).stdout.strip()
    assert Path(where).is_relative_to(colab["root"] / "env"), where
    # `swin-gao examples` copies params/ out of the package; run-all finds the notebooks there
    copied = colab["root"] / "copied-params"
    alone.run([colab["root"] / "env" / "bin" / "swin-gao", "examples", copied],
              cwd=colab["root"], env=colab["env"])
    assert ({p.relative_to(copied) for p in copied.rglob("*.yaml")}
            == {p.relative_to(REPO / "params") for p in (REPO / "params").rglob("*.yaml")})
    code = ("from swin_gao_lib.runs.execute import find_notebook\n"
            "print(find_notebook('train.ipynb'), find_notebook('report.ipynb'))")
    found = alone.run([colab["python"], "-c", code], cwd=colab["root"],
                      env=colab["env"]).stdout.split()
    assert len(found) == 2 and all(Path(f).is_relative_to(colab["root"] / "env") for f in found)


@pytest.mark.slow(15)
def test_the_wheel_ships_the_example_params_and_the_notebooks(kit_wheel):
    # setup.py copies them in when the wheel is built; the repository keeps one copy
    names = set(zipfile.ZipFile(kit_wheel).namelist())
    params = {f"swin_gao_lib/example_params/{p.relative_to(REPO / 'params').as_posix()}"
              for p in (REPO / "params").rglob("*.yaml")}
    assert len(params) > 20 and params <= names
    assert {"swin_gao_lib/notebooks/train.ipynb", "swin_gao_lib/notebooks/report.ipynb"} <= names


#: The train notebook's demo made tiny through its overrides (its defaults run under nbval).
TINY_OVERRIDES = {"dataset": "mnist", "source": "sample", "max_train_samples": 64,
                  "max_test_samples": 32, "validation_split": 0.01, "epochs": 2,
                  "batch_size": 32, "accumulation_steps": 2, "embed_dim": 16, "num_heads": [2],
                  "mlp_dim": 32, "head_units": 8}


@pytest.mark.slow(20)
def test_train_notebook_alone(colab):
    work, nb, stderr = alone.execute_alone(colab, "train.ipynb", "train",
                                           parameters={"overrides": TINY_OVERRIDES})
    assert alone.images(nb) >= 1  # the train vs validation curves
    runs = list((work / "outputs" / "notebook").glob("*/metrics.json"))
    assert len(runs) == 1
    metrics = json.loads(runs[0].read_text())
    assert "SAMPLE of mnist" in metrics["data"] and metrics["optimizer_updates"] > 0
    assert metrics["samples"]["train"] == 64  # the injected overrides, not the defaults
    # quiet: no TensorFlow start-up lines stored in the notebook, none on the terminal
    assert not alone.noise(nb, stderr)


@pytest.mark.slow(22)
def test_report_notebook_alone_shows_the_bundled_example(colab):
    work, nb, stderr = alone.execute_alone(colab, "report.ipynb", "report")
    assert alone.images(nb) >= 2  # Figs. 3-4 and 5-6 at least
    report = work / "example-report"
    for figure in ("training_time", "accuracy_curves"):
        assert (report / f"{figure}.png").stat().st_size > 0
    summary = (report / "summary.csv").read_text()
    for run in ("mnist-baseline", "mnist-gao", "cifar10-baseline", "cifar10-gao"):
        assert run in summary
    assert not alone.noise(nb, stderr)


def _setup_cell(notebook: str) -> str:
    cells = json.loads((REPO / "notebooks" / notebook).read_text())["cells"]
    return next("".join(c["source"]) for c in cells if "google.colab" in "".join(c["source"]))


def test_on_colab_the_setup_cell_clones_and_keeps_tensorflow(colab, tmp_path):
    """The setup cell's Colab branch clones the kit, installs it keeping Colab's TensorFlow and
    Keras, and moves into the clone's notebooks/, where the example paths resolve."""
    origin = tmp_path / "origin"  # the repository as committed: a clone is what Colab gets
    subprocess.run(["git", "clone", "-q", "--no-local", str(REPO), str(origin)], check=True)
    code = _setup_cell("train.ipynb").replace(
        "git+https://github.com/swin-gao/swin-gao", f"git+file://{origin}")
    code = "\n".join(line for line in code.splitlines() if not line.startswith("%"))
    before = alone.versions(colab)
    script = (
        "import sys, types\n"
        "sys.modules['google.colab'] = types.ModuleType('google.colab')  # as in Colab\n"
        f"{code}\n"
        "import os\n"
        "from swin_gao_lib.config.params import load_config\n"
        "cfg = load_config('../params/quick/mnist-gao.yaml')  # the parameters cell's example\n"
        "print(os.getcwd(), cfg.dataset, cfg.accumulation_steps)\n")
    work = tmp_path / "content"
    work.mkdir()
    out = alone.run([colab["python"], "-c", script], cwd=work, env=colab["env"]).stdout
    assert out.split()[-3:] == [str(work / "swin-gao" / "notebooks"), "mnist", "4"]
    after = alone.versions(colab)
    assert (after["tensorflow"], after["keras"]) == (before["tensorflow"], before["keras"])


# ------------------------------------------------------------------ quiet start-up, fast
def test_tensorflow_log_filter_keeps_what_the_level_allows():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795929592.312520   27768 port.cc:153] oneDNN custom operations are on.\n"
            "W0000 00:00:1795929592.3   27768 cudart_stub.cc:31] a warning\n"
            "E0000 00:00:1795929592.3   27768 cuda_executor.cc:1] failed call to cuInit\n"
            "2026-01-01 12:00:00.123456: I tensorflow/core/util/port.cc:113] old-style info\n"
            "Traceback (most recent call last): a real error\n")
    kept = tensorflow_log_filter(text, 2).splitlines()
    assert kept == ["E0000 00:00:1795929592.3   27768 cuda_executor.cc:1] failed call to cuInit",
                    "Traceback (most recent call last): a real error"]
    assert tensorflow_log_filter(text, 3).splitlines() == ["Traceback (most recent call last): a real error"]
    assert tensorflow_log_filter(text, 0) == text


def test_quiet_tensorflow_filters_what_the_import_writes_to_stderr(tmp_path):
    # a stand-in for TensorFlow 2.21, whose libraries log through absl while they load
    fake = tmp_path / "tensorflow"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "import os\n"
        "os.write(2, b'WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR\\n')\n"
        "os.write(2, b'I0000 00:00:1795929601.147617   27768 port.cc:153] oneDNN custom "
        "operations are on.\\n')\n"
        "os.write(2, b'a line of another kind\\n')\n")
    code = ("from swin_gao_lib.runtime.machine import quiet_tensorflow\n"
            "quiet_tensorflow()\nimport tensorflow\nimport sys\n"
            "print('imported', tensorflow.__name__, file=sys.stderr)\n")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{tmp_path}:{REPO}"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["a line of another kind", "imported tensorflow"]
    # an explicit level wins: TF_CPP_MIN_LOG_LEVEL=0 shows everything
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert "oneDNN" in proc.stderr and "absl::InitializeLog" in proc.stderr


def test_quiet_notebook_drops_only_the_kernel_shutdown_race_line(monkeypatch, caplog):
    log = logging.getLogger("IPKernelApp-test")
    shell = pytypes.SimpleNamespace(kernel=pytypes.SimpleNamespace(log=log))
    monkeypatch.setitem(sys.modules, "IPython", pytypes.SimpleNamespace(get_ipython=lambda: shell))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    machine.quiet_notebook()
    machine.quiet_notebook()  # twice: one filter
    assert sum(isinstance(f, machine._KernelShutdownFilter) for f in log.filters) == 1
    with caplog.at_level(logging.ERROR, logger="IPKernelApp-test"):
        log.error("KeyboardInterrupt caught in kernel.")
        log.error("Exception in message handler:")
    assert [r.getMessage() for r in caplog.records] == ["Exception in message handler:"]


def _colab_pins():
    found = []
    for name in ("train.ipynb", "report.ipynb"):
        cells = json.loads((REPO / "notebooks" / name).read_text())["cells"]
        setup = next("".join(c["source"]) for c in cells if "google.colab" in "".join(c["source"]))
        start = setup.index("def colab_pins")
        found.append(setup[start:setup.index('\nif "google.colab"', start)])
    assert found[0] == found[1]
    namespace: dict = {}
    exec(found[0], namespace)
    return namespace["colab_pins"]


def test_colab_keeps_a_supported_tensorflow_and_replaces_an_older_one_with_the_tested_pair():
    # Colab images with TensorFlow < 2.20 stopped on pip's resolver conflict in the setup cell
    pins = _colab_pins()
    assert pins({"tensorflow": "2.20.0", "keras": "3.10.0"}) == \
        (["tensorflow==2.20.0", "keras==3.10.0"], None)
    assert pins({}) == ([], None)
    replaced, note = pins({"tensorflow": "2.19.0", "keras": "3.8.0"})
    pinned = {line.strip() for line in (REPO / "requirements.txt").read_text().splitlines()
              if line.startswith(("tensorflow==", "keras=="))}
    assert set(replaced) == pinned  # the tested pair, as requirements.txt pins it
    assert note.startswith("Colab's TensorFlow 2.19.0 / Keras 3.8.0 is older") and "\n" not in note
    assert pins({"tensorflow": "2.21.0", "keras": "3.4.1"})[1] is not None  # Keras too old
    # the lowest versions it keeps are the package's declared lower bounds
    declared = (REPO / "pyproject.toml").read_text()
    assert '"tensorflow>=2.20"' in declared and '"keras>=3.5"' in declared
