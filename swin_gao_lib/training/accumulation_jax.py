r"""In-step gradient accumulation on JAX: the step of :mod:`swin_gao_lib.training.accumulation`.

Each micro-batch's gradient is weighted by ``m / b`` (``mean``) or ``K m / b``
(``sum``), and one optimizer update applies the total. The step is a pure
function of the model's state: a ``jax.lax.scan`` over the padded
micro-batches (one copy of the body whatever ``K`` is; one micro-batch's
activations alive at a time), carrying the non-trainable state (dropout's seed
generators) so each micro-batch draws its own masks. Loss and metrics count the
``b`` real rows only.
"""

from __future__ import annotations

from typing import Any

import keras


def micro_batching(batch: int, accumulation_steps: int,
                   micro_batch_size: int | None) -> tuple[int, int]:
    """``(m, K)``: rows per micro-batch and micro-batches for a batch of ``batch`` rows."""
    m = micro_batch_size or -(-batch // accumulation_steps)
    return m, -(-batch // m)


def accumulated_gradients(model: keras.Model, trainable: list, non_trainable: list,
                          metrics_variables: list, optimizer_variables: list, x: Any, y: Any,
                          ) -> tuple[list, list, Any, Any]:
    """One batch's combined gradient, one micro-batch at a time (pure; jit-able).

    ``model`` is a compiled ``AccumulatingModel``; the variable values are those
    the JAX trainer passes to ``train_step``; the batch's row count is static.
    Returns ``(grads, non_trainable, mean_loss, y_pred)``: one gradient per
    trainable variable (of the optimizer's scaled loss), the new non-trainable
    values, the mean loss and the predictions of the real rows.
    """
    import jax
    import jax.numpy as jnp

    b = x.shape[0]
    m, n_micro = micro_batching(b, model.accumulation_steps, model.micro_batch_size)
    pad = n_micro * m - b

    def split(t):
        t = jnp.pad(t, [(0, pad)] + [(0, 0)] * (t.ndim - 1))
        return t.reshape((n_micro, m) + t.shape[1:])

    xs, ys = split(x), split(y)
    ws = (jnp.arange(n_micro * m) < b).astype("float32").reshape(n_micro, m)
    # grad(loss_k) = (n_k/m) grad L_k; mean: (m/b) grad(loss_k) = (n_k/b) grad L_k; sum: K times.
    weight = m / b * (n_micro if model.reduction == "sum" else 1)
    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)

    def body(carry, micro):
        acc, ntv, loss_sum = carry
        xk, yk, wk = micro
        # sum_over_batch_size with 0/1 weights: loss_k = (1/m) * the sum of the real rows' losses
        (_, (unscaled, y_pred, ntv, _)), grads = grad_fn(
            trainable, ntv, metrics_variables, xk, yk, wk, training=True,
            optimizer_variables=optimizer_variables)
        acc = [a + jnp.asarray(weight, a.dtype) * g.astype(a.dtype) for a, g in zip(acc, grads)]
        return (acc, ntv, loss_sum + unscaled.astype("float32") * m), y_pred

    zeros = [jnp.zeros(v.shape, v.dtype) for v in trainable]
    (grads, non_trainable, loss_sum), preds = jax.lax.scan(
        body, (zeros, list(non_trainable), jnp.zeros((), "float32")), (xs, ys, ws))
    y_pred = preds.reshape((n_micro * m,) + preds.shape[2:])[:b]
    return grads, non_trainable, loss_sum / b, y_pred


def train_step(model: keras.Model, state: tuple, data: Any) -> tuple[dict, tuple]:
    """The JAX trainer's ``train_step(state, data)`` with in-step accumulation."""
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
    if sample_weight is not None:
        raise ValueError("in_step accumulation does not support sample weights")
    grads, non_trainable, loss, y_pred = accumulated_gradients(
        model, trainable, non_trainable, metrics_variables, optimizer_variables, x, y)
    trainable, optimizer_variables = model.optimizer.stateless_apply(
        optimizer_variables, grads, trainable)
    # The loss tracker gets the batch's mean loss with weight b, the metrics the real rows.
    logs, metrics_variables = model._update_metrics_variables(
        metrics_variables, loss, x, y, y_pred, None)
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)
