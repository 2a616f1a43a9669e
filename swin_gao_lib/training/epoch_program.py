r"""Whole epochs as compiled JAX programs (``pipeline: device``).

One call trains a whole epoch: its order, every batch
(:mod:`swin_gao_lib.data.device`) and every update, as a ``jax.lax.scan`` of
the kit's own train step over the epoch's full batches, then its short last
batch at its own static size; so an update is the same function of its batch
as under ``fit``. Per step the program returns the running loss and accuracy,
the learning rate about to be applied, whether the step updated and the
update's norm (``lr.csv``), read by the host once per epoch. Evaluation is a
scan of Keras's ``test_step`` over a split in file order. Side by side, both
are ``jax.vmap``-ed over a leading seed axis of the state, the data and the seed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import keras

from swin_gao_lib.config import RunConfig
from swin_gao_lib.data import device as dd

#: Train state without the metrics (reset every epoch): trainable, non-trainable, optimizer.
State = tuple


def values(variables) -> list:
    """The current values of Keras variables (device arrays on JAX)."""
    return [v.value for v in variables]


def model_state(model: keras.Model) -> State:
    """``(trainable, non_trainable, optimizer)`` values of a compiled, built trainer."""
    return (values(model.trainable_variables), values(model.non_trainable_variables),
            values(model.optimizer.variables))


def assign_state(model: keras.Model, state: State) -> None:
    """Write one seed's state back into the Keras variables (to save a checkpoint)."""
    groups = (model.trainable_variables, model.non_trainable_variables, model.optimizer.variables)
    for variables, vals in zip(groups, state):
        for v, a in zip(variables, vals):
            v.assign(a)


@dataclass
class EpochPrograms:
    """The compiled train-epoch and evaluation programs of one configuration.

    ``seeds``: 0 for one run (no seed axis), S > 0 for S runs side by side.
    """

    model: keras.Model
    cfg: RunConfig
    n_train: int
    seeds: int = 0

    def __post_init__(self):
        cfg = self.cfg
        self.rules = dd.BatchRules.of(cfg)
        self.batch = cfg.fit_batch_size
        self.eval_batch = cfg.micro_batch_size
        self.metrics0 = values(self.model.metrics_variables)  # after reset_metrics
        self._compiled: dict[str, Any] = {}
        self.compile_s: dict[str, float] = {}

    # ------------------------------------------------------------ pure functions
    def _rate_and_updates(self, optimizer_values: list) -> tuple[Any, Any]:
        """The learning rate the optimizer applies next, and its update count (traced)."""
        from keras.src.backend import StatelessScope

        opt = self.model.optimizer
        with StatelessScope(state_mapping=list(zip(opt.variables, optimizer_values))):
            rate = keras.ops.cast(keras.ops.convert_to_tensor(opt.learning_rate), "float32")
            updates = keras.ops.convert_to_tensor(opt.iterations)
        return rate, updates

    def train_epoch(self, state: State, x: Any, y: Any, seed: Any, epoch: Any):
        """One epoch of one seed: ``(state, per-step outputs)`` (pure, jit- and vmap-able)."""
        import jax
        import jax.numpy as jnp

        model, n, b = self.model, self.n_train, self.batch
        order = dd.epoch_order(seed, epoch, n)

        def step(carry, k, size):
            trainable, non_trainable, optimizer_values, metrics = carry
            xb, yb = dd.train_batch(x, y, order, seed, epoch, k, k * b, size, self.rules)
            rate, before = self._rate_and_updates(optimizer_values)
            logs, carry = model.train_step(
                (trainable, non_trainable, optimizer_values, metrics), (xb, yb))
            _, after = self._rate_and_updates(carry[2])
            # lr.csv's update_norm: the L2 norm of the change to the trainable weights,
            # computed here so the host never reads weights inside an epoch
            norm = jnp.sqrt(sum(jnp.sum(jnp.square(new.astype(jnp.float32) -
                                                   old.astype(jnp.float32)))
                                for new, old in zip(carry[0], trainable)))
            out = {"loss": logs["loss"], "accuracy": logs["accuracy"], "rate": rate,
                   "updates": before, "updated": after > before, "update_norm": norm}
            return tuple(carry), out

        full, rest = n // b, n % b
        carry = (*state, list(self.metrics0))
        outs = []
        if full:
            carry, out = jax.lax.scan(lambda c, k: step(c, k, b), carry,
                                      jnp.arange(full, dtype=jnp.int32))
            outs.append(out)
        if rest:  # the epoch's short last batch, at its own static size
            carry, out = step(carry, jnp.int32(full), rest)
            outs.append(jax.tree_util.tree_map(lambda a: a[None], out))
        per_step = jax.tree_util.tree_map(lambda *a: jnp.concatenate(a), *outs)
        return carry[:3], per_step

    def evaluate(self, state: State, x: Any, y: Any, start: Any, count: Any):
        """Loss and accuracy of ``state`` on rows ``start .. start + count`` (pure).

        Batches of the micro-batch size in file order, no augmentation or
        dropout, as Keras's ``evaluate``: the loss is the mean of the rows'
        losses, the accuracy the share of rows whose largest logit is their
        class. ``start`` and ``count`` are traced, so one program serves every
        split of :class:`~swin_gao_lib.data.device.DeviceSplits`.
        """
        import jax
        import jax.numpy as jnp

        model, b = self.model, self.eval_batch
        trainable, non_trainable = state[0], state[1]

        def body(i, sums):
            xb, yb = dd.eval_batch(x, y, start + i * b, b, self.rules.num_classes)
            logits, _ = model.stateless_call(trainable, non_trainable, xb, training=False)
            logits = logits.astype(jnp.float32)
            losses = model.loss.call(yb, logits)  # one per row (the compiled loss, unreduced)
            real = i * b + jnp.arange(b) < count
            hits = jnp.argmax(logits, -1) == jnp.argmax(yb, -1)
            return (sums[0] + jnp.sum(jnp.where(real, losses, 0.0)),
                    sums[1] + jnp.sum(jnp.where(real & hits, 1, 0)))

        loss_sum, correct = jax.lax.fori_loop(0, (count + b - 1) // b, body,
                                              (jnp.float32(0.0), jnp.int32(0)))
        n = jnp.maximum(count, 1).astype(jnp.float32)
        return {"loss": loss_sum / n, "accuracy": correct.astype(jnp.float32) / n}

    # ------------------------------------------------------------ compiled calls
    def _program(self, name: str, fn: Callable, in_axes: tuple, args: tuple):
        """``fn`` jit-compiled (vmapped over seeds when side by side); compiled once, ahead of
        the first call, so its compile time is measured on its own (``compile_s``)."""
        import jax

        if name not in self._compiled:
            f = jax.vmap(fn, in_axes=in_axes) if self.seeds else fn
            t0 = time.perf_counter()
            self._compiled[name] = jax.jit(f).lower(*args).compile()
            self.compile_s[name] = time.perf_counter() - t0
        return self._compiled[name]

    def run_epoch(self, state: State, data: dd.DeviceSplits, seeds: Any, epoch: int):
        """Train one epoch on the device; returns ``(state, per-step outputs)`` (on device)."""
        import jax.numpy as jnp

        args = (state, data.x, data.y, seeds, jnp.int32(epoch))
        return self._program("train", self.train_epoch, (0, 0, 0, 0, None), args)(*args)

    def run_evaluate(self, state: State, data: dd.DeviceSplits, split: str):
        """Evaluate ``state`` on ``split`` (train, validation or test) of ``data``."""
        import jax.numpy as jnp

        start, count = data.span(split)
        args = (state, data.x, data.y, jnp.int32(start), jnp.int32(count))
        return self._program("evaluate", self.evaluate, (0, 0, 0, None, None), args)(*args)
