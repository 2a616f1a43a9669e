"""The device pipeline (JAX): batches on the device, epoch programs, seeds side by side.

Each check runs in a fresh process without TensorFlow (``tests/device_checks.py``), sharing one
JAX compilation cache. Alone, a device run is a pure function of its config (bit for bit, killed
and resumed too). Side by side, XLA batches the seeds' products, which may round differently:
each seed's history and lr.csv stay within 1e-5 of the seed alone, its weights within 5e-5
after 21 AdamW updates (docs/backends.md); a seed resumed side by side is held to bit for bit.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="jax is not installed")

HISTORY = ["epoch", "loss", "running_accuracy", "val_loss", "val_accuracy", "epoch_s", "train_s",
           "compile_s", "train_s_steady", "val_s", "images_per_s"]
SIDE_TOLERANCE, WEIGHT_TOLERANCE = 1e-5, 5e-5


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("jax-cache")


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    env.update(JAX_COMPILATION_CACHE_DIR=str(cache), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    return env


def _checks(part: str, tmp: Path, cache: Path, workdir: Path, *args: str
            ) -> subprocess.CompletedProcess:
    out = tmp / f"{part}.json"
    return subprocess.run([sys.executable, str(TESTS / "no_tensorflow.py"),
                           str(TESTS / "device_checks.py"), part, str(out), str(workdir), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=1500, env=_env(cache))


def _result(part, tmp, cache, workdir, *args) -> dict:
    proc = _checks(part, tmp, cache, workdir, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / f"{part}.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, cache):
    tmp = tmp_path_factory.mktemp("device")
    return _result("train", tmp, cache, tmp / "runs"), tmp


def test_device_batches_follow_the_pipeline_rules():
    # in this process: the batches need JAX, not Keras
    import jax
    import jax.numpy as jnp
    import numpy as np

    from swin_gao_lib.data import device as dd

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 10, 40).astype(np.int32)
    order = dd.epoch_order(jnp.uint32(7), jnp.int32(3), 40)
    assert sorted(np.asarray(order).tolist()) == list(range(40))  # a permutation of the rows
    assert jnp.all(order == dd.epoch_order(np.uint32(7), 3, 40))  # of the seed and epoch alone
    assert not jnp.all(order == dd.epoch_order(jnp.uint32(7), jnp.int32(4), 40))
    assert not jnp.all(order == dd.epoch_order(jnp.uint32(8), jnp.int32(3), 40))
    assert dd.epoch_order(jnp.uint32(2**32 - 1), 0, 5).shape == (5,)
    rules = dd.BatchRules(num_classes=10, augment=True, padding=2, flip=True)
    fn = jax.jit(lambda s, e, k, start: dd.train_batch(jnp.asarray(x), jnp.asarray(y), order,
                                                       s, e, k, start, 16, rules))
    xb, yb = (np.asarray(a) for a in fn(jnp.uint32(7), jnp.int32(3), jnp.int32(1), jnp.int32(16)))
    np.testing.assert_array_equal(xb, fn(jnp.uint32(7), jnp.int32(3), jnp.int32(1),
                                         jnp.int32(16))[0])
    assert not np.array_equal(xb, fn(jnp.uint32(7), jnp.int32(3), jnp.int32(2), jnp.int32(16))[0])
    rows = np.asarray(order)[16:32]
    np.testing.assert_array_equal(yb, np.eye(10, dtype=np.float32)[y[rows]])
    scaled = x[rows].astype(np.float32) / 255.0
    padded = np.pad(scaled, [(0, 0), (2, 2), (2, 2), (0, 0)])
    # XLA may scale by the reciprocal of 255 (1 ulp off x / 255); pixels are 1/255 apart
    same = lambda a, b: np.allclose(a, b, rtol=0, atol=1e-6)  # noqa: E731
    flipped = 0
    for i in range(16):  # brute force: some window (and orientation) of the padded image
        windows = [padded[i, oy:oy + 8, ox:ox + 8] for oy in range(5) for ox in range(5)]
        plain = any(same(xb[i], w) for w in windows)
        mirrored = any(same(xb[i], w[:, ::-1]) for w in windows)
        assert plain or mirrored, i
        flipped += mirrored and not plain
    assert flipped > 0
    digits = dd.BatchRules(num_classes=10, augment=True, padding=0, flip=False)
    plain, _ = dd.train_batch(jnp.asarray(x), jnp.asarray(y), order, 7, 3, 1, 16, 16, digits)
    assert same(np.asarray(plain), scaled)


def test_device_run_writes_the_records_of_a_run(trained):
    r, _ = trained
    a = r["a"]
    assert a["files"] == ["config.yaml", "history.csv", "lr.csv", "metrics.json"]
    assert list(a["history"][0]) == HISTORY and len(a["history"]) == 3
    assert float(a["history"][0]["compile_s"]) > 0
    assert all(float(row["compile_s"]) == 0 for row in a["history"][1:])
    for row in a["history"]:
        assert float(row["train_s"]) >= float(row["train_s_steady"]) > 0
    m = a["metrics"]
    steps = -(-m["samples"]["train"] // 32)  # 200 images: 6 batches of 32 and one of 8
    assert m["samples"]["train"] == 200 and steps == 7
    assert m["optimizer_updates"] == m["optimizer_micro_steps"] == 3 * steps
    lr = a["lr"].splitlines()
    assert lr[0] == "update,epoch,step,learning_rate,loss,update_norm"
    assert len(lr) == 1 + 3 * steps
    rows = [dict(zip(lr[0].split(","), line.split(","))) for line in lr[1:]]
    # per update, as fit records it: the running loss of the epoch so far (its last step's is
    # the history's loss) and the size of the change to the weights
    last = [r for r in rows if r["epoch"] == "3"][-1]
    assert float(last["loss"]) == pytest.approx(float(a["history"][-1]["loss"]), rel=1e-6)
    assert all(float(r["update_norm"]) > 0 for r in rows)
    assert lr[1].startswith("0,1,1,0.001") and lr[-1].startswith(f"{3 * steps - 1},3,{3 * steps},")
    assert m["environment"]["keras_backend"] == "jax" and "side_by_side" not in m
    assert r["tensorflow_imported"] is False


def test_same_seed_on_the_device_is_bit_identical(trained):
    r, _ = trained
    _same_run(r["b"], r["a"])
    assert r["c"]["metrics"]["final_weights_sha256"] != r["a"]["metrics"]["final_weights_sha256"]


@pytest.mark.parametrize("alone, side", [("a", "side1"), ("c", "side2")])
def test_each_seed_side_by_side_equals_the_seed_alone(trained, alone, side):
    r, _ = trained
    a, s = r[alone], r[side]
    assert s["files"] == a["files"]
    lr_a, lr_s = a["lr"].splitlines(), s["lr"].splitlines()
    assert lr_a[0] == lr_s[0] and len(lr_a) == len(lr_s)
    for la, ls in zip(lr_a[1:], lr_s[1:]):  # the same updates at the same rates...
        (*key_a, loss_a, norm_a), (*key_s, loss_s, norm_s) = la.split(","), ls.split(",")
        assert key_a == key_s
        # ... and the same loss and step size, to side by side's tolerance
        assert abs(float(loss_a) - float(loss_s)) <= SIDE_TOLERANCE
        assert abs(float(norm_a) - float(norm_s)) <= SIDE_TOLERANCE * max(1.0, float(norm_a))
    for ra, rs in zip(a["history"], s["history"]):
        for k in ("loss", "running_accuracy", "val_loss", "val_accuracy"):
            assert abs(float(ra[k]) - float(rs[k])) <= SIDE_TOLERANCE, (k, ra["epoch"])
    for k in ("test_loss", "test_accuracy", "train_eval_loss", "train_eval_accuracy"):
        assert abs(a["metrics"][k] - s["metrics"][k]) <= SIDE_TOLERANCE, k
    assert r[f"{alone}_vs_side_max_weight_diff"] <= WEIGHT_TOLERANCE
    assert s["metrics"]["side_by_side"] == [{"epochs": [1, 3], "seeds": [1, 2]}]
    assert s["metrics"]["seed"] == a["metrics"]["seed"]
    assert s["metrics"]["optimizer_updates"] == a["metrics"]["optimizer_updates"]


def test_a_diverging_device_run_says_where(trained):
    r, _ = trained
    d = r["diverged"]
    assert d["metrics"] is None and d["failure"]["diverged"] is True
    assert d["failure"]["epoch"] == 1 and d["failure"]["step"] >= 1
    assert len(d["history"]) == 1 and d["history"][0]["loss"] in ("nan", "inf", "")
    assert "the loss became" in r["diverged_error"]
    # lr.csv stops at the step where the loss became non-finite
    assert len(d["lr"].splitlines()) == 1 + d["failure"]["step"]


def test_killed_device_run_resumes_to_the_identical_result(trained, cache):
    r, tmp = trained
    killed = _checks("kill", tmp, cache, tmp / "runs")
    assert killed.returncode == -9, killed.stderr[-2000:]
    run = tmp / "runs" / "killed"
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["epoch"] == 1
    # killed the instant history row 2 was on disk: lr.csv's new text left in its temporary file
    assert len((run / "history.csv").read_text().splitlines()) == 3
    assert [p.name.startswith(".lr.csv.") for p in run.glob("*.tmp")] == [True]
    resumed = _result("resume", tmp, cache, tmp / "runs")
    assert "resuming killed after epoch 1 of 3" in resumed["log"]
    _same_run(resumed["killed"], r["a"])
    assert resumed["killed"]["metrics"]["resumed_at_epochs"] == [1]
    assert resumed["killed"]["files"] == ["config.yaml", "history.csv", "lr.csv", "metrics.json"]


# ------------------------------------------------------------------ run-all --executor side-by-side
def _params(path: Path, **kw) -> Path:
    import yaml

    sys.path.insert(0, str(TESTS))
    from device_checks import BASE

    values = {k: v for k, v in BASE.items() if k != "seed"}
    values.update(seeds=[1, 2], **kw)
    path.write_text(yaml.safe_dump(values))
    return path


def test_side_by_side_executor_refuses_runs_off_the_device(tmp_path, capsys):
    from swin_gao_lib import cli

    params = _params(tmp_path / "suite.yaml", pipeline="host")
    out = tmp_path / "out"
    assert cli.main(["run-all", str(params), "--executor", "side-by-side", "--output",
                     str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"swin-gao: error: {params}: pipeline: seeds side by side run on the device; "
                   "set pipeline: device (with backend: jax)"]
    assert not out.exists()
    assert cli.main(["run-all", str(params), "--group-size", "2"]) == 2
    assert "--group-size: only with --executor side-by-side" in capsys.readouterr().err


def _same_run(got: dict, want: dict) -> None:
    keys = ("epoch", "loss", "running_accuracy", "val_loss", "val_accuracy")
    assert [[row[x] for x in keys] for row in got["history"]] == \
           [[row[x] for x in keys] for row in want["history"]]
    assert got["lr"] == want["lr"]
    for k in ("final_weights_sha256", "test_loss", "test_accuracy", "train_eval_loss",
              "train_eval_accuracy", "optimizer_updates"):
        assert got["metrics"][k] == want["metrics"][k], k


def test_side_by_side_executor_writes_the_suite_and_resumes_a_kill_bit_for_bit(
        trained, cache, tmp_path):
    # the `train` part's group again (its program from the cache): killed between the seeds'
    # epoch-2 checkpoints, then run again, seed 2 catches up while seed 1 waits in its slot
    sys.path.insert(0, str(TESTS))
    from device_checks import _digest_run

    r, _ = trained
    params = _params(tmp_path / "suite.yaml")
    out = tmp_path / "suite"
    killed = _checks("kill-side", tmp_path, cache, out, str(params))
    assert killed.returncode == -9, killed.stderr[-2000:]
    epochs = {s: json.loads((out / f"suite-s{s}" / "checkpoint" / "state.json").read_text())
              for s in (1, 2)}
    assert {s: e["epoch"] for s, e in epochs.items()} == {1: 2, 2: 1}
    assert epochs[1]["program_seeds"] == [1, 2]
    shutil.copytree(out, tmp_path / "copy")
    cmd = [sys.executable, str(TESTS / "no_tensorflow.py"), str(ROOT / "swin_gao_lib" / "cli.py"),
           "run-all", str(params), "--executor", "side-by-side", "--output", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1500,
                          env=_env(cache))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ran 2 in 1 group(s)" in proc.stdout
    assert "resuming suite-s1 after epoch 2 of 3" in proc.stdout
    assert "resuming suite-s2 after epoch 1 of 3" in proc.stdout
    runs = {seed: _digest_run(out / f"suite-s{seed}") for seed in (1, 2)}
    for seed, run in runs.items():
        assert run["files"] == ["config.yaml", "history.csv", "lr.csv", "metrics.json"]
        _same_run(run, r[f"side{seed}"])
    # which epochs ran with which seeds, across the kill
    assert runs[1]["metrics"]["side_by_side"] == [{"epochs": [1, 3], "seeds": [1, 2]}]
    assert runs[2]["metrics"]["side_by_side"] == [
        {"epochs": [1, 1], "seeds": [1, 2]}, {"epochs": [2, 2], "seeds": [2]},
        {"epochs": [3, 3], "seeds": [1, 2]}]
    assert runs[1]["metrics"]["resumed_at_epochs"] == [2]
    assert runs[2]["metrics"]["resumed_at_epochs"] == [1]
    assert (out / "report" / "summary.csv").is_file()
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env=_env(cache))
    assert again.returncode == 0 and "skipped 2 complete" in again.stdout

    # one seed resumed alone trains in its group's program still (a stand-in in the other slot)
    alone = _result("resume-alone", tmp_path, cache, tmp_path / "copy", "suite-s1", "1")
    assert "resuming suite-s1 after epoch 2 of 3" in alone["log"]
    _same_run(alone["run"], r["side1"])
    assert alone["run"]["metrics"]["side_by_side"] == [{"epochs": [1, 2], "seeds": [1, 2]},
                                                       {"epochs": [3, 3], "seeds": [1]}]
