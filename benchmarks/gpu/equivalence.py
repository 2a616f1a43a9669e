"""In-step accumulation against the full-batch gradient, on this machine's JAX device.

``python benchmarks/gpu/equivalence.py OUT.json [--smoke] [--budget SECONDS]``: the
paper-size model (dropout off), a batch of 128 random images; the in-step gradient
(``reduction: mean``) for N = 4, an uneven 4+4+2 split, N = 2 and N = 8, each
against ``jax.grad`` of the whole batch's mean loss, as the relative error of
all gradients together: first with float32 matmuls at full precision
(``jax_default_matmul_precision=highest``, where the kit promises <= 1e-5), then
at JAX's default (TF32 on recent NVIDIA GPUs: reported, not judged). Every
check compiles its own program, so they run in that order of importance and a
check starts only while ``--budget`` (default: no limit) has room for one more
of the same cost; the skipped ones are listed. Exits 1 when a full-precision
error exceeds 1e-5.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

TOLERANCE = 1e-5


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    smoke = "--smoke" in argv
    budget = float(argv[argv.index("--budget") + 1]) if "--budget" in argv else float("inf")
    start = time.perf_counter()
    from swin_gao_lib.runtime.backend import use_backend

    use_backend("jax")
    import jax
    import jax.numpy as jnp
    import keras
    import numpy as np

    from swin_gao_lib.training.accumulation import build_trainer
    from swin_gao_lib.training.accumulation_jax import accumulated_gradients
    from swin_gao_lib.config import make_config
    from swin_gao_lib.model import build_swin

    no_noise = dict(dropout=0.0, attention_dropout=0.0, drop_path_rate=0.0)
    size = dict(embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8) if smoke else {}
    batch = 16 if smoke else 128
    cfg = make_config(dict(size, **no_noise, batch_size=batch, backend="jax"))
    keras.utils.set_random_seed(0)
    net = build_swin(cfg)
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.random((batch, *cfg.input_shape)).astype("float32"))
    y = jnp.asarray(np.eye(cfg.num_classes, dtype="float32")[rng.integers(0, 10, batch)])
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True,
                                                   label_smoothing=cfg.label_smoothing)
    values = lambda vs: [v.value for v in vs]

    def rel_err(a, b) -> float:
        num = sum(float(jnp.sum((p - q) ** 2)) for p, q in zip(a, b))
        return (num / sum(float(jnp.sum(q ** 2)) for q in b)) ** 0.5

    def full(tv, ntv):
        return jax.grad(lambda tv: loss_fn(y, net.stateless_call(tv, ntv, x, training=True)[0]))(tv)

    splits = {"N=4": (4, None), "4+4+2 of 10": (3, 4), "N=2": (2, None), "N=8": (8, None)}
    result = {"device": str(jax.devices()[0].device_kind), "platform": jax.devices()[0].platform,
              "jax": jax.__version__, "keras": keras.__version__, "batch": batch,
              "parameters": net.count_params(), "tolerance": TOLERANCE, "checks": {},
              "skipped": []}
    ok = True
    for precision in ("highest", "default"):
        with jax.default_matmul_precision(precision):
            ref = jax.jit(full)(values(net.trainable_variables), values(net.non_trainable_variables))
            for name, (steps, micro) in splits.items():
                spent = [c["seconds"] for c in result["checks"].values()]
                cost = max(spent) if spent else 0.0
                if time.perf_counter() - start + cost > budget:
                    result["skipped"].append(f"{name}, matmul {precision}")
                    print(f"{name:12s} matmul {precision:8s} skipped (budget)", flush=True)
                    continue
                t0 = time.perf_counter()
                rows = 10 if micro else batch
                model = build_trainer(make_config(dict(size, **no_noise, batch_size=batch,
                                                       accumulation_steps=steps, backend="jax")),
                                      net)
                model.micro_batch_size = micro
                model(x[:1])
                model.optimizer.build(model.trainable_variables)
                fn = jax.jit(lambda tv, ntv, xb, yb: accumulated_gradients(
                    model, tv, ntv, values(model.metrics_variables),
                    values(model.optimizer.variables), xb, yb)[0])
                acc = fn(values(model.trainable_variables), values(model.non_trainable_variables),
                         x[:rows], y[:rows])
                reference = ref if rows == batch else jax.jit(
                    lambda tv, ntv: jax.grad(lambda tv: loss_fn(
                        y[:rows], net.stateless_call(tv, ntv, x[:rows], training=True)[0]))(tv))(
                    values(net.trainable_variables), values(net.non_trainable_variables))
                err = rel_err(acc, reference)
                passed = err <= TOLERANCE if precision == "highest" else None
                ok = ok and passed is not False
                result["checks"][f"{name}, matmul {precision}"] = {
                    "relative_error": err, "passed": passed,
                    "seconds": round(time.perf_counter() - t0, 2)}
                print(f"{name:12s} matmul {precision:8s} relative error {err:.2e}"
                      f"{'' if passed is None else ' ok' if passed else ' FAILED'}", flush=True)
    result["passed"] = ok
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
