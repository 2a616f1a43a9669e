"""Faults the kit must survive, made real: a full disk, a folder turned read-only, a dead driver.

A full disk is a small tmpfs filled until ENOSPC; a read-only folder, a read-only bind mount of
it over itself (EROFS: root ignores file modes). Where mounting is not allowed they skip.
"""

import contextlib
import importlib.util
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
import yaml

from swin_gao_lib.config import make_config, to_yaml
from swin_gao_lib.errors import ConfigError, InputError, RunError
from swin_gao_lib.model import build_swin
from swin_gao_lib.records import RunFolder
from swin_gao_lib.records.folder import UnusableConfig
from swin_gao_lib.runs import scratch
from swin_gao_lib.runs import execute
from swin_gao_lib.runs.execute import execute_notebook
from swin_gao_lib.runs.runner import plan_suite, run_all
from swin_gao_lib.runs.suite_lock import SuiteBusy
from swin_gao_lib.training.accumulation import build_trainer
from swin_gao_lib.training.checkpoint import Checkpoint, checkpoint_bytes

TINY = dict(dataset="mnist", source="sample", max_train_samples=96, max_test_samples=32,
            validation_split=0.01,  # 150 images: the tests check the machinery
            embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8, batch_size=32, epochs=3,
            dropout=0.1, drop_path_rate=0.1, augment=True, seed=5)


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """A tmpfs of ``size`` mounted at ``path`` (skips the test where mounting is not allowed)."""
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command here: the disk-fault tests need a small tmpfs")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'mount failed'}): "
                    "the disk-fault tests need root or CAP_SYS_ADMIN")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill(fs: Path) -> Path:
    """Fill the file system with one file, until the kernel says it is full."""
    filler = fs / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass
    return filler


# ---------------------------------------------------------------- folders
def test_the_kit_recognises_its_own_folder_after_a_failed_run(tmp_path):
    cfg = make_config({**TINY, "output_dir": str(tmp_path), "run_name": "r"})
    run = tmp_path / "r"
    run.mkdir()
    # what a run given learning_rate "inf" used to leave: its config, a failure, a checkpoint
    (run / "config.yaml").write_text(to_yaml(cfg).replace("learning_rate: 0.001",
                                                          "learning_rate: .inf"))
    (run / "failure.json").write_text('{"error": "diverged", "diverged": true}')
    (run / "history.csv").write_text("epoch,loss\n1,nan\n")
    (run / "checkpoint").mkdir()
    (run / "checkpoint" / "state.json").write_text("{}")
    (run / ".history.csv.x1y2.tmp").write_text("a write a kill cut short")
    folder = RunFolder(run)
    with pytest.raises(UnusableConfig, match=r"holds a run whose config.yaml this version of "
                                             r"the kit refuses \(learning_rate: must be a "
                                             r"finite number, got inf.*pass --overwrite"):
        folder.plan(cfg)
    assert folder.plan(cfg, overwrite=True) == "overwrite"
    folder.start(cfg)  # what train() does with "overwrite"
    assert sorted(p.name for p in run.iterdir()) == ["config.yaml"]
    # somebody else's config.yaml is still refused, even with --overwrite
    (run / "config.yaml").write_text("lr: 0.1\nmodel: resnet\n")
    with pytest.raises(ConfigError, match="is not a run config this kit wrote"):
        folder.plan(cfg, overwrite=True)


# ---------------------------------------------------------------- space and checkpoints
def _trainer(cfg):
    model = build_trainer(cfg, build_swin(cfg), 10)
    model(np.zeros((1, *cfg.input_shape), "float32"), training=False)
    model.optimizer.build(model.trainable_variables)
    return model


def _values(model):
    return [keras.ops.convert_to_numpy(v) for v in
            list(model.variables) + list(model.optimizer.variables)]


@pytest.mark.parametrize("mode", ["in_step", "optimizer"])
def test_a_checkpoint_is_no_larger_than_its_estimate(tmp_path, mode):
    model = _trainer(make_config({**TINY, "accumulation_steps": 2, "accumulation_mode": mode}))
    Checkpoint(tmp_path).save(model, 1, {"history": []})
    size = (tmp_path / "epoch-00001.variables.npz").stat().st_size
    assert size <= checkpoint_bytes(model) <= 1.25 * size


def test_a_checkpoint_that_meets_a_full_disk_keeps_the_one_before(tmp_path):
    cfg = make_config(TINY)
    model = _trainer(cfg)
    with tmpfs(tmp_path / "fs", "1m") as fs:
        checkpoint = Checkpoint(fs / "checkpoint")
        checkpoint.save(model, 1, {"history": [{"epoch": 1}]})
        saved = _values(model)
        for v in model.trainable_variables:  # epoch 2 moved the weights
            v.assign(v + 1.0)
        filler = fill(fs)
        with pytest.raises(OSError) as err:  # an ordinary error, not a crash inside h5py
            checkpoint.save(model, 2, {"history": [{"epoch": 1}, {"epoch": 2}]})
        assert err.value.errno == 28
        assert err.value.filename == str(fs / "checkpoint" / "epoch-00002.variables.npz")
        assert sorted(p.name for p in (fs / "checkpoint").iterdir()) == \
            ["epoch-00001.variables.npz", "state.json"]  # no temporary file left
        assert checkpoint.saved_epoch() == 1
        filler.unlink()  # space again: the last good checkpoint restores the epoch-1 state
        fresh = _trainer(cfg)
        checkpoint.restore(fresh, checkpoint.load())
        assert all(np.array_equal(a, b) for a, b in zip(_values(fresh), saved))


def test_a_checkpoint_of_an_earlier_kit_still_restores(tmp_path):
    """Earlier versions wrote Keras's weights file plus the seed generators' states."""
    cfg = make_config(TINY)
    model = _trainer(cfg)
    for v in model.trainable_variables:
        v.assign(v * 0.5 + 0.25)
    model.save_weights(tmp_path / "epoch-00001.weights.h5")
    buffer = io.BytesIO()
    np.savez(buffer, *[keras.ops.convert_to_numpy(v) for v in model.non_trainable_variables])
    (tmp_path / "epoch-00001.rng.npz").write_bytes(buffer.getvalue())
    (tmp_path / "state.json").write_text(json.dumps(
        {"epoch": 1, "weights": "epoch-00001.weights.h5", "rng": "epoch-00001.rng.npz"}))
    fresh = _trainer(cfg)
    checkpoint = Checkpoint(tmp_path)
    checkpoint.restore(fresh, checkpoint.load())
    assert all(np.array_equal(a, b) for a, b in zip(_values(fresh), _values(model)))


def test_a_checkpoint_of_another_model_is_refused_with_one_line(tmp_path):
    checkpoint = Checkpoint(tmp_path)
    checkpoint.save(_trainer(make_config(TINY)), 1, {"history": []})
    wider = make_config({**TINY, "embed_dim": 2 * make_config(TINY).embed_dim})
    with pytest.raises(RunError, match=r"does not fit this model \(its variables differ\); "
                                       "pass --overwrite"):
        checkpoint.restore(_trainer(wider), checkpoint.load())


# ---------------------------------------------------------------- a full disk mid-run
FAULT_DRIVER = textwrap.dedent("""
    import os, subprocess, sys
    from pathlib import Path
    from swin_gao_lib import cli
    from swin_gao_lib.training import side_by_side, train

    FS, FAULT = Path(os.environ["FAULT_FS"]), os.environ.get("FAULT", "full")
    AFTER, SEED = int(os.environ.get("FAULT_AFTER", "1")), int(os.environ.get("FAULT_SEED", "-1"))

    def fault():  # for real: a file until the disk is full, or the run folder made read-only
        if FAULT == "full":
            with open(FS / "filler", "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(bytes(4096))
                except OSError:
                    pass
        else:
            run = str(FS / "r")
            subprocess.run(["mount", "--bind", run, run], check=True)
            subprocess.run(["mount", "-o", "remount,ro,bind", run], check=True)

    on_epoch_end, record_epoch = train.Recorder.on_epoch_end, side_by_side.record_epoch

    def after_checkpoint(self, epoch, logs=None):  # fit's epoch loop
        on_epoch_end(self, epoch, logs)
        if epoch + 1 == AFTER:
            fault()

    def after_record(run, *args, **kwargs):  # the device's, for each seed side by side
        record_epoch(run, *args, **kwargs)
        if len(run.rows) == AFTER and SEED in (-1, run.cfg.seed):
            fault()

    train.Recorder.on_epoch_end = after_checkpoint
    side_by_side.record_epoch = after_record
    sys.exit(cli.main(sys.argv[1:]))
""")


def _train(args, cwd, **fault):
    """The real CLI; with ``fault`` (FAULT_FS, ...) under the driver above."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(fault)
    cmd = ["-c", FAULT_DRIVER] if "FAULT_FS" in fault else ["-m", "swin_gao_lib.cli"]
    return subprocess.run([sys.executable, *cmd, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env)


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr and "Segmentation" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("swin-gao")]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def _full_disk_after_epoch_1(stderr: str, run: Path) -> None:
    """One line naming the file and the cause; epoch 1's checkpoint kept; no temporary file."""
    line = _one_line(stderr)
    assert line.startswith(f"swin-gao: run failed: cannot write {run}/history.csv: No "
                           f"space left on device; the checkpoint of epoch 1 is kept in "
                           f"{run}"), line
    assert line.endswith("free space or make the folder writable, then run the same "
                         "command again to resume")
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == \
        ["epoch-00001.variables.npz", "state.json"]
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def test_a_full_disk_then_a_read_only_folder_mid_run_then_a_resume(tmp_path):
    # each write failure ends the run with exit 1 and one line; the next start resumes
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(TINY))
    with tmpfs(tmp_path / "fs", "2m") as fs:
        run = fs / "r"
        common = ["train", str(params), "--verbose", "0", "--set", f"output_dir={fs}",
                  "--set", "run_name=r"]

        full = _train(common, tmp_path, FAULT_FS=str(fs))
        assert full.returncode == 1, full.stderr[-3000:]
        _full_disk_after_epoch_1(full.stderr, run)
        (fs / "filler").unlink()

        readonly = _train(common, tmp_path, FAULT_FS=str(fs), FAULT="read-only",
                          FAULT_AFTER="2")
        assert readonly.returncode == 1, readonly.stderr[-3000:]
        assert "resuming r after epoch 1 of 3" in readonly.stdout
        line = _one_line(readonly.stderr)
        assert f"cannot write {run}/history.csv: Read-only file system; the checkpoint of " \
               "epoch 2 is kept" in line, line
        assert "(failure.json could not be written)" in line
        subprocess.run(["umount", str(run)], check=True)  # writable again

        resumed = _train(common, tmp_path)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resuming r after epoch 2 of 3" in resumed.stdout
        got = json.loads((run / "metrics.json").read_text())
        assert not (run / "checkpoint").exists()

    reference = _train(["train", str(params), "--verbose", "0", "--set",
                        f"output_dir={tmp_path / 'ref'}", "--set", "run_name=r"], tmp_path)
    assert reference.returncode == 0, reference.stderr[-3000:]
    want = json.loads((tmp_path / "ref" / "r" / "metrics.json").read_text())
    assert got["resumed_at_epochs"] == [1, 2]
    assert got["final_weights_sha256"] == want["final_weights_sha256"]  # bit for bit
    assert got["test_loss"] == want["test_loss"]


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_a_full_disk_mid_run_on_the_device_pipeline_ends_with_the_same_one_line(tmp_path):
    """The device's epoch loop fails a write as fit does: exit 1, one line, the checkpoint kept."""
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**TINY, "pipeline": "device"}))
    with tmpfs(tmp_path / "fs", "2m") as fs:
        proc = _train(["train", str(params), "--verbose", "0", "--set", f"output_dir={fs}",
                       "--set", "run_name=r"], tmp_path, KERAS_BACKEND="jax", FAULT_FS=str(fs))
        assert proc.returncode == 1, proc.stderr[-3000:]
        _full_disk_after_epoch_1(proc.stderr, fs / "r")


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_a_full_disk_under_seeds_side_by_side_names_each_runs_own_file(tmp_path):
    """Each seed of a group fails on its own file, with its own line."""
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**{k: v for k, v in TINY.items() if k != "seed"},
                                      "pipeline": "device", "backend": "jax", "seeds": [1, 2]}))
    with tmpfs(tmp_path / "fs", "4m") as fs:
        proc = _train(["run-all", str(params), "--executor", "side-by-side", "--output",
                       str(fs / "suite")], tmp_path, KERAS_BACKEND="jax", FAULT_FS=str(fs),
                      FAULT_SEED="2")
        assert proc.returncode == 1, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        failed = sorted(line for line in proc.stderr.splitlines() if line.startswith("FAILED"))
        assert len(failed) == 2, proc.stderr[-3000:]
        for seed, line in zip((1, 2), failed):
            run = fs / "suite" / f"p-s{seed}"
            assert line.startswith(f"FAILED p-s{seed} ({params}): cannot write {run}/history.csv: "
                                   "No space "
                                   f"left on device; the checkpoint of epoch 1 is kept in {run}"), \
                line
            assert sorted(p.name for p in (run / "checkpoint").iterdir()) == \
                ["epoch-00001.variables.npz", "state.json"]


def test_a_disk_with_room_for_the_records_but_not_the_checkpoints_is_refused(tmp_path):
    # refused once the model is built (a disk without room for the records: test_bad_input)
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump(TINY))
    with tmpfs(tmp_path / "fs", "256k") as fs:
        proc = _train(["train", str(params), "--set", f"output_dir={fs}"], tmp_path)
        assert proc.returncode == 2
        line = _one_line(proc.stderr)
        assert line.startswith(f"swin-gao: error: output_dir: {fs} has 256 KiB free, but this "
                               "needs about "), line
        assert "per checkpoint, two at once while one is saved" in line
        assert list(fs.iterdir()) == []


# ---------------------------------------------------------------- one driver per suite
HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from swin_gao_lib.runs.suite_lock import SuiteLock

    with SuiteLock(Path(sys.argv[1])).hold():
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _hold(output: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(output), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_all_on_a_suite_names_the_first_or_waits(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "a.yaml").write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    holder = _hold(out, 60)
    try:
        proc = subprocess.run([sys.executable, "-m", "swin_gao_lib.cli", "run-all", str(params),
                               "--output", str(out)], capture_output=True, text=True,
                              timeout=120)
        # the side-by-side executor is a driver too: refused before it plans anything
        with pytest.raises(SuiteBusy, match=f"is being run by run-all pid {holder.pid}"):
            run_all(params, out, executor="side-by-side")
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    line = _one_line(proc.stderr)
    assert line.startswith(f"swin-gao: error: --output {out} is being run by run-all pid "
                           f"{holder.pid} on host {socket.gethostname()}, since "), line
    assert line.endswith("wait for it to finish, or pass --wait to start after it")
    assert "FAILED" not in proc.stderr and not (out / "a").exists()

    holder = _hold(out, 3)  # --wait: starts once the first one is done
    started = time.monotonic()
    (out / "a").mkdir()  # the first driver's run: complete by the time it lets go
    cfg = make_config({**TINY, "output_dir": str(out.resolve()), "run_name": "a"})
    (out / "a" / "config.yaml").write_text(to_yaml(cfg))
    (out / "a" / "metrics.json").write_text("{}")
    result = run_all(params, out, progress=False, report=False, wait=True)
    assert holder.wait() == 0 and time.monotonic() - started >= 2
    assert [p.name for p in result.skipped] == ["a"] and not result.failed and not result.ran
    assert not (out / ".swin-gao-run-all.lock").exists()


def test_a_run_folder_another_process_writes_stops_the_suite_before_it_starts(tmp_path):
    params = tmp_path / "params"
    params.mkdir()
    (params / "a.yaml").write_text(yaml.safe_dump(TINY))
    (params / "b.yaml").write_text(yaml.safe_dump(TINY))
    code = ("import sys, time\nfrom swin_gao_lib.records import RunFolder\n"
            "with RunFolder(sys.argv[1]).lock():\n    print('held', flush=True)\n"
            "    time.sleep(60)\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "out" / "b")],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "held"
        with pytest.raises(InputError,
                           match=rf"b.yaml: output: {tmp_path / 'out' / 'b'} is being written "
                                 rf"by another process \(pid {writer.pid}\)"):
            run_all(params, tmp_path / "out", progress=False, report=False)
    finally:
        writer.kill()
        writer.wait()
    assert not (tmp_path / "out" / "a").exists()
    assert RunFolder(tmp_path / "out" / "b").foreign_files() == []
    # the lock the dead writer left behind stops nobody
    plans = plan_suite(sorted(params.glob("*.yaml")), tmp_path / "out")
    assert [p.run_dir.name for p in plans] == ["a", "b"]


# ---------------------------------------------------------------- scratch of dead drivers
def test_the_scratch_of_a_dead_driver_is_removed_and_a_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a real process, ended: its pid names no driver any more
    scratch.mark("deadtoken", {"pid": dead.pid, "host": scratch.this_driver()["host"],
                               "started": 1.0})
    (scratch.token_dir("deadtoken") / "k" / "runs" / "r").mkdir(parents=True)
    scratch.mark("livetoken", scratch.this_driver())
    scratch.mark("remotetoken", {"pid": 1, "host": "another-host", "started": 1.0})
    (scratch.root() / "nomarker").mkdir()
    assert scratch.clean_dead() == ["deadtoken"]
    assert sorted(p.name for p in scratch.root().iterdir()) == \
        ["livetoken", "nomarker", "remotetoken"]
    # a token the suite's lock names as its dead driver's goes too, wherever its driver ran
    assert scratch.clean_dead(["remotetoken"]) == ["remotetoken"]
    scratch.remove("livetoken")
    assert sorted(p.name for p in scratch.root().iterdir()) == ["nomarker"]


def test_without_a_scratch_folder_a_kernel_starts_in_this_environment(monkeypatch):
    import papermill

    seen = {}

    def fake_execute(*args, **kwargs):  # what the kernel would inherit
        seen.update(tmpdir=os.environ["TMPDIR"], config="config" in kwargs)

    monkeypatch.setenv("TMPDIR", "/somewhere")
    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    execute.execute_notebook("in.ipynb", "out.ipynb", cwd=".", parameters={})
    assert seen == {"tmpdir": "/somewhere", "config": False}


def test_a_notebooks_kernel_keeps_its_files_in_the_drivers_scratch(tmp_path, monkeypatch):
    """Its connection file (jupyter_client would make it in $TMPDIR) and its own temporary
    files: where a killed driver or kernel would leave them, the next start removes them."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3",
                                                           "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("tmp = ''", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(
                    "import os, tempfile\nfrom ipykernel import get_connection_file\n"
                    "print(get_connection_file())\nprint(tempfile.gettempdir())\n"
                    "print(sorted(os.listdir(tmp)))")]
    nbformat.write(nb, tmp_path / "nb.ipynb")
    token = scratch.new_token()
    folder = scratch.mark(token, scratch.this_driver())
    execute_notebook(tmp_path / "nb.ipynb", tmp_path / "out.ipynb", cwd=tmp_path,
                     parameters={"tmp": str(tmp)}, scratch=folder)
    printed = nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    connection, kernel_tmp, listing = printed.splitlines()
    assert Path(connection).parent == folder and Path(kernel_tmp) == folder / "tmp"
    assert listing == str([scratch.root().name])  # nothing of the kernel's beside the scratch
    assert os.environ["TMPDIR"] == str(tmp) and tempfile.gettempdir() == str(tmp)
    scratch.remove(token)
    assert list(tmp.iterdir()) == []
