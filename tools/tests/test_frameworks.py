"""The runnable cells of docs/accumulation.md's frameworks table: Keras's and optax's accumulation.

Keras runs in ``framework_checks.py`` (TensorFlow here, JAX in a fresh process), optax here,
each against NumPy references; the kit's in-step cells are in tests/test_accumulation.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import framework_checks

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module", params=["tensorflow", "jax"])
def checks(request, tmp_path_factory) -> dict:
    if request.param == "tensorflow":
        import keras

        assert keras.backend.backend() == "tensorflow"
        return framework_checks.run(keras)
    out = tmp_path_factory.mktemp("frameworks") / "jax.json"
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    proc = subprocess.run([sys.executable, str(HERE / "framework_checks.py"), "jax", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["backend"] == "jax"
    return result


def close(a, b, tol=1e-6) -> bool:
    return np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=tol, atol=tol)


# --- Keras gradient_accumulation_steps -------------------------------------------------

def test_keras_averages_the_micro_batch_gradients_and_waits_for_the_update(checks):
    c = checks["average"]
    assert close(c["after_first_micro_step"], 0.0, 0)  # nothing moves between updates
    assert close(c["after_update"], c["mean_reference"])
    assert not close(c["after_update"], c["sum_reference"], 1e-3)


def test_keras_carries_an_unfinished_group_across_the_epoch_end(checks):
    c = checks["carry"]
    first, second = c["epochs"]["0"], c["epochs"]["1"]
    # 3 micro-steps, N = 2: one update, and micro-batch 3's gradient waits in the accumulator
    assert (first["iterations"], first["micro_steps"]) == (1, 3)
    assert close(first["kernel"], c["w1"])
    assert close(first["accumulator"], c["accumulator_reference"], 1e-5)
    # ... and is averaged with epoch 2's first micro-batch
    assert (second["iterations"], second["micro_steps"]) == (3, 6)
    assert close(second["kernel"], c["w3"], 1e-5)


def test_keras_weights_a_short_micro_batch_like_a_full_one(checks):
    c = checks["short"]  # micro-batches of 2, 2 and 1 rows, N = 3
    assert close(c["after_update"], c["equal_weights_reference"])
    assert not close(c["after_update"], c["per_sample_reference"], 1e-3)


def test_keras_fit_reads_the_schedule_at_the_micro_step_counter(checks):
    c = checks["schedule"]  # N = 2, 4 updates of a cosine over 4 updates
    assert c["moved"] == pytest.approx(c["sum_at_micro_steps"], abs=1e-6)
    assert c["sum_at_updates"] > 2 * c["sum_at_micro_steps"]


def test_keras_applies_weight_decay_once_per_update(checks):
    c = checks["decay"]
    assert close(c["values"], c["per_update"])


def test_keras_batchnorm_statistics_move_on_every_micro_step(checks):
    c = checks["batchnorm"]
    assert c["kernel_moved"] == 0.0
    assert close(c["moving_mean"], c["reference"])


# --- optax ---------------------------------------------------------------------------

G = [np.array([1.0, -2.0]), np.array([3.0, 0.5]), np.array([-1.0, 4.0]), np.array([2.0, 2.0])]


def _mini_steps(opt, grads, params=None):
    import jax
    import jax.numpy as jnp

    params = jnp.zeros(2) if params is None else params
    state = opt.init(params)
    update = jax.jit(opt.update)
    out = []
    for g in grads:
        u, state = update(jnp.asarray(g, jnp.float32), state, params)
        out.append(np.asarray(u))
    return out, state


def test_optax_multisteps_averages_by_default_and_sums_on_request():
    import optax

    mean, _ = _mini_steps(optax.MultiSteps(optax.sgd(0.1), every_k_schedule=3), G[:3])
    assert close(mean[0], 0, 0) and close(mean[1], 0, 0)
    assert close(mean[2], -0.1 * np.mean(G[:3], axis=0))
    total, _ = _mini_steps(optax.MultiSteps(optax.sgd(0.1), 3, use_grad_mean=False), G[:3])
    assert close(total[2], -0.1 * np.sum(G[:3], axis=0))


def test_optax_multisteps_keeps_an_unfinished_group_for_the_next_call():
    import optax

    opt = optax.MultiSteps(optax.sgd(0.1), every_k_schedule=2)
    updates, state = _mini_steps(opt, G[:3])  # an "epoch" of 3 mini-steps
    assert int(state.mini_step) == 1 and close(state.acc_grads, G[2])
    more, _ = _mini_steps(opt, G[2:4])  # MultiSteps has no epoch: the caller's next mini-step
    assert close(more[1], -0.1 * (G[2] + G[3]) / 2)


def test_optax_multisteps_runs_the_inner_update_on_every_mini_step():
    import jax
    import optax

    calls = []

    def count():
        def update(u, s, params=None):
            jax.debug.callback(lambda: calls.append(1))
            return u, s
        return optax.GradientTransformation(lambda p: optax.EmptyState(), update)

    opt = optax.MultiSteps(optax.chain(count(), optax.sgd(0.1)), every_k_schedule=3)
    updates, _ = _mini_steps(opt, G[:3] * 2)
    jax.effects_barrier()
    assert sum(1 for u in updates if np.any(u != 0)) == 2  # two updates ...
    assert len(calls) == 6  # ... and the inner update computed on all six mini-steps


def test_optax_multisteps_inner_schedule_and_weight_decay_count_updates():
    import jax.numpy as jnp
    import optax

    sched = optax.cosine_decay_schedule(0.1, decay_steps=4)
    updates, _ = _mini_steps(optax.MultiSteps(optax.sgd(sched), 2), [np.ones(2)] * 8)
    assert close([-u[0] for u in updates[1::2]], [float(sched(k)) for k in range(4)])
    params = jnp.ones(2)
    decayed, _ = _mini_steps(optax.MultiSteps(optax.chain(optax.add_decayed_weights(0.5),
                                                          optax.sgd(0.1)), 2),
                             [np.zeros(2)] * 4, params)
    assert close(decayed, [np.zeros(2), -0.05 * np.ones(2)] * 2)


def test_optax_microbatch_sums_by_default_and_needs_equal_micro_batches():
    import jax
    import jax.numpy as jnp
    import optax

    x = jnp.asarray(np.arange(12.0).reshape(6, 2) / 10)
    y = jnp.asarray(np.arange(6.0) / 5)

    def grad(w, batch):
        bx, by = batch
        return jax.grad(lambda w: jnp.mean((bx @ w - by) ** 2))(w)

    w = jnp.array([0.3, -0.2])
    full = np.asarray(grad(w, (x, y)))
    summed = optax.microbatch(grad, argnums=1, microbatch_size=2)(w, (x, y))
    assert close(summed, 3 * full, 1e-5)  # 3 micro-batch means added: N times the mean
    mean = optax.microbatch(grad, argnums=1, microbatch_size=2,
                            accumulator=optax.microbatching.AccumulationType.MEAN)(w, (x, y))
    assert close(mean, full, 1e-5)
    with pytest.raises(ValueError, match="divisible"):
        optax.microbatch(grad, argnums=1, microbatch_size=4)(w, (x, y))


# --- the table itself ----------------------------------------------------------------

def test_every_cell_of_the_frameworks_table_names_its_source():
    import re

    text = (ROOT / "docs" / "accumulation.md").read_text()
    section = text.split("## Across frameworks", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("| **")]
    assert len(rows) == 8
    defined = set(re.findall(r"^- \*\*([A-Z]\d*)\*\* ", section, flags=re.M))
    tests = set()
    for path in [*(ROOT / "tests").glob("test_*.py"), *HERE.glob("test_*.py")]:
        tests |= set(re.findall(r"^def (test_\w+)", path.read_text(), flags=re.M))
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
        assert len(cells) == 8, row[:80]
        for cell in cells[1:]:
            keys = re.findall(r"\[([A-Z]\d*)\]", cell)
            named = re.findall(r"\b(test_\w+)\b(?!\.py)", cell)
            assert keys or named, f"no source in: {cell[:80]} ({cells[0][:40]})"
            assert set(keys) <= defined, set(keys) - defined
            assert set(named) <= tests, set(named) - tests
