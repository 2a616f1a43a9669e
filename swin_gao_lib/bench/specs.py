"""Benchmark specs: the variants measured, and the method (the cost of accumulation, per backend).

Variants, for a full batch B and N micro-batches of m = B/N:

* ``plain_full``  — ordinary ``fit`` at batch B (what accumulation emulates);
* ``plain_micro`` — ordinary ``fit`` at batch m (what fits in memory);
* ``in_step``     — this kit's accumulation: one step takes B, runs N micro-batches;
* ``optimizer``   — Keras's ``gradient_accumulation_steps=N`` with batches of m;

each on every ``--backend`` (TensorFlow with ``jit_compile`` off and/or on; JAX,
always XLA-compiled), in float32 and optionally mixed precision.

Method. Every measurement runs in a **fresh process** (so one variant's memory
peak never hides another's, and each process's own compile and state are
its own), and the repeats are **interleaved**: round r runs every variant
once, in a shuffled order, before round r+1 starts, so the machine's drift
falls evenly on all of them. A worker sets its backend before Keras is
imported, trains on the bundled CIFAR-10 (or MNIST) sample through the kit's
pipeline of that backend (tf.data; NumPy batches on JAX), drops the warm-up
*updates* (tracing, compilation, caches) and times each further update: one
step for plain and in-step, N micro-steps including the apply for optimizer
mode, so every variant is timed per optimizer update of B samples (plain_micro
per step of m). Each step's loss is read back, which waits for the device.

Reported per variant: the median time per sample over all repeats' measured
updates, its interquartile range, the median of each process's median and their
spread *between* processes (max - min over the median); the step-time trend
within the measured updates (last third over first third: near 1 when warm-up
removed compile and drift; a worker past +-10% is flagged); images/s, time per
update; peak memory as the absolute peak and as the increase over the idle
process (CPU: the RSS high-water mark over the RSS before training; GPU: the
allocator's peak over its use before training); ratios to ``plain_micro``
(same micro-batch) and ``plain_full`` (same batch) *within* a backend, and,
for JAX rows, JAX / TensorFlow for the same variant (against TF with XLA off
and on).

The input-pipeline check runs ``plain_full`` once more on in-memory arrays
(already scaled, no augmentation), so the pipeline's overhead is the ratio.
"""

from __future__ import annotations

from __future__ import annotations

from dataclasses import dataclass




MODELS = {
    # the keras-io / paper size (the kit's defaults)
    "paper": {},
    # a larger hierarchical Swin: 3 stages, embed 96
    "large": {"embed_dim": 96, "depths": [2, 2, 2], "num_heads": [3, 6, 12], "window_size": 4,
              "shift_size": 2, "mlp_dim": 384, "merge_after_last_stage": False},
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

    @property
    def key(self) -> str:
        opts = ("+xla" if self.jit and self.backend == "tensorflow" else "")
        opts += f"+{self.precision}" if self.precision != "float32" else ""
        opts += "+tensors" if self.data == "tensors" else ""
        return f"{self.backend}/{self.model}/B{self.batch}/N{self.n}/{self.variant}{opts}"

    def step_samples(self) -> int:
        """Samples per timed unit: an update of B, or a plain step of m."""
        return self.batch // self.n if self.variant == "plain_micro" else self.batch

    def micro_steps_per_unit(self) -> int:
        """Train steps ``fit`` takes per timed unit (N in optimizer mode, else 1)."""
        return self.n if self.variant == "optimizer" else 1

    def config(self):
        from swin_gao_lib.config import make_config

        values = dict(MODELS[self.model], dataset=self.dataset, source="sample", epochs=1,
                      jit_compile=self.jit, validation_split=0.0, backend=self.backend)
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
         backends=("tensorflow",)) -> list[Spec]:
    """Every spec of a benchmark; N=1 has only ``plain_full`` (the others coincide).

    ``jit_modes`` apply to TensorFlow; JAX is always XLA-compiled (one mode).
    ``precisions``: Keras dtype policies, e.g. ``["float32", "mixed_bfloat16"]``.
    """
    from swin_gao_lib.errors import InputError

    for n in ns:
        if batch % n:
            raise InputError(f"--n: batch {batch} is not divisible by N={n}; give "
                             "N values that divide --batch")
    specs = []
    for backend in backends:
        modes = list(jit_modes) if backend == "tensorflow" else [True]
        for model in models:
            for jit in modes:
                for precision in precisions:
                    common = dict(model=model, batch=batch, jit=jit, precision=precision,
                                  steps=steps, warmup=warmup, dataset=dataset, backend=backend)
                    specs.append(Spec(n=1, variant="plain_full", **common))
                    specs += [Spec(n=n, variant=v, **common)
                              for n in ns if n != 1 for v in VARIANTS[1:]]
            if pipeline_check:
                specs.append(Spec(model=model, batch=batch, n=1, variant="plain_full",
                                  data="tensors", steps=steps, warmup=warmup, dataset=dataset,
                                  backend=backend, jit=modes[-1]))
    return specs
