"""run-all on a local Dask cluster (2 workers x 1 core): the sequential executor's results bit
for bit, a killed kernel retried and resumed, a failing run failing alone, a killed driver."""

import json
import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

pytest.importorskip("distributed")

from conftest import TINY_DETERMINISTIC  # noqa: E402
from swin_gao_lib import cli  # noqa: E402
from swin_gao_lib.runs import dask_runner  # noqa: E402
from swin_gao_lib.runs.dask_runner import DaskOptions  # noqa: E402
from swin_gao_lib.runs.runner import run_all  # noqa: E402

TINY = {**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 64, "max_test_samples": 32,
        "batch_size": 32, "epochs": 1, "dropout": 0.05, "augment": True}
OPTIONS = DaskOptions(workers=2, cpus_per_run=1, retries=2)


def _params(folder: Path, name: str, **kw) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({**TINY, **kw}))


def _results(out: Path) -> dict:
    found = {}
    for run in sorted(p for p in out.iterdir() if (p / "metrics.json").is_file()):
        m = json.loads((run / "metrics.json").read_text())
        h = pd.read_csv(run / "history.csv")
        found[run.name] = (m["test_loss"], m["test_accuracy"], m["final_weights_sha256"],
                           h[["loss", "running_accuracy", "val_loss", "val_accuracy"]].values.tolist())
    return found


@pytest.mark.slow(95)
def test_dask_gives_the_sequential_results_and_skips_what_is_complete(tmp_path):
    params = tmp_path / "params"
    # three runs on two workers (one waits for a free worker): another seed over two
    # epochs, in-step accumulation with a sum, Keras's optimizer mode
    _params(params, "a", seed=7, epochs=2)
    _params(params, "b", accumulation_steps=2, reduction="sum")
    _params(params, "c", accumulation_steps=2, accumulation_mode="optimizer")
    seq = run_all(params, tmp_path / "seq", progress=False, report=False, cpus_per_run=1)
    assert seq.ok and len(seq.ran) == 3
    dask = run_all(params, tmp_path / "dask", progress=False, report=False, dask=OPTIONS)
    assert dask.ok and sorted(p.name for p in dask.ran) == ["a", "b", "c"]
    a, b = _results(tmp_path / "seq"), _results(tmp_path / "dask")
    assert sorted(b) == ["a", "b", "c"]
    assert len(b["a"][3]) == 2  # both epochs' rows
    assert a == b  # identical losses, accuracies and final weights; only times differ
    for run in ("a", "b", "c"):  # the records read as the sequential runner writes them
        assert (tmp_path / "dask" / run / "config.yaml").read_text() == \
            (tmp_path / "seq" / run / "config.yaml").read_text().replace(
                str(tmp_path / "seq"), str(tmp_path / "dask"))
        assert (tmp_path / "dask" / run / "train.ipynb").is_file()
        assert not (tmp_path / "dask" / run / "checkpoint").exists()
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "dask").rglob("metrics.json")}
    with pytest.MonkeyPatch.context() as mp:  # nothing to run: no cluster is started for it
        mp.setattr(dask_runner, "_cluster", lambda options: pytest.fail("a cluster started"))
        again = run_all(params, tmp_path / "dask", progress=False, report=False, dask=OPTIONS)
    assert not again.ran and len(again.skipped) == 3
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "dask").rglob("metrics.json")} == before


def _kill_a_kernel_after_its_first_epoch(found: list, stop: threading.Event) -> None:
    import psutil

    me = psutil.Process()
    while not stop.is_set():
        for proc in me.children(recursive=True):
            try:
                if "ipykernel" not in " ".join(proc.cmdline()):
                    continue
                state = Path(proc.cwd()) / "runs" / "long" / "checkpoint" / "state.json"
                if state.is_file():
                    found.append(proc.pid)
                    proc.kill()
                    return
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        time.sleep(0.2)


@pytest.mark.slow(45)
def test_a_killed_kernel_is_retried_and_resumes_a_broken_run_fails_alone(tmp_path, capsys):
    params = tmp_path / "params"
    _params(params, "long", epochs=3, max_train_samples=320)
    _params(params, "ok")
    # fails while it trains (bad data is found before any run starts): NaN at its second step
    _params(params, "broken", learning_rate=1e30, optimizer="sgd", momentum=0.0)
    killed, stop = [], threading.Event()
    killer = threading.Thread(target=_kill_a_kernel_after_its_first_epoch, args=(killed, stop))
    killer.start()
    try:
        code = cli.main(["run-all", str(params), "--output", str(tmp_path / "out"),
                         "--executor", "dask", "--workers", "2", "--cpus-per-run", "1"])
    finally:
        stop.set()
        killer.join()
    err = capsys.readouterr().err
    assert killed, "the test never found the kernel to kill"
    assert code == 1
    assert err.count("FAILED") == 1 and "broken" in err and "the loss became nan" in err
    out = tmp_path / "out"
    long = json.loads((out / "long" / "metrics.json").read_text())
    assert long["resumed"] == 1 and long["resumed_at_epochs"][0] >= 1
    assert long["epochs_completed"] == 3
    assert (out / "ok" / "metrics.json").is_file()
    # a failed run's records come back: its failure.json and the notebook that shows the error
    assert not (out / "broken" / "metrics.json").exists()
    assert json.loads((out / "broken" / "failure.json").read_text())["diverged"] is True
    assert "the loss became nan" in (out / "broken" / "train.ipynb").read_text()
    assert (out / "report" / "summary.csv").is_file()


def test_a_failed_runs_line_is_the_helpers_error_not_what_was_logged_after_it(tmp_path, capsys):
    # CI once printed a failed run without its error: a library logged a line after it
    from swin_gao_lib.runs import dask_task

    error = "Diverged: the loss became nan at epoch 1, step 2"
    dask_task._record_error({"error_file": str(tmp_path / dask_task.ERROR_FILE)}, error)
    assert capsys.readouterr().err == error + "\n"  # still shown where a user looks
    stderr = error + "\nWARNING: a kernel manager's late message at shutdown\n"
    assert dask_task.failure_line(tmp_path, stderr, 1) == error
    (tmp_path / dask_task.ERROR_FILE).unlink()  # the helper died before it could write
    assert dask_task.failure_line(tmp_path, stderr, 3).startswith("WARNING")
    assert dask_task.failure_line(tmp_path, "", 3) == "exit 3"


def test_a_killed_driver_resumes_on_the_next_start_and_leaves_no_scratch(tmp_path, monkeypatch):
    # kill -9 the driver mid-run: its checkpoint resumes bit for bit; what it kept in $TMPDIR
    # (kernel connection files, Dask's worker space) is in its scratch, which the next start removes
    import signal
    import subprocess
    import sys
    import tempfile

    params = tmp_path / "params"
    _params(params, "long", epochs=3, max_train_samples=320)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    env = dict(os.environ, TMPDIR=str(tmp))  # the scratch root of this test alone
    driver = subprocess.Popen(
        [sys.executable, "-m", "swin_gao_lib.cli", "run-all", str(params), "--output", str(out),
         "--executor", "dask", "--workers", "1", "--cpus-per-run", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = out / "long" / "checkpoint" / "state.json"  # sent back to the driver's folder
    deadline = time.monotonic() + 600
    while not state.is_file() and driver.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state.is_file(), "the first epoch's checkpoint never came back"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    scratch = tmp / f"swin-gao-dask-{os.getuid()}"
    assert list(scratch.glob("*/driver.json")), "the dead driver's scratch should be there"
    assert [p.name for p in tmp.iterdir()] == [scratch.name]  # nothing else of the driver's
    assert list(scratch.glob("*/dask/*")), "a local cluster keeps its worker space there"

    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    again = run_all(params, out, progress=False, report=False,
                    dask=DaskOptions(workers=1, cpus_per_run=1))
    assert again.ok and [p.name for p in again.ran] == ["long"]
    metrics = json.loads((out / "long" / "metrics.json").read_text())
    assert metrics["resumed"] == 1 and metrics["resumed_at_epochs"][0] >= 1
    assert not scratch.exists()  # neither the dead driver's scratch nor this one's is left
    assert list(tmp.iterdir()) == []

    reference = run_all(params, tmp_path / "ref", progress=False, report=False, cpus_per_run=1)
    assert reference.ok
    assert list(tmp.iterdir()) == []  # the sequential executor's kernels kept theirs in scratch
    assert _results(out) == _results(tmp_path / "ref")  # as if it had never been killed
