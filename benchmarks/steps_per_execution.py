"""Keras's ``steps_per_execution`` against the kit's epoch program, side by side.

``python benchmarks/steps_per_execution.py OUT.json [--model quick|paper] [--epochs 3]
[--rounds 2]`` trains the same configuration (the CIFAR-10 sample, B = 128, plain
training) five ways, each in a fresh process, the rounds interleaved:

* ``jax fit, spe 1``: Keras's ``fit`` on JAX fed by the NumPy pipeline (``pipeline: host``);
* ``jax fit, spe 8``: the same with ``steps_per_execution=8``, which Keras 3.13 runs
  on JAX as a host loop over its compiled one-step function (the on-device
  ``lax.scan`` of keras PR #23527 is in no release up to 3.15.1);
* ``jax epoch program``: ``pipeline: device`` (data on the device, one program per epoch);
* ``tf fit, spe 1`` and ``tf fit, spe 8``: TensorFlow's ``fit`` on the kit's tf.data
  pipeline, one step or 8 steps per ``tf.function`` call (the same batches and
  draws, so the same weights; but ``fit``'s callbacks then see every 8th step only).

Reported per way: the median over epochs 2.. of the training time per epoch
(the first epoch compiles), as images/s. Only the training loop is timed
(no validation), which is where the three differ.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

MODELS = {"quick": dict(patch_size=4, embed_dim=32, num_heads=[4], window_size=4, shift_size=2,
                        mlp_dim=128),
          "paper": {}}


def worker(way: str, model: str, epochs: int) -> dict:
    from swin_gao_lib.runtime.backend import use_backend

    backend = way.split()[0].replace("tf", "tensorflow")
    use_backend(backend)
    import keras

    from swin_gao_lib.config import make_config
    from swin_gao_lib.data.arrays import TrainBatches
    from swin_gao_lib.data.splits import load_splits
    from swin_gao_lib.model import build_swin
    from swin_gao_lib.training.accumulation import build_trainer

    cfg = make_config(MODELS[model], dataset="cifar10", source="sample", epochs=epochs,
                      backend=backend, pipeline="device" if "program" in way else "host")
    splits = load_splits(cfg)
    n = len(splits.y_train)
    keras.utils.set_random_seed(0)
    model_ = build_trainer(cfg, build_swin(cfg))
    times: list[float] = []
    if "program" in way:
        import jax

        from swin_gao_lib.data.device import DeviceSplits
        from swin_gao_lib.training.epoch_program import EpochPrograms, model_state

        data = DeviceSplits.upload(splits, pad=cfg.batch_size)
        programs = EpochPrograms(model_, cfg, n)
        state = model_state(model_)
        seed = jax.numpy.uint32(cfg.seed)
        for epoch in range(epochs):
            t0 = time.perf_counter()
            state, out = programs.run_epoch(state, data, seed, epoch)
            jax.block_until_ready(out)
            times.append(time.perf_counter() - t0)
    else:
        if way.endswith("spe 8"):
            model_.compile(optimizer=model_.optimizer, loss=model_.loss,
                           metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                           jit_compile=backend == "jax", steps_per_execution=8)

        class Clock(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.t0 = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                times.append(time.perf_counter() - self.t0)

        steps = -(-n // cfg.batch_size)
        if backend == "jax":
            batches = TrainBatches(splits.x_train, splits.y_train, cfg, cfg.batch_size, 0, epochs)
        else:
            from swin_gao_lib.data.pipeline import train_pipeline

            batches = train_pipeline(splits.x_train, splits.y_train, cfg, cfg.batch_size, 0,
                                     epochs)
        model_.fit(batches, epochs=epochs, steps_per_epoch=steps, shuffle=False, verbose=0,
                   callbacks=[Clock()])
    steady = statistics.median(times[1:])
    return {"way": way, "epoch_s": times, "images_per_s": n / steady, "images": n}


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--worker":
        print(json.dumps(worker(argv[1], argv[2], int(argv[3]))))
        return 0
    out = Path(argv[0])
    opt = dict(zip(argv[1::2], argv[2::2]))
    model, epochs, rounds = opt.get("--model", "quick"), int(opt.get("--epochs", 3)), \
        int(opt.get("--rounds", 2))
    ways = ["jax fit, spe 1", "jax fit, spe 8", "jax epoch program", "tf fit, spe 1",
            "tf fit, spe 8"]
    results = []
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("KERAS_BACKEND", None)
    for r in range(rounds):
        for way in (ways if r % 2 == 0 else ways[::-1]):
            proc = subprocess.run([sys.executable, __file__, "--worker", way, model, str(epochs)],
                                  capture_output=True, text=True, env=env)
            if proc.returncode:
                print(proc.stderr[-2000:], file=sys.stderr)
                return 1
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            res["round"] = r
            results.append(res)
            print(f"round {r + 1}: {way}: {res['images_per_s']:.0f} images/s "
                  f"(epochs {', '.join(f'{t:.1f}' for t in res['epoch_s'])} s)", flush=True)
    summary = {w: statistics.median(x["images_per_s"] for x in results if x["way"] == w)
               for w in ways}
    for w, v in summary.items():
        base = summary[w.split(",")[0].replace(" epoch program", " fit") + ", spe 1"]
        print(f"{w:18s} {v:8.0f} images/s  ({v / base:.2f}x the same backend's fit, spe 1)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"model": model, "epochs": epochs, "rounds": rounds,
                               "summary": summary, "runs": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
