"""The JAX backend's accumulation checks and two seeded runs, in a fresh process without TensorFlow
(``tests/no_tensorflow.py tests/backend_checks.py OUT.json WORKDIR``), for tests/test_backends.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

BATCH = 16


def _rel_err(a, b) -> float:
    import numpy as np

    num = np.sqrt(sum(((np.asarray(p) - np.asarray(q)) ** 2).sum() for p, q in zip(a, b)))
    return float(num / np.sqrt(sum((np.asarray(q) ** 2).sum() for q in b)))


def equivalence() -> dict:
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    from conftest import TINY_DETERMINISTIC
    from swin_gao_lib.config import make_config
    from swin_gao_lib.model import build_swin
    from swin_gao_lib.training.accumulation import build_trainer, optimizer_updates
    from swin_gao_lib.training.accumulation_jax import accumulated_gradients

    def cfg(**kw):
        return make_config({**TINY_DETERMINISTIC, "batch_size": BATCH, **kw})

    keras.utils.set_random_seed(0)
    net = build_swin(cfg())
    w0 = [w.copy() for w in net.get_weights()]
    rng = np.random.default_rng(0)
    x = rng.random((5 * BATCH, 32, 32, 3)).astype("float32")
    y = np.eye(10, dtype="float32")[rng.integers(0, 10, len(x))]
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1)

    @jax.jit
    def _full(tv, ntv, xb, yb):
        def f(tv):
            return loss_fn(yb, net.stateless_call(tv, ntv, xb, training=True)[0])
        return jax.grad(f)(tv)

    def full_gradient(xb, yb):
        net.set_weights(w0)
        return [np.asarray(g) for g in _full([v.value for v in net.trainable_variables],
                                             [v.value for v in net.non_trainable_variables],
                                             jnp.asarray(xb), jnp.asarray(yb))]

    def accumulated(xb, yb, steps, reduction="mean", micro=None):
        net.set_weights(w0)
        model = build_trainer(cfg(accumulation_steps=steps, reduction=reduction), net)
        model.micro_batch_size = micro
        model(xb[:1])
        model.optimizer.build(model.trainable_variables)
        values = lambda vs: [v.value for v in vs]
        fn = jax.jit(lambda tv, ntv, xb, yb: accumulated_gradients(
            model, tv, ntv, values(model.metrics_variables),
            values(model.optimizer.variables), xb, yb)[0])
        return [np.asarray(g) for g in fn(values(model.trainable_variables),
                                          values(model.non_trainable_variables),
                                          jnp.asarray(xb), jnp.asarray(yb))]

    out: dict = {}
    xb, yb = x[:BATCH], y[:BATCH]
    ref = full_gradient(xb, yb)
    mean4 = accumulated(xb, yb, 4)
    out["grad_mean_n4"] = _rel_err(mean4, ref)
    out["grad_sum_n4_vs_4x_mean"] = _rel_err(accumulated(xb, yb, 4, "sum"), [4 * g for g in mean4])
    x10, y10 = x[:10], y[:10]
    ref10 = full_gradient(x10, y10)
    out["grad_mean_4_4_2"] = _rel_err(accumulated(x10, y10, 3, micro=4), ref10)
    out["grad_sum_4_4_2_vs_3x_full"] = _rel_err(accumulated(x10, y10, 3, "sum", micro=4),
                                                [3 * g for g in ref10])
    parts = [full_gradient(x10[s:s + 4], y10[s:s + 4]) for s in (0, 4, 8)]
    out["grad_naive_equal_weights_4_4_2"] = _rel_err(
        [sum(p[i] for p in parts) / 3 for i in range(len(ref10))], ref10)

    def fit(xs, ys, **kw):
        net.set_weights(w0)
        c = cfg(**kw)
        model = build_trainer(c, net)
        snaps = []

        class Snapshots(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                self.model  # on JAX, reading the model syncs its state back into the variables
                snaps.append([w.copy() for w in net.get_weights()])

        hist = model.fit(xs, ys, batch_size=c.fit_batch_size, epochs=1, shuffle=False, verbose=0,
                         callbacks=[Snapshots()])
        return snaps, optimizer_updates(model.optimizer), hist.history

    def max_diff(a, b):
        return float(max(np.abs(p - q).max() for p, q in zip(a, b)))

    sgd = dict(optimizer="sgd", learning_rate=0.05, momentum=0.9, weight_decay=0.0)
    adamw = dict(optimizer="adamw", learning_rate=1e-3, weight_decay=1e-2)
    for name, opt in (("sgd", sgd), ("adamw", adamw)):
        ref_w, ref_updates, _ = fit(x, y, **opt)
        acc_w, acc_updates, _ = fit(x, y, accumulation_steps=4, **opt)
        opt_w, opt_updates, _ = fit(x, y, accumulation_steps=4, accumulation_mode="optimizer", **opt)
        out[f"{name}_in_step_5_updates_max_diff"] = max_diff(acc_w[-1], ref_w[-1])
        out[f"{name}_in_step_updates"] = [len(ref_w), len(acc_w), ref_updates, acc_updates]
        out[f"{name}_optimizer_mode_max_diff"] = max(
            max_diff(opt_w[4 * u + 3], ref_w[u]) for u in range(len(ref_w)))
        out[f"{name}_optimizer_mode_still_between_updates"] = all(
            all(np.array_equal(a, b) for a, b in zip(opt_w[m], opt_w[4 * u - 1]))
            for u in range(1, len(ref_w)) for m in (4 * u, 4 * u + 1, 4 * u + 2))
        out[f"{name}_optimizer_mode_updates"] = [len(opt_w), opt_updates]

    # loss and accuracy over all 10 rows of a batch of 12 (a 4+4+2 split), weights ~fixed
    _, _, logs = fit(x10, y10, accumulation_steps=3, batch_size=12, optimizer="sgd",
                     learning_rate=1e-9, weight_decay=0.0, momentum=0.0)
    net.set_weights(w0)
    logits = keras.ops.convert_to_numpy(net(x10, training=False))
    out["metrics_loss"] = [float(logs["loss"][0]),
                           float(keras.ops.convert_to_numpy(loss_fn(y10, logits)))]
    out["metrics_accuracy"] = [float(logs["accuracy"][0]),
                               float((logits.argmax(1) == y10.argmax(1)).mean())]
    return out


def train_twice(workdir: str) -> dict:
    import sys as _sys

    from conftest import TINY_DETERMINISTIC
    from swin_gao_lib.config import make_config
    from swin_gao_lib.training.train import train

    from swin_gao_lib.data.arrays import TrainBatches

    fetched: list[int] = []  # the order in which fit reads the NumPy batches
    getitem = TrainBatches.__getitem__
    TrainBatches.__getitem__ = lambda self, i: fetched.append(i) or getitem(self, i)
    runs = []
    for name in ("a", "b"):
        cfg = make_config({**TINY_DETERMINISTIC, "dataset": "mnist", "source": "sample",
                           "max_train_samples": 48, "max_test_samples": 32,
                           "validation_split": 0.0, "epochs": 2, "batch_size": 16,
                           "accumulation_steps": 2, "dropout": 0.1, "backend": "jax",
                           "output_dir": workdir, "run_name": name})
        result = train(cfg, overwrite=True, verbose=0, log=lambda *a: None)
        runs.append({"digest": result.metrics["final_weights_sha256"],
                     "losses": [r["loss"] for r in result.history],
                     "test_loss": result.metrics["test_loss"],
                     "updates": result.metrics["optimizer_updates"],
                     "environment": {k: result.metrics["environment"].get(k)
                                     for k in ("keras_backend", "backend_version", "device")},
                     "memory": result.metrics["peak_memory_kind"]})
    return {"runs": runs, "tensorflow_imported": "tensorflow" in _sys.modules,
            "batches_fetched": fetched}


def main(argv: list[str]) -> int:
    out, workdir = argv
    from swin_gao_lib.runtime.backend import use_backend

    use_backend("jax")
    result = {"equivalence": equivalence(), "train": train_twice(workdir)}
    Path(out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
