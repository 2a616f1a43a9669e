"""What Keras's optimizer accumulation does, on one backend, with NumPy references.

``python framework_checks.py BACKEND OUT.json`` sets the backend before Keras is imported and
writes every check's numbers as JSON; ``test_frameworks.py`` asserts. Each check's reference is
computed without Keras (the MSE gradient of a linear model in closed form, a schedule's values,
BatchNormalization's moving-average formula).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

LR = 0.1


def _linear(keras, d: int, w0):
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1, use_bias=False)])
    model.layers[0].kernel.assign(w0)
    return model


def _grad(w, x, y):
    """Gradient of mean((x w - y)^2) with respect to w (closed form)."""
    return 2.0 / len(x) * x.T @ (x @ w - y)


def _data(rows: int, d: int = 3, seed: int = 0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.normal(size=(rows, d)).astype("float32"), rng.normal(size=(rows, 1)).astype("float32"),
            rng.normal(size=(d, 1)).astype("float32"))


def _kernel(model):
    import numpy as np

    return np.array(model.layers[-1].kernel.numpy(), dtype="float64")


def average(keras) -> dict:
    x, y, w0 = _data(4)
    model = _linear(keras, 3, w0)
    model.compile(optimizer=keras.optimizers.SGD(LR, gradient_accumulation_steps=2), loss="mse")
    model.train_on_batch(x[:2], y[:2])
    after_first = _kernel(model)
    model.train_on_batch(x[2:], y[2:])
    g1, g2 = _grad(w0, x[:2], y[:2]), _grad(w0, x[2:], y[2:])
    return {"after_first_micro_step": (after_first - w0).tolist(),
            "after_update": _kernel(model).tolist(),
            "mean_reference": (w0 - LR * (g1 + g2) / 2).tolist(),
            "sum_reference": (w0 - LR * (g1 + g2)).tolist()}


def carry(keras) -> dict:
    x, y, w0 = _data(6)
    model = _linear(keras, 3, w0)
    model.compile(optimizer=keras.optimizers.SGD(LR, gradient_accumulation_steps=2), loss="mse")
    seen = {}

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            opt = self.model.optimizer
            seen[epoch] = {"kernel": _kernel(self.model).tolist(),
                           "accumulator": [float(v) for v in
                                           keras.ops.convert_to_numpy(opt._accumulated_gradients[0]).ravel()],
                           "iterations": int(keras.ops.convert_to_numpy(opt.iterations)),
                           "micro_steps": int(keras.ops.convert_to_numpy(opt._iterations))}

    model.fit(x, y, batch_size=2, epochs=2, shuffle=False, verbose=0, callbacks=[Record()])
    b = [(x[i:i + 2], y[i:i + 2]) for i in (0, 2, 4)]
    w1 = w0 - LR * (_grad(w0, *b[0]) + _grad(w0, *b[1])) / 2
    w2 = w1 - LR * (_grad(w1, *b[2]) + _grad(w1, *b[0])) / 2  # epoch 1's last + epoch 2's first
    w3 = w2 - LR * (_grad(w2, *b[1]) + _grad(w2, *b[2])) / 2
    return {"epochs": seen, "w1": w1.tolist(), "accumulator_reference": _grad(w1, *b[2]).ravel().tolist(),
            "w3": w3.tolist()}


def short(keras) -> dict:
    x, y, w0 = _data(5)
    model = _linear(keras, 3, w0)
    model.compile(optimizer=keras.optimizers.SGD(LR, gradient_accumulation_steps=3), loss="mse")
    model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
    parts = [(x[0:2], y[0:2]), (x[2:4], y[2:4]), (x[4:5], y[4:5])]
    equal = sum(_grad(w0, *p) for p in parts) / 3
    return {"after_update": _kernel(model).tolist(),
            "equal_weights_reference": (w0 - LR * equal).tolist(),
            "per_sample_reference": (w0 - LR * _grad(w0, x, y)).tolist()}


def schedule(keras, n: int = 2, updates: int = 4) -> dict:
    """fit over n * updates micro-batches whose gradient is always -1 (see the report tool)."""
    import numpy as np

    def sched():
        return keras.optimizers.schedules.CosineDecay(0.1, decay_steps=updates)

    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(sched(), gradient_accumulation_steps=n),
                  loss="mean_absolute_error")
    steps = n * updates
    model.fit(np.ones((steps, 1), "float32"), np.full((steps, 1), 1e6, "float32"), batch_size=1,
              epochs=1, shuffle=False, verbose=0)
    ref = sched()
    return {"moved": float(_kernel(model).item()),
            "sum_at_micro_steps": sum(float(ref(n * k + n - 1)) for k in range(updates)),
            "sum_at_updates": sum(float(ref(k)) for k in range(updates))}


def decay(keras, n: int = 2) -> dict:
    import numpy as np

    v = keras.Variable(np.ones((3,), "float32"))
    opt = keras.optimizers.SGD(LR, weight_decay=0.1, gradient_accumulation_steps=n)
    values = []
    for _ in range(2 * n):
        opt.apply([keras.ops.zeros((3,))], [v])
        values.append(float(keras.ops.convert_to_numpy(v)[0]))
    return {"values": values, "per_update": [(1 - LR * 0.1) ** ((i + 1) // n) for i in range(2 * n)]}


def batchnorm(keras) -> dict:
    x, y, _ = _data(2, d=3, seed=1)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((3,)), keras.layers.BatchNormalization(momentum=0.5),
                              keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(LR, gradient_accumulation_steps=2), loss="mse")
    kernel0 = _kernel(model)
    model.train_on_batch(x, y)  # one micro-step, no update
    return {"kernel_moved": float(abs(_kernel(model) - kernel0).max()),
            "moving_mean": model.layers[0].moving_mean.numpy().astype("float64").tolist(),
            "reference": (0.5 * x.mean(axis=0)).tolist()}


CHECKS = (average, carry, short, schedule, decay, batchnorm)


def run(keras) -> dict:
    """Every check's numbers, as the JSON the fresh-process run writes (string keys)."""
    return json.loads(json.dumps({"backend": keras.backend.backend(), "keras": keras.__version__,
                                  **{check.__name__: check(keras) for check in CHECKS}}))


def main(backend: str, out: str) -> None:
    os.environ["KERAS_BACKEND"] = backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    assert keras.backend.backend() == backend, keras.backend.backend()
    Path(out).write_text(json.dumps(run(keras)))


if __name__ == "__main__":
    main(*sys.argv[1:])
