"""Benchmark specs: the variants measured and the plan of a benchmark (method: docs/benchmarks.md).

For a full batch B and N micro-batches of m = B/N: ``plain_full`` (``fit`` at
B), ``plain_micro`` (``fit`` at m), ``in_step`` (this kit's accumulation) and
``optimizer`` (Keras's ``gradient_accumulation_steps=N`` at m). Every variant is
timed per optimizer update of B samples (``plain_micro`` per step of m; optimizer
mode's N micro-steps include the apply). Level ``step`` times the train step
under ``fit``; level ``fit`` the kit's ``train()`` per epoch after the first,
records and checkpoints included.
"""

from __future__ import annotations

from dataclasses import dataclass

MODELS = {
    # the keras-io / paper size (the kit's defaults)
    "paper": {},
    # a larger hierarchical Swin: 3 stages, embed 96
    "large": {"embed_dim": 96, "depths": [2, 2, 2], "num_heads": [3, 6, 12], "window_size": 4,
              "shift_size": 2, "mlp_dim": 384, "merge_after_last_stage": False},
    # for smoke checks of the benchmark itself (and of benchmarks/gpu/run.sh on a CPU)
    "tiny": {"embed_dim": 16, "num_heads": [2], "mlp_dim": 32, "head_units": 8},
}
VARIANTS = ("plain_full", "plain_micro", "in_step", "optimizer")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class Spec:
    """One measurement: a backend, a model, a batch, N, a variant, and the options."""

    model: str
    batch: int
    n: int
    variant: str
    jit: bool = False
    precision: str = "float32"
    data: str = "pipeline"  # or "tensors"
    dataset: str = "cifar10"
    steps: int = 10
    warmup: int = 5
    backend: str = "tensorflow"
    level: str = "step"  # or "fit"
    pipeline: str = "host"  # or "device" (JAX)
    seeds: int = 1  # runs side by side (fit level, device pipeline)
    epochs: int = 3  # fit level: epochs per process; the first compiles
    train_samples: int | None = None  # fit level: max_train_samples (None: the whole sample)

    @property
    def key(self) -> str:
        opts = ("+xla" if self.jit and self.backend == "tensorflow" else "")
        opts += f"+{self.precision}" if self.precision != "float32" else ""
        opts += "+tensors" if self.data == "tensors" else ""
        opts += "+fit" if self.level == "fit" else ""
        opts += "+device" if self.pipeline == "device" else ""
        opts += f"+seeds{self.seeds}" if self.seeds > 1 else ""
        return f"{self.backend}/{self.model}/B{self.batch}/N{self.n}/{self.variant}{opts}"

    def step_samples(self) -> int:
        """Samples per timed unit: an update of B, or a plain step of m (step level)."""
        return self.batch // self.n if self.variant == "plain_micro" else self.batch

    def micro_steps_per_unit(self) -> int:
        """Train steps ``fit`` takes per timed unit (N in optimizer mode, else 1)."""
        return self.n if self.variant == "optimizer" else 1

    def config(self):
        from swin_gao_lib.config import make_config

        fit = self.level == "fit"
        values = dict(MODELS[self.model], dataset=self.dataset, source="sample",
                      epochs=self.epochs if fit else 1, jit_compile=self.jit,
                      validation_split=0.1 if fit else 0.0, backend=self.backend,
                      pipeline=self.pipeline,
                      precision=self.precision if fit else "float32",
                      max_train_samples=self.train_samples if fit else None)
        if self.variant == "plain_full":
            values.update(batch_size=self.batch)
        elif self.variant == "plain_micro":
            values.update(batch_size=self.batch // self.n)
        elif self.variant == "in_step":
            values.update(batch_size=self.batch, accumulation_steps=self.n)
        else:
            values.update(batch_size=self.batch, accumulation_steps=self.n,
                          accumulation_mode="optimizer")
        return make_config(values)


def plan(models, batch: int, ns, jit_modes, precisions, steps: int, warmup: int,
         dataset: str = "cifar10", pipeline_check: bool = True,
         backends=("tensorflow",), levels=("step",), pipelines=("host",), seeds=(1,),
         epochs: int = 3, train_samples: int | None = None,
         variants=VARIANTS) -> list[Spec]:
    """Every spec of a benchmark; N=1 has only ``plain_full`` (the others coincide).

    ``jit_modes`` apply to TensorFlow (JAX always compiles); ``pipelines`` and
    ``seeds`` to the fit level (``device`` on JAX only, ``seeds`` > 1 on the device
    pipeline only); ``variants`` keeps only those (``plain_full``, every ratio's
    reference, should stay).
    """
    from swin_gao_lib.errors import InputError

    for n in ns:
        if batch % n:
            raise InputError(f"--n: batch {batch} is not divisible by N={n}; give "
                             "N values that divide --batch")
    if "device" in pipelines and "jax" not in backends:
        raise InputError("--pipeline device: runs on the JAX backend; add --backend jax")
    if any(s > 1 for s in seeds) and "device" not in pipelines:
        raise InputError("--seeds: runs side by side on the device pipeline; add --pipeline "
                         "device")
    if "fit" in levels and "mixed_float16" in precisions:
        raise InputError("--precision mixed_float16: not a config value (precision: float32 | "
                         "mixed_bfloat16), so the fit level cannot train it; leave it out")
    if ("device" in pipelines or any(s > 1 for s in seeds)) and "fit" not in levels:
        raise InputError("--pipeline device, --seeds: measured at the fit level; add --level fit")
    specs = []
    for level in levels:
        for backend in backends:
            modes = list(jit_modes) if backend == "tensorflow" else [True]
            lines = [("host", 1)]
            if level == "fit":
                lines = [(p, s) for p in pipelines for s in seeds
                         if (p == "host" and s == 1) or (p == "device" and backend == "jax")]
            for model in models:
                for jit in modes:
                    for precision in precisions:
                        for pipeline, n_seeds in lines:
                            common = dict(model=model, batch=batch, jit=jit,
                                          precision=precision, steps=steps, warmup=warmup,
                                          dataset=dataset, backend=backend, level=level,
                                          pipeline=pipeline, seeds=n_seeds, epochs=epochs,
                                          train_samples=train_samples)
                            if "plain_full" in variants:
                                specs.append(Spec(n=1, variant="plain_full", **common))
                            specs += [Spec(n=n, variant=v, **common) for n in ns if n != 1
                                      for v in VARIANTS[1:] if v in variants]
                if pipeline_check and level == "step":
                    specs.append(Spec(model=model, batch=batch, n=1, variant="plain_full",
                                      data="tensors", steps=steps, warmup=warmup,
                                      dataset=dataset, backend=backend, jit=modes[-1]))
    return specs
