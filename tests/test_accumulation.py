"""Gradient accumulation against full-batch training: Keras's own train step on the whole batch,
or ``tf.GradientTape``'s gradient of it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import TINY_DETERMINISTIC
from swin_gao_lib.training.accumulation import AccumulatingModel, build_trainer, optimizer_updates
from swin_gao_lib.config import make_config
from swin_gao_lib.model import build_swin

BATCH = 16


def _cfg(**kw):
    values = {**TINY_DETERMINISTIC, "batch_size": BATCH}
    values.update(kw)
    return make_config(values)


@pytest.fixture(scope="module")
def setup():
    keras.utils.set_random_seed(0)
    cfg = _cfg()
    net = build_swin(cfg)
    rng = np.random.default_rng(0)
    x = rng.random((5 * BATCH, 32, 32, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, len(x))]
    return net, [w.copy() for w in net.get_weights()], x, y


def _full_gradient(net, x, y, smoothing=0.1):
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing)
    with tf.GradientTape() as tape:
        loss = loss_fn(y, net(x, training=True))
    return [tf.convert_to_tensor(g).numpy() for g in tape.gradient(loss, net.trainable_variables)]


def _accumulated_gradient(net, x, y, steps, reduction="mean", micro=None):
    model = build_trainer(_cfg(accumulation_steps=steps, reduction=reduction), net)
    if micro is not None:
        model.micro_batch_size = micro
    return [g.numpy() for g in model.accumulated_gradients(tf.constant(x), tf.constant(y))]


def _rel_err(a, b):
    num = np.sqrt(sum(((p - q) ** 2).sum() for p, q in zip(a, b)))
    return num / np.sqrt(sum((q**2).sum() for q in b))


@pytest.mark.parametrize("steps", [2, 4])
def test_in_step_mean_equals_full_batch_gradient(setup, steps):
    net, w0, x, y = setup
    net.set_weights(w0)
    ref = _full_gradient(net, x[:BATCH], y[:BATCH])
    acc = _accumulated_gradient(net, x[:BATCH], y[:BATCH], steps)
    assert _rel_err(acc, ref) <= 1e-5


@pytest.mark.parametrize("steps", [2, 4])
def test_sum_reduction_is_n_times_mean(setup, steps):
    net, w0, x, y = setup
    net.set_weights(w0)
    mean = _accumulated_gradient(net, x[:BATCH], y[:BATCH], steps, "mean")
    total = _accumulated_gradient(net, x[:BATCH], y[:BATCH], steps, "sum")
    assert _rel_err(total, [steps * g for g in mean]) <= 1e-5


@pytest.mark.parametrize("rows,steps,micro,reduction,factor", [
    (10, 3, 4, "mean", 1),  # 4 + 4 + 2
    (10, 3, 4, "sum", 3),  # the sum: 3 x the exact mean, not g_1 + g_2 + g_3
    (20, 4, 8, "sum", 3),  # an epoch's short last batch with N=4: 8 + 8 + 4, 3 micro-batches
])
def test_uneven_micro_batches_weigh_every_row_alike(setup, rows, steps, micro, reduction, factor):
    net, w0, x, y = setup
    net.set_weights(w0)
    xb, yb = x[:rows], y[:rows]
    want = [factor * g for g in _full_gradient(net, xb, yb)]
    got = _accumulated_gradient(net, xb, yb, steps, reduction, micro)
    assert _rel_err(got, want) <= 1e-5
    # each micro-batch's own mean weighed alike would over-weigh the short one
    parts = [_full_gradient(net, xb[s:s + micro], yb[s:s + micro]) for s in range(0, rows, micro)]
    naive = [factor * sum(p[i] for p in parts) / len(parts) for i in range(len(want))]
    assert _rel_err(naive, want) > 1e-3


def _train(net, w0, x, y, **kw):
    """Five updates with one config; returns per-update weights, model."""
    net.set_weights(w0)
    cfg = _cfg(**kw)
    model = build_trainer(cfg, net)
    snapshots = []
    cb = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda b, logs: snapshots.append([w.copy() for w in net.get_weights()]))
    history = model.fit(x, y, batch_size=cfg.fit_batch_size, epochs=1, shuffle=False, verbose=0,
                        callbacks=[cb])
    return snapshots, model, history.history


SGD = dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=0.0)
ADAMW = dict(optimizer="adamw", learning_rate=1e-3, weight_decay=1e-2)


@pytest.mark.parametrize("steps", [2, 4])
@pytest.mark.parametrize("opt,tol", [(SGD, 1e-6), (ADAMW, 0.01 * ADAMW["learning_rate"])],
                         ids=["sgd", "adamw"])
@pytest.mark.slow(5)
def test_in_step_five_updates_match_full_batch(setup, steps, opt, tol):
    net, w0, x, y = setup
    ref, _, _ = _train(net, w0, x, y, **opt)
    acc, model, _ = _train(net, w0, x, y, accumulation_steps=steps, **opt)
    assert len(ref) == len(acc) == 5
    assert max(np.abs(a - b).max() for a, b in zip(acc[-1], ref[-1])) <= tol
    assert optimizer_updates(model.optimizer) == 5


def test_sum_reduction_with_sgd_is_n_times_the_step(setup):
    # Eq. 9 literally: with SGD (no momentum) the summed gradient moves the
    # weights N times as far as the mean.
    net, w0, x, y = setup
    sgd = dict(SGD, momentum=0.0)
    xb, yb = x[:BATCH], y[:BATCH]
    mean, _, _ = _train(net, w0, xb, yb, accumulation_steps=4, reduction="mean", **sgd)
    total, _, _ = _train(net, w0, xb, yb, accumulation_steps=4, reduction="sum", **sgd)
    for w, m, t in zip(w0, mean[0], total[0]):
        np.testing.assert_allclose(t - w, 4 * (m - w), rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("opt", [SGD, ADAMW], ids=["sgd", "adamw"])
@pytest.mark.slow(5)
def test_optimizer_mode_matches_full_batch_after_each_update(setup, opt):
    net, w0, x, y = setup
    ref, _, _ = _train(net, w0, x, y, **opt)
    acc, model, _ = _train(net, w0, x, y, accumulation_steps=4, accumulation_mode="optimizer", **opt)
    assert len(acc) == 4 * len(ref)  # a snapshot per micro-step
    tol = 1e-6 if opt is SGD else 0.01 * opt["learning_rate"]
    for update, ref_w in enumerate(ref):
        after = acc[4 * update + 3]
        assert max(np.abs(a - b).max() for a, b in zip(after, ref_w)) <= tol, update
        if update:  # between updates the weights do not move
            for micro in (4 * update, 4 * update + 1, 4 * update + 2):
                assert all(np.array_equal(a, b) for a, b in zip(acc[micro], acc[4 * update - 1]))
    assert optimizer_updates(model.optimizer) == 5


def test_metrics_cover_all_samples(setup):
    net, w0, x, y = setup
    net.set_weights(w0)
    xb, yb = x[:10], y[:10]
    model = build_trainer(_cfg(accumulation_steps=3, batch_size=12, optimizer="sgd",
                               learning_rate=1e-9, weight_decay=0.0, momentum=0.0), net)
    logs = model.fit(xb, yb, batch_size=12, epochs=1, verbose=0, shuffle=False).history
    logits = net(xb, training=False).numpy()  # lr ~0: the weights barely move
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)
    assert logs["loss"][0] == pytest.approx(float(loss_fn(yb, logits)), rel=1e-5)
    acc = (logits.argmax(1) == yb.argmax(1)).mean()
    assert logs["accuracy"][0] == pytest.approx(acc)


def test_accumulating_model_validates_arguments():
    net = build_swin(_cfg())
    with pytest.raises(ValueError, match="accumulation_steps"):
        AccumulatingModel(net, accumulation_steps=0)
    with pytest.raises(ValueError, match="reduction"):
        AccumulatingModel(net, accumulation_steps=2, reduction="avg")


def test_model_gradients_are_dense(setup):
    # Regression: the relative-position bias was a gather, whose IndexedSlices
    # gradient (repeated indices) made Keras's Adam square per slice, so plain
    # full-batch training and accumulation disagreed by ~lr on that table.
    net, w0, x, y = setup
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    with tf.GradientTape() as tape:
        loss = loss_fn(y[:4], net(x[:4], training=True))
    grads = tape.gradient(loss, net.trainable_variables)
    assert not [v.path for v, g in zip(net.trainable_variables, grads)
                if isinstance(g, tf.IndexedSlices)]


@pytest.mark.parametrize("batch", [16, None])
def test_static_and_dynamic_micro_batch_paths_agree(setup, batch):
    # A traced batch of known size takes the reshape path (static shapes, for
    # XLA); an unknown size takes the slicing path. Both give the full gradient.
    net, w0, x, y = setup
    net.set_weights(w0)
    model = build_trainer(_cfg(accumulation_steps=4), net)
    fn = tf.function(model.accumulated_gradients,
                     input_signature=[tf.TensorSpec((batch, 32, 32, 3)), tf.TensorSpec((batch, 10))])
    acc = [g.numpy() for g in fn(tf.constant(x[:BATCH]), tf.constant(y[:BATCH]))]
    assert _rel_err(acc, _full_gradient(net, x[:BATCH], y[:BATCH])) <= 1e-5


def test_micro_batches_have_a_static_shape_for_xla(setup):
    # Regression: micro-batches sliced with a data-dependent end had an unknown
    # size, which XLA pads to the whole batch (each micro-batch then cost as
    # much as the full batch under jit_compile). Traced with an unknown batch
    # size, the network must still see micro-batches of exactly m rows.
    net, w0, x, y = setup
    model = build_trainer(_cfg(accumulation_steps=4), net)
    seen = []
    original = model.call

    def spy(inputs, training=None):
        seen.append(tuple(inputs.shape))
        return original(inputs, training=training)

    model.call = spy
    fn = tf.function(model.accumulated_gradients,
                     input_signature=[tf.TensorSpec((None, 32, 32, 3)), tf.TensorSpec((None, 10))])
    fn.get_concrete_function()
    assert seen and all(s == (4, 32, 32, 3) for s in seen), seen


# ------------------------------------------------ what each micro-batch sees (BatchNorm, Dropout)
BN_ROWS = np.random.default_rng(2).normal(size=(4, 3)).astype("float32")


def _moving_mean_after_one_step(x):
    """BatchNormalization(momentum 0.5)'s moving mean after one in-step update of N = 2."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.5),
                            keras.layers.Dense(1)])
    model = AccumulatingModel(net, accumulation_steps=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.train_on_batch(x, np.zeros((len(x), 1), "float32"))
    return net.layers[0].moving_mean.numpy()


def test_in_step_batchnorm_runs_once_per_micro_batch():
    got = _moving_mean_after_one_step(BN_ROWS)  # micro-batches of 2 and 2 rows
    per_micro_batch = 0.25 * BN_ROWS[:2].mean(0) + 0.5 * BN_ROWS[2:].mean(0)
    np.testing.assert_allclose(got, per_micro_batch, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, 0.5 * BN_ROWS.mean(0), atol=1e-3)  # not the whole batch once


def test_in_step_batchnorm_counts_the_padded_row_of_a_short_micro_batch():
    # a documented limit (docs/accumulation.md): 2 rows, then 1 row and 1 zero row of padding
    got = _moving_mean_after_one_step(BN_ROWS[:3])
    with_padding = 0.25 * BN_ROWS[:2].mean(0) + 0.5 * BN_ROWS[2] / 2
    np.testing.assert_allclose(got, with_padding, rtol=1e-5, atol=1e-5)
    assert not np.allclose(got, 0.25 * BN_ROWS[:2].mean(0) + 0.5 * BN_ROWS[2], atol=1e-3)


def test_in_step_draws_a_dropout_mask_per_micro_batch():
    # two equal rows, one per micro-batch: one shared mask would move the kernel by one value
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((64,)), keras.layers.Dropout(0.5),
                            keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")])
    model = AccumulatingModel(net, accumulation_steps=2)
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.train_on_batch(np.ones((2, 64), "float32"), np.zeros((2, 1), "float32"))
    move = 1.0 - net.layers[-1].kernel.numpy().ravel()
    assert len(np.unique(np.round(move[move != 0], 5))) > 1
