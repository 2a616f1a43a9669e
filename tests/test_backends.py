"""Both Keras backends: the backend knob, exact accumulation, training without TensorFlow.

Keras picks its backend once per process: each backend's checks run in one fresh process
(``tests/backend_checks.py``), the JAX one with ``import tensorflow`` made impossible.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import quick_xla_compile
from swin_gao_lib.runtime.backend import BACKENDS, resolve_backend, use_backend
from swin_gao_lib.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


needs_jax = pytest.mark.skipif(not _has("jax"), reason="jax is not installed")


def _run_checks(backend: str, part: str, tmp: Path, *extra: str) -> dict:
    out = tmp / f"{backend}-{part}.json"
    cmd = [sys.executable, str(TESTS / "backend_checks.py"), backend, part, str(out), *extra]
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    if backend == "jax":  # as on a machine without TensorFlow; compiling is most of its time
        cmd.insert(1, str(TESTS / "no_tensorflow.py"))
        env = quick_xla_compile(env)
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    """Each backend's checks, both parts in one fresh process per backend, run on first use."""
    done: dict[str, dict] = {}

    def of(backend: str) -> dict:
        if backend not in done:
            tmp = tmp_path_factory.mktemp(backend)
            done[backend] = _run_checks(backend, "all", tmp, str(tmp / "runs"))
        return done[backend]
    return of


# ------------------------------------------------------------------ the knob
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


# ------------------------------------------------------------------ exactness, per backend
@pytest.fixture(scope="module", params=list(BACKENDS))
def equivalence(request, checks):
    if request.param == "jax" and not _has("jax"):
        pytest.skip("jax is not installed")
    return request.param, checks(request.param)["equivalence"]


@pytest.mark.slow(40)
def test_in_step_gradient_equals_full_batch(equivalence):
    _, r = equivalence
    assert r["grad_mean_n4"] <= 1e-5
    assert r["grad_mean_4_4_2"] <= 1e-5  # every row weighted alike
    assert r["grad_naive_equal_weights_4_4_2"] > 1e-3  # 1/3 per micro-batch would be wrong


def test_sum_is_micro_batch_count_times_mean(equivalence):
    _, r = equivalence
    assert r["grad_sum_n4_vs_4x_mean"] <= 1e-5
    assert r["grad_sum_4_4_2_vs_3x_full"] <= 1e-5


@pytest.mark.parametrize("opt, tol", [("sgd", 1e-6), ("adamw", 1e-5)])
def test_five_updates_match_full_batch_training(equivalence, opt, tol):
    _, r = equivalence
    assert r[f"{opt}_in_step_updates"] == [5, 5, 5, 5]
    assert r[f"{opt}_in_step_5_updates_max_diff"] <= tol  # AdamW: 1% of its lr 1e-3


@pytest.mark.parametrize("opt, tol", [("sgd", 1e-6), ("adamw", 1e-5)])
def test_optimizer_mode_matches_full_batch_after_each_update(equivalence, opt, tol):
    _, r = equivalence
    assert r[f"{opt}_optimizer_mode_updates"] == [20, 5]
    assert r[f"{opt}_optimizer_mode_max_diff"] <= tol
    assert r[f"{opt}_optimizer_mode_still_between_updates"]


def test_metrics_cover_every_real_row(equivalence):
    _, r = equivalence
    assert r["metrics_loss"][0] == pytest.approx(r["metrics_loss"][1], rel=1e-5)
    assert r["metrics_accuracy"][0] == pytest.approx(r["metrics_accuracy"][1])


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def trained(checks):
    return {backend: checks(backend)["train"] for backend in BACKENDS
            if backend != "jax" or _has("jax")}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.slow(15)
def test_same_seed_same_backend_is_bit_identical(trained, backend):
    if backend not in trained:
        pytest.skip(f"{backend} is not installed")
    a, b = trained[backend]["runs"]
    assert a["digest"] == b["digest"] and a["losses"] == b["losses"]
    assert a["updates"] == 2 * 3  # 48 images, B=16, 2 epochs
    assert a["environment"]["keras_backend"] == backend and a["environment"]["backend_version"]
    assert backend in a["memory"]


@needs_jax
def test_jax_trains_with_tensorflow_unimportable(trained):
    assert trained["jax"]["tensorflow_imported"] is False  # the blocker was on: it could not
    assert all(l == l for l in trained["jax"]["runs"][0]["losses"])  # finite, not NaN


@needs_jax
def test_jax_fit_reads_the_batches_in_order(trained):
    # Keras shuffles a PyDataset's batch order unless fit gets shuffle=False; the kit's
    # order (by seed and epoch, what resume relies on) must reach the model unchanged.
    fetched = trained["jax"]["batches_fetched"]
    per_run = 3 * 2  # 3 batches of 16 from 48 images, 2 epochs
    for run in (0, 1):
        part = fetched[len(fetched) // 2 * run:len(fetched) // 2 * (run + 1)]
        assert part[-per_run:] == list(range(per_run)), part
