r"""Gradient accumulation: one optimizer update from several micro-batches.

``in_step`` (the paper's Eq. 9-10, inside one train step): a batch of ``b``
rows is cut into ``K`` micro-batches of ``m = ceil(B/N)`` rows (the last may
be shorter); micro-batch ``k`` has ``n_k`` rows and mean loss ``L_k``::

    reduction: mean   g = sum_k (n_k / b) * grad L_k  = grad (1/b) sum_i l_i
    reduction: sum    g = K * (mean g above)

so ``mean`` is the exact full-batch gradient, also for a short batch, and
``sum`` is Eq. 9 for equal micro-batches. The batch is zero-padded to ``K m``
rows weighted 0/1 (static shapes for XLA), and the micro-batches run one after
another (``tf.while_loop`` with ``parallel_iterations=1``; on JAX
:mod:`swin_gao_lib.training.accumulation_jax`), so one micro-batch's
activations are alive at a time.

``optimizer``: Keras's ``gradient_accumulation_steps`` (every micro-batch
weighs 1/N; a schedule is evaluated at the micro-step counter, so update ``k``
gets ``schedule(N k + N - 1)``). :class:`UpdateSchedule` is defined per update.
The narrative and measurements: docs/accumulation.md.
"""

from __future__ import annotations

import math
from typing import Any

import keras

from swin_gao_lib.config import RunConfig


class AccumulatingModel(keras.Model):
    """Train ``network`` (``call`` delegates to it: save and serve it) with in-step accumulation.

    ``accumulation_steps``: N (1: Keras's ordinary step); ``micro_batch_size``:
    rows per forward/backward pass (default ``ceil(batch / N)``; fixed, it keeps
    the memory bound static); ``reduction``: ``"mean"`` or ``"sum"`` (module doc).
    """

    def __init__(self, network: keras.Model, accumulation_steps: int = 1,
                 micro_batch_size: int | None = None, reduction: str = "mean", **kwargs):
        super().__init__(**kwargs)
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, got {accumulation_steps}")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        if micro_batch_size is not None and micro_batch_size < 1:
            raise ValueError(f"micro_batch_size must be >= 1, got {micro_batch_size}")
        self.network = network
        self.accumulation_steps = accumulation_steps
        self.micro_batch_size = micro_batch_size
        self.reduction = reduction

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def train_step(self, *args: Any):
        """Keras's train step: ``(data)`` on TensorFlow, ``(state, data)`` on JAX."""
        if keras.backend.backend() == "jax":
            if self.accumulation_steps == 1:
                return super().train_step(*args)
            self._check_loss_reduction()
            from swin_gao_lib.training.accumulation_jax import train_step

            return train_step(self, *args)
        (data,) = args
        if self.accumulation_steps == 1:
            return super().train_step(data)
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        if sample_weight is not None:
            raise ValueError("in_step accumulation does not support sample weights")
        grads = self.accumulated_gradients(x, y)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self.get_metrics_result()

    def accumulated_gradients(self, x, y) -> list:
        """One tensor per trainable variable: the batch's combined gradient (module doc).

        The loss and metric trackers see every micro-batch, weighted by its rows.
        """
        import tensorflow as tf

        from swin_gao_lib.training.accumulation_jax import micro_batching

        variables = self.trainable_variables
        self._check_loss_reduction()
        batch = tf.shape(x)[0]
        m, n_micro = micro_batching(batch, self.accumulation_steps, self.micro_batch_size)
        # Padded to n_micro * m rows seen as (n_micro, m, ...), a 0/1 weight per row: the
        # static shape m XLA needs (a slice with a data-dependent end costs the whole batch
        # under jit_compile); a short last micro-batch is one with zero weights.
        pad = n_micro * m - batch

        def split(t):
            t = tf.pad(t, [[0, pad]] + [[0, 0]] * (len(t.shape) - 1))
            return tf.reshape(t, (-1, m, *t.shape[1:]))

        xs, ys = split(x), split(y)
        ws = tf.reshape(tf.cast(tf.range(n_micro * m) < batch, x.dtype), (-1, m))
        b_float = tf.cast(batch, x.dtype)

        def body(k, *acc):
            xk, yk, wk = xs[k], ys[k], ws[k]
            n_k = tf.reduce_sum(wk)
            with tf.GradientTape() as tape:
                y_pred = self(xk, training=True)
                # sum_over_batch_size with 0/1 weights: (1/m) * sum of the n_k real losses
                loss = self._compute_loss(x=xk, y=yk, y_pred=y_pred, sample_weight=wk,
                                          training=True)
                scaled = self.optimizer.scale_loss(loss) if self.optimizer else loss
            mean_k = loss * tf.cast(m, loss.dtype) / n_k  # the micro-batch's mean loss L_k
            self._loss_tracker.update_state(mean_k, sample_weight=n_k)
            # Metrics see only the real rows (compiled `metrics` ignore sample weights).
            real = tf.cast(n_k, tf.int32)
            self.compute_metrics(xk[:real], yk[:real], y_pred[:real])
            grads = tape.gradient(scaled, variables)
            # grad(loss) = (n_k/m) grad L_k, so mean: (m/b) grad(loss) = (n_k/b) grad L_k;
            # sum: K times that (= grad L_k for equal micro-batches, K = n_micro).
            weight = tf.cast(m, x.dtype) / b_float
            if self.reduction == "sum":
                weight = weight * tf.cast(n_micro, x.dtype)
            acc = list(acc)
            for i, g in enumerate(grads):
                if g is None:  # a variable this loss does not reach
                    continue
                # A gather-based layer would give IndexedSlices; the sum is dense anyway.
                g = tf.cast(tf.convert_to_tensor(g), acc[i].dtype)
                acc[i] = acc[i] + tf.cast(weight, acc[i].dtype) * g
            return (k + 1, *acc)

        zeros = [tf.zeros(v.shape, v.dtype) for v in variables]
        # parallel_iterations=1: micro-batch k+1 starts only after k's gradient is
        # added, so at most one micro-batch's activations are alive at a time.
        _, *grads = tf.while_loop(lambda k, *_: k < n_micro, body, (tf.constant(0), *zeros),
                                  parallel_iterations=1)
        return grads

    def _check_loss_reduction(self) -> None:
        """The 0/1 row weights need a loss that divides by the micro-batch's row count."""
        reduction = getattr(self.loss, "reduction", "sum_over_batch_size")
        if reduction != "sum_over_batch_size":
            raise ValueError("in_step accumulation needs a loss with reduction "
                             f"'sum_over_batch_size', got {reduction!r}")

    def get_config(self):
        return {**super().get_config(),
                "network": keras.saving.serialize_keras_object(self.network),
                "accumulation_steps": self.accumulation_steps,
                "micro_batch_size": self.micro_batch_size, "reduction": self.reduction}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="swin_gao")
class UpdateSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The learning rate of optimizer update ``k`` (``k = 0, 1, ...``).

    With ``W = warmup_updates`` and ``j = k - W``::

        k < W:     lr * (k + 1) / W                              (linear warm-up)
        constant:  lr
        cosine:    lr * (1 + cos(pi * min(j, T) / T)) / 2,  T = total_updates - W
        step:      lr * factor ** floor(j / step_updates)

    Args:
        learning_rate: the rate after the warm-up (``effective_learning_rate``).
        schedule: ``"constant"``, ``"cosine"`` or ``"step"``.
        warmup_updates: W.
        total_updates: the run's updates; needed by ``cosine``.
        step_updates, step_factor: the ``step`` schedule's period and factor.
    """

    def __init__(self, learning_rate: float, schedule: str = "constant",
                 warmup_updates: int = 0, total_updates: int | None = None,
                 step_updates: int | None = None, step_factor: float = 0.1):
        if schedule == "cosine" and not total_updates:
            raise ValueError("the cosine schedule needs total_updates (the run's updates)")
        if schedule == "step" and not step_updates:
            raise ValueError("the step schedule needs step_updates >= 1")
        if schedule not in ("constant", "cosine", "step"):
            raise ValueError(f"unknown schedule {schedule!r}")
        self.learning_rate, self.schedule = float(learning_rate), schedule
        self.warmup_updates, self.total_updates = int(warmup_updates), total_updates
        self.step_updates, self.step_factor = step_updates, float(step_factor)

    def __call__(self, step):
        k = keras.ops.cast(step, "float32")
        w = float(self.warmup_updates)
        j = keras.ops.maximum(k - w, 0.0)
        if self.schedule == "cosine":
            t = float(max(self.total_updates - self.warmup_updates, 1))
            decay = 0.5 * (1.0 + keras.ops.cos(math.pi * keras.ops.minimum(j, t) / t))
        elif self.schedule == "step":
            decay = self.step_factor ** keras.ops.floor(j / float(self.step_updates))
        else:
            decay = keras.ops.ones_like(k)
        if self.warmup_updates:
            decay = keras.ops.where(k < w, (k + 1.0) / w, decay)
        return self.learning_rate * decay

    def get_config(self):
        return {"learning_rate": self.learning_rate, "schedule": self.schedule,
                "warmup_updates": self.warmup_updates, "total_updates": self.total_updates,
                "step_updates": self.step_updates, "step_factor": self.step_factor}


def planned_updates(cfg: RunConfig, steps_per_epoch: int) -> int:
    """The optimizer updates of a whole run of ``steps_per_epoch`` train steps per epoch
    (in optimizer mode a step is a micro-step, N of them an update, across epochs)."""
    steps = steps_per_epoch * cfg.epochs
    if cfg.accumulation_mode == "optimizer":
        return steps // cfg.accumulation_steps
    return steps


def build_optimizer(cfg: RunConfig,
                    total_updates: int | None = None) -> keras.optimizers.Optimizer:
    """The optimizer of ``cfg`` (in optimizer mode it accumulates); ``total_updates``
    (:func:`planned_updates`) is needed by a cosine schedule."""
    rate: float | UpdateSchedule = cfg.effective_learning_rate
    if cfg.lr_schedule != "constant" or cfg.warmup_updates:
        rate = UpdateSchedule(rate, cfg.lr_schedule, cfg.warmup_updates, total_updates,
                              cfg.lr_step_updates, cfg.lr_step_factor)
    kwargs = {"learning_rate": rate}
    if cfg.accumulation_mode == "optimizer" and cfg.accumulation_steps > 1:
        kwargs["gradient_accumulation_steps"] = cfg.accumulation_steps
    if cfg.optimizer == "adamw":
        return keras.optimizers.AdamW(weight_decay=cfg.weight_decay, **kwargs)
    # Keras 3 applies decoupled weight decay in every optimizer; None turns it off.
    decay = cfg.weight_decay or None
    if cfg.optimizer == "adam":
        return keras.optimizers.Adam(weight_decay=decay, **kwargs)
    return keras.optimizers.SGD(momentum=cfg.momentum, weight_decay=decay, **kwargs)


def optimizer_updates(optimizer: keras.optimizers.Optimizer) -> int:
    """How many times the optimizer has changed the weights (``iterations`` counts updates,
    not micro-steps, in optimizer mode)."""
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


def build_trainer(cfg: RunConfig, network: keras.Model,
                  total_updates: int | None = None) -> AccumulatingModel:
    """Wrap and compile ``network`` for training as ``cfg`` says (``total_updates``: as
    :func:`build_optimizer`), with every variable built (:func:`build_variables`)."""
    in_step = cfg.accumulation_mode == "in_step"
    model = AccumulatingModel(
        network,
        accumulation_steps=cfg.accumulation_steps if in_step else 1,
        micro_batch_size=cfg.micro_batch_size if in_step else None,
        reduction=cfg.reduction,
        name="trainer",
    )
    model.compile(
        optimizer=build_optimizer(cfg, total_updates),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True,
                                                  label_smoothing=cfg.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        # JAX has no graph mode but XLA: without jit its step runs op by op (a debugging mode).
        jit_compile=cfg.jit_compile or keras.backend.backend() == "jax",
    )
    build_variables(model, cfg)
    return model


def build_variables(model: keras.Model, cfg: RunConfig) -> None:
    """Create every variable training uses: model, optimizer, loss and metrics.

    Otherwise ``fit`` creates them while tracing its first step, which traces it
    twice (about 1.5 s per run); the device programs need them before their first
    trace. ``_symbolic_build`` draws no random numbers: the run's numbers are unchanged.
    """
    import numpy as np

    x = np.zeros((1, *cfg.input_shape), "float32")
    y = np.zeros((1, cfg.num_classes), "float32")
    model._symbolic_build(data_batch=(x, y))  # builds the optimizer too, if it is not
    model.reset_metrics()
