"""Resume after a real ``kill -9`` in epoch 3 (a driver's batch hook sends it): the same command
again gives the uninterrupted run's weights and history, with every random stream on."""

import csv
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from swin_gao_lib.config import to_yaml
from swin_gao_lib.config.params import load_config

KILL_EPOCH, KILL_STEP = 2, 3  # 0-based epoch 2 = the third epoch

STOCHASTIC = dict(
    dataset="mnist", source="sample", max_train_samples=200, max_test_samples=64,
    validation_split=0.01, embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8,
    dropout=0.1, attention_dropout=0.1, drop_path_rate=0.2, augment=True, epochs=4, seed=3,
)
MODES = {
    # 200 images, batches of 32: 6 full steps and a short one of 8 (2 micro-batches of 4+4)
    "in_step": dict(batch_size=32, accumulation_steps=2, accumulation_mode="in_step",
                    reduction="sum"),
    # 13 micro-steps of 16 per epoch: Keras's accumulators carry across epoch boundaries
    "optimizer": dict(batch_size=32, accumulation_steps=2, accumulation_mode="optimizer"),
}

DRIVER = textwrap.dedent("""
    import os, signal, sys
    from swin_gao_lib import cli
    from swin_gao_lib.training import train

    epoch_box = {}
    original_begin = train.Recorder.on_epoch_begin
    original_end = train.Recorder.on_train_batch_end

    def on_epoch_begin(self, epoch, logs=None):
        epoch_box["epoch"] = epoch
        return original_begin(self, epoch, logs)

    def on_train_batch_end(self, batch, logs=None):
        original_end(self, batch, logs)
        if epoch_box["epoch"] == KILL_EPOCH and batch + 1 == KILL_STEP:
            os.kill(os.getpid(), signal.SIGKILL)

    train.Recorder.on_epoch_begin = on_epoch_begin
    train.Recorder.on_train_batch_end = on_train_batch_end
    sys.exit(cli.main(sys.argv[1:]))
""").replace("KILL_EPOCH", str(KILL_EPOCH)).replace("KILL_STEP", str(KILL_STEP))


def _cli(args, cwd, driver=None):
    cmd = [sys.executable, "-c", driver, *args] if driver else \
        [sys.executable, "-m", "swin_gao_lib.cli", *args]
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # the kit's own
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def _history(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "history.csv").open()))


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.slow(45)
def test_killed_run_resumes_to_the_identical_result(tmp_path, mode):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**STOCHASTIC, **MODES[mode]}))
    out = tmp_path / "out"
    common = ["train", str(params), "--verbose", "0", "--set", f"output_dir={out}"]

    full = _cli(common + ["--set", "run_name=full"], tmp_path)
    assert full.returncode == 0, full.stderr
    # no start-up line that reads like failure (on this GPU-less machine: no cuInit error)
    assert "cuInit" not in full.stderr and " E external" not in full.stderr, full.stderr

    killed = _cli(common + ["--set", "run_name=killed"], tmp_path, driver=DRIVER)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    run = out / "killed"
    assert not (run / "metrics.json").exists()
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == KILL_EPOCH
    before = state["history"]
    assert [r["epoch"] for r in before] == [1, 2]

    resumed = _cli(common + ["--set", "run_name=killed"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming killed after epoch {KILL_EPOCH} of 4" in resumed.stdout

    a = json.loads((out / "full" / "metrics.json").read_text())
    b = json.loads((run / "metrics.json").read_text())
    assert b["final_weights_sha256"] == a["final_weights_sha256"]  # bit-identical weights
    for key in ("test_loss", "test_accuracy", "train_eval_accuracy", "optimizer_updates",
                "optimizer_micro_steps"):
        assert b[key] == a[key], key
    # every update's learning rate, at the same updates, epochs and steps
    assert (run / "lr.csv").read_text() == (out / "full" / "lr.csv").read_text()
    ha, hb = _history(out / "full"), _history(run)
    assert len(hb) == 4
    for ra, rb in zip(ha, hb):
        for key in ("epoch", "loss", "running_accuracy", "val_loss", "val_accuracy"):
            assert rb[key] == ra[key], (key, ra["epoch"])
    # honest timing: the first two epochs keep the times the killed process measured
    for row, saved in zip(hb[:2], before):
        assert float(row["epoch_s"]) == pytest.approx(saved["epoch_s"], rel=1e-12)
    assert b["resumed"] == 1 and b["resumed_at_epochs"] == [KILL_EPOCH]
    assert a["resumed"] == 0 and a["resumed_at_epochs"] == []
    assert not (run / "checkpoint").exists()  # removed once complete


def test_a_different_config_in_an_unfinished_folder_is_refused(tmp_path):
    params = tmp_path / "p.yaml"
    params.write_text(yaml.safe_dump({**STOCHASTIC, **MODES["in_step"]}))
    run = tmp_path / "out" / "r"
    run.mkdir(parents=True)
    cfg = load_config(params, {"output_dir": str(tmp_path / "out"), "run_name": "r"})
    (run / "config.yaml").write_text(to_yaml(cfg))
    (run / "history.csv").write_text("epoch,loss\n1,2.0\n")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    proc = _cli(["train", str(params), "--set", f"output_dir={tmp_path / 'out'}",
                 "--set", "run_name=r", "--set", "epochs=9", "--set", "learning_rate=0.01"],
                tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"swin-gao: error: output: {run} holds an unfinished run of a different config (it "
        "differs in learning_rate, epochs); choose another run_name or output_dir, or pass "
        "--overwrite to discard it"]
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before
