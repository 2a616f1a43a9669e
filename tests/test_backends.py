"""The backend knob, and on JAX exact accumulation and training without TensorFlow.

JAX runs in one fresh process (``tests/backend_checks.py``) with ``import tensorflow`` made
impossible; TensorFlow's same checks run in this process (tests/test_accumulation.py, test_train.py).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import quick_xla_compile
from swin_gao_lib.errors import ConfigError
from swin_gao_lib.runtime.backend import BACKENDS, resolve_backend, use_backend

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def test_backend_resolution_order(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert resolve_backend(None) == "tensorflow" == BACKENDS[0]
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert resolve_backend(None) == "jax"
    assert resolve_backend("tensorflow") == "tensorflow"  # the config wins
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(ConfigError, match="KERAS_BACKEND: 'torch'"):
        resolve_backend(None)


def test_mismatch_with_an_imported_keras_is_a_clear_error(monkeypatch):
    import keras  # this test process runs TensorFlow (conftest)

    assert keras.backend.backend() == "tensorflow"
    assert use_backend("tensorflow") == "tensorflow"
    with pytest.raises(ConfigError, match="already running on 'tensorflow'.*KERAS_BACKEND=jax"):
        use_backend("jax")


@pytest.fixture(scope="module")
def jax_checks(tmp_path_factory) -> dict:
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax is not installed")
    tmp = tmp_path_factory.mktemp("jax")
    env = quick_xla_compile({k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"})
    proc = subprocess.run([sys.executable, str(TESTS / "no_tensorflow.py"),
                           str(TESTS / "backend_checks.py"), str(tmp / "out.json"),
                           str(tmp / "runs")],
                          cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads((tmp / "out.json").read_text())


@pytest.mark.slow(40)
def test_in_step_gradient_equals_full_batch_and_sums_count_micro_batches(jax_checks):
    r = jax_checks["equivalence"]
    assert r["grad_mean_n4"] <= 1e-5
    assert r["grad_mean_4_4_2"] <= 1e-5  # every row weighted alike
    assert r["grad_naive_equal_weights_4_4_2"] > 1e-3  # 1/3 per micro-batch would be wrong
    assert r["grad_sum_n4_vs_4x_mean"] <= 1e-5
    assert r["grad_sum_4_4_2_vs_3x_full"] <= 1e-5


@pytest.mark.parametrize("opt, tol", [("sgd", 1e-6), ("adamw", 1e-5)])
def test_five_updates_in_both_modes_match_full_batch_training(jax_checks, opt, tol):
    r = jax_checks["equivalence"]
    assert r[f"{opt}_in_step_updates"] == [5, 5, 5, 5]
    assert r[f"{opt}_in_step_5_updates_max_diff"] <= tol  # AdamW: 1% of its lr 1e-3
    assert r[f"{opt}_optimizer_mode_updates"] == [20, 5]
    assert r[f"{opt}_optimizer_mode_max_diff"] <= tol
    assert r[f"{opt}_optimizer_mode_still_between_updates"]


def test_metrics_cover_every_real_row(jax_checks):
    r = jax_checks["equivalence"]
    assert r["metrics_loss"][0] == pytest.approx(r["metrics_loss"][1], rel=1e-5)
    assert r["metrics_accuracy"][0] == pytest.approx(r["metrics_accuracy"][1])


@pytest.mark.slow(15)
def test_jax_trains_bit_identically_with_tensorflow_unimportable(jax_checks):
    trained = jax_checks["train"]
    a, b = trained["runs"]
    assert a["digest"] == b["digest"] and a["losses"] == b["losses"]
    assert all(loss == loss for loss in a["losses"])  # finite, not NaN
    assert a["updates"] == 2 * 3  # 48 images, B=16, 2 epochs
    assert a["environment"]["keras_backend"] == "jax" and a["environment"]["backend_version"]
    assert "jax" in a["memory"]
    assert trained["tensorflow_imported"] is False  # the blocker was on: it could not


def test_jax_fit_reads_the_batches_in_order(jax_checks):
    # Keras shuffles a PyDataset's batch order unless fit gets shuffle=False; the kit's
    # order (by seed and epoch, what resume relies on) must reach the model unchanged
    fetched = jax_checks["train"]["batches_fetched"]
    per_run = 3 * 2  # 3 batches of 16 from 48 images, 2 epochs
    for run in (0, 1):
        part = fetched[len(fetched) // 2 * run:len(fetched) // 2 * (run + 1)]
        assert part[-per_run:] == list(range(per_run)), part
