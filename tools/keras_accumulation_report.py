"""Keras 3 ``gradient_accumulation_steps`` on JAX: what it does, measured, and a fix.

A self-contained report for Keras's maintainers (the text to file is
``tools/keras_accumulation_report.md``). It needs only Keras and JAX, and sets
``KERAS_BACKEND=jax`` itself::

    python tools/keras_accumulation_report.py                 # the numbers in tools/keras_accumulation_report.md
    python tools/keras_accumulation_report.py --json out.json # the same, also as JSON

It shows, with the installed Keras:

1. **Schedule.** A ``LearningRateSchedule`` is evaluated at the micro-step
   counter (``BaseOptimizer._get_current_learning_rate`` reads
   ``self._iterations``), so update ``k`` gets ``schedule(N k + N - 1)``, while
   ``optimizer.iterations``, Adam's bias correction and EMA count updates. Each
   update's learning rate is read off a variable whose gradient is always 1
   (every update moves it by exactly the rate it applied), through
   ``optimizer.apply`` and through ``model.fit``.
2. **Work per micro-step.** ``JaxOptimizer._backend_apply_gradients``
   (``keras/src/backend/jax/optimizer.py``) runs clipping, weight decay and the
   full ``update_step`` on every micro-step and then uses ``lax.cond`` only to
   choose between the new and the old values. A ``jax.debug.callback`` inside
   ``_backend_update_step`` counts how often the update really executes in the
   compiled step.
3. **Cost.** The time of each micro-step of a jitted ``stateless_apply`` (what
   ``fit`` calls), by its position in the accumulation group, for Adam on
   ``--params`` parameters: no accumulation, Keras's accumulation, and the fix.
4. **The fix.** :func:`accumulate_then_update` subclasses any Keras optimizer
   so that the update runs inside the ``lax.cond`` branch that is taken only on
   update steps (and, with ``schedule_per_update=True``, evaluates a schedule at
   the update count). It is checked to give the same variables as Keras's own
   accumulation at every update.

Times are measured on whatever device JAX finds, interleaved (each round runs
every variant once, in a shuffled order) and reported as medians; they are
printed, never asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=4,
                   help="gradient_accumulation_steps N (>= 2; default 4)")
    p.add_argument("--updates", type=int, default=8,
                   help="optimizer updates in the schedule check (>= 2; default 8)")
    p.add_argument("--params", type=int, default=4_000_000,
                   help="parameters of the timed optimizer, in 4 variables (>= 4; default 4,000,000)")
    p.add_argument("--rounds", type=int, default=30,
                   help="timed accumulation groups per variant (>= 3; default 30)")
    p.add_argument("--warmup", type=int, default=3,
                   help="untimed groups per variant after compilation (>= 1; default 3)")
    p.add_argument("--json", type=Path, default=None, help="also write the numbers to this file")
    args = p.parse_args(argv)
    for name, low in (("steps", 2), ("updates", 2), ("params", 4), ("rounds", 3), ("warmup", 1)):
        if getattr(args, name) < low:
            p.exit(2, f"error: --{name} must be >= {low}, got {getattr(args, name)}\n")
    if args.json is not None and args.json.exists():
        p.exit(2, f"error: --json {args.json} exists; give a new path (nothing is overwritten)\n")
    return args


# ---------------------------------------------------------------------------
# The proposed fix
# ---------------------------------------------------------------------------

def accumulate_then_update(optimizer_class, schedule_per_update: bool = False,
                           branch: str = "while"):
    """``optimizer_class`` with the update computed only on update steps (JAX).

    Keras's ``JaxOptimizer`` computes the update on every micro-step and keeps
    it with ``lax.cond`` only on the N-th. Here every micro-step adds its
    gradient to the accumulator, and the update runs only on the N-th:

    - ``branch="cond"``: the update is the taken branch of a ``lax.cond``;
    - ``branch="while"``: the update is the body of a ``lax.while_loop`` that
      runs once on an update step and not at all otherwise. XLA updates a
      while loop's carry in place, so on the other micro-steps the model's and
      the optimizer's variables pass through without a copy (a ``cond``'s
      outputs are new buffers: measured here, it copies them every micro-step).

    The update runs the optimizer's own code (clipping, weight decay,
    ``update_step``) in a ``StatelessScope`` over the values passed to it, so
    the arithmetic is Keras's. ``schedule_per_update=True`` also evaluates a
    ``LearningRateSchedule`` at the update count (``self.iterations``) instead
    of the micro-step count. EMA is left to Keras's own path (this sketch does
    not cover it).
    """
    import jax
    import jax.numpy as jnp
    import keras

    if branch not in ("cond", "while"):
        raise ValueError(f"branch must be 'cond' or 'while', got {branch!r}")

    class AccumulateThenUpdate(optimizer_class):
        def _backend_apply_gradients(self, grads, trainable_variables):
            if not self.gradient_accumulation_steps or self.use_ema:
                return super()._backend_apply_gradients(grads, trainable_variables)
            steps = self.gradient_accumulation_steps
            is_update_step = (self._iterations + 1) % steps == 0
            accumulators = [self._accumulated_gradients[self._get_variable_index(v)]
                            for v in trainable_variables]
            skip = {id(a) for a in accumulators}
            opt_vars = [v for v in self.variables if id(v) not in skip]
            summed = [a.value + g.astype(a.dtype) for a, g in zip(accumulators, grads)]

            def update(train_vals, opt_vals, acc_vals):
                mapping = list(zip(trainable_variables, train_vals)) + list(zip(opt_vars, opt_vals))
                with keras.StatelessScope(state_mapping=mapping) as scope:
                    # (g + acc) / N, as Keras computes it
                    mean = self._clip_gradients([a / steps for a in acc_vals])
                    self._apply_weight_decay(trainable_variables)
                    self._backend_update_step(mean, trainable_variables, self.learning_rate)
                return ([scope.get_current_value(v) for v in trainable_variables],
                        [scope.get_current_value(v) for v in opt_vars],
                        [jnp.zeros_like(a) for a in acc_vals])

            state = ([v.value for v in trainable_variables], [v.value for v in opt_vars], summed)
            if branch == "cond":
                new_train, new_opt, new_acc = jax.lax.cond(
                    is_update_step, update, lambda *s: s, *state)
            else:
                new_train, new_opt, new_acc, _ = jax.lax.while_loop(
                    lambda c: c[3], lambda c: (*update(*c[:3]), jnp.zeros((), bool)),
                    (*state, is_update_step))
            for v, value in zip(trainable_variables, new_train):
                v.assign(value)
            for v, value in zip(opt_vars, new_opt):
                v.assign(value)
            for a, value in zip(accumulators, new_acc):
                a.assign(value)

        def _get_current_learning_rate(self):
            schedule = keras.optimizers.schedules.LearningRateSchedule
            if (schedule_per_update and self.gradient_accumulation_steps
                    and isinstance(self._learning_rate, schedule)):
                return self._learning_rate(self.iterations)  # the update count
            return super()._get_current_learning_rate()

    AccumulateThenUpdate.__name__ = f"AccumulateThenUpdate{optimizer_class.__name__}"
    return AccumulateThenUpdate


# ---------------------------------------------------------------------------
# 1. The schedule
# ---------------------------------------------------------------------------

def run_micro_steps(optimizer, variables: list, grads: list) -> list:
    """The variables' values after each micro-step of a jitted ``stateless_apply``.

    ``grads`` holds one list of gradients per micro-step. This is what ``fit``
    does on JAX (there inside its compiled train step); eager ``apply`` would
    give the same numbers, only far slower.
    """
    import jax
    import numpy as np

    fn, opt_vals, train_vals = jitted_apply(optimizer, variables)
    after = []
    for g in grads:
        train_vals, opt_vals = fn(opt_vals, g, train_vals)
        after.append([np.array(t) for t in train_vals])  # a copy: the next step donates them
    for v, value in zip(optimizer.variables, opt_vals):
        v.assign(value)
    jax.block_until_ready(train_vals)
    return after


def applied_rates(keras, optimizer, micro_steps: int, every: int = 1) -> list[float]:
    """The rate each update applied to a variable whose every gradient is 1.

    An update happens at micro-steps ``every - 1, 2 every - 1, ...``; the move
    of the variable there is the rate it applied (0 too).
    """
    import numpy as np

    after = run_micro_steps(optimizer, [keras.Variable(0.0)],
                            [[np.ones((), "float32")]] * micro_steps)
    values = [0.0] + [float(a[0]) for a in after]
    return [values[i] - values[i + 1] for i in range(every - 1, micro_steps, every)]


def fit_total_move(keras, optimizer, micro_steps: int) -> float:
    """``model.fit`` over ``micro_steps`` batches of one sample whose gradient is -1.

    The model is ``w * x`` with ``x = 1``, ``w = 0`` and the mean absolute error
    to ``y = 1e6``: every micro-batch's gradient is exactly -1, so ``w`` ends at
    the sum of the rates the updates applied.
    """
    import numpy as np

    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=optimizer, loss="mean_absolute_error")
    x = np.ones((micro_steps, 1), "float32")
    model.fit(x, np.full((micro_steps, 1), 1e6, "float32"), batch_size=1, epochs=1,
              shuffle=False, verbose=0)
    return float(model.layers[0].kernel.numpy().item())


def schedule_section(keras, n: int, updates: int) -> dict:
    def sched():
        return keras.optimizers.schedules.CosineDecay(0.1, decay_steps=updates)

    reference = sched()
    at = [float(reference(k)) for k in range(n * updates)]
    micro = n * updates
    keras_opt = keras.optimizers.SGD(sched(), gradient_accumulation_steps=n)
    keras_rates = applied_rates(keras, keras_opt, micro, n)
    fixed_cls = accumulate_then_update(keras.optimizers.SGD, schedule_per_update=True)
    fixed_rates = applied_rates(keras, fixed_cls(sched(), gradient_accumulation_steps=n), micro, n)
    plain_rates = applied_rates(keras, keras.optimizers.SGD(sched()), updates)
    return {
        "schedule": f"CosineDecay(0.1, decay_steps={updates})",
        "rows": [{"update": k, "micro_step": n * k + n - 1,
                  "keras": keras_rates[k],
                  "schedule_at_update": at[k], "schedule_at_micro_step": at[n * k + n - 1],
                  "fixed": fixed_rates[k], "no_accumulation": plain_rates[k]}
                 for k in range(updates)],
        "iterations_after": int(keras.ops.convert_to_numpy(keras_opt.iterations)),
        "micro_steps_after": int(keras.ops.convert_to_numpy(keras_opt._iterations)),
        "fit_total_keras": fit_total_move(keras, keras.optimizers.SGD(sched(), gradient_accumulation_steps=n), micro),
        "fit_total_fixed": fit_total_move(keras, fixed_cls(sched(), gradient_accumulation_steps=n), micro),
        "sum_schedule_at_micro_steps": sum(at[n * k + n - 1] for k in range(updates)),
        "sum_schedule_at_updates": sum(at[k] for k in range(updates)),
    }


# ---------------------------------------------------------------------------
# 2. How often the update executes; 3. what a micro-step costs
# ---------------------------------------------------------------------------

def counting(optimizer_class):
    """``optimizer_class`` whose ``_backend_update_step`` counts its executions at run time."""
    import jax

    class Counting(optimizer_class):
        executed = 0

        def _backend_update_step(self, grads, trainable_variables, learning_rate):
            def tick():
                type(self).executed += 1

            jax.debug.callback(tick)
            return super()._backend_update_step(grads, trainable_variables, learning_rate)

    return Counting


def make_variables(keras, params: int) -> list:
    import numpy as np

    rng = np.random.default_rng(0)
    size = params // 4
    return [keras.Variable(rng.normal(size=(size,)).astype("float32"), name=f"w{i}") for i in range(4)]


def jitted_apply(optimizer, variables):
    """A compiled ``stateless_apply``, as the JAX trainer calls it inside its train step.

    ``fn(optimizer_values, grads, trainable_values)`` returns the new
    ``(trainable_values, optimizer_values)``. Like the trainer's
    ``jit(train_step, donate_argnums=0)``, the optimizer's and the model's
    values are donated, and they come back in the order they went in (JAX
    pairs donated inputs with outputs by order), so a value a step leaves
    unchanged needs no copy.
    """
    import jax

    optimizer.build(variables)

    def step(opt_vals, grads, train_vals):
        new_train, new_opt = optimizer.stateless_apply(opt_vals, grads, train_vals)
        return new_opt, new_train

    compiled = jax.jit(step, donate_argnums=(0, 2))

    def fn(opt_vals, grads, train_vals):
        new_opt, new_train = compiled(opt_vals, grads, train_vals)
        return new_train, new_opt

    fn.jitted = compiled
    return fn, [v.value for v in optimizer.variables], [v.value for v in variables]


def executions_section(keras, n: int, groups: int = 3) -> dict:
    import jax
    import numpy as np

    out = {}
    acc = {"gradient_accumulation_steps": n}
    variants = {"no_accumulation": (counting(keras.optimizers.Adam), {}),
                "keras": (counting(keras.optimizers.Adam), acc),
                "fix_cond": (counting(accumulate_then_update(keras.optimizers.Adam, branch="cond")), acc),
                "fix_while": (counting(accumulate_then_update(keras.optimizers.Adam)), acc)}
    for name, (cls, kwargs) in variants.items():
        variables = make_variables(keras, 64)
        fn, opt_vals, train_vals = jitted_apply(cls(1e-3, **kwargs), variables)
        grads = [np.ones(v.shape, "float32") for v in variables]
        for _ in range(n * groups):
            train_vals, opt_vals = fn(opt_vals, grads, train_vals)
        jax.block_until_ready(train_vals)
        jax.effects_barrier()
        out[name] = {"micro_steps": n * groups, "update_executions": cls.executed}
    return out


def compiled_buffers(fn, opt_vals, grads, train_vals) -> dict:
    """What XLA compiled for one micro-step: copies of parameter-sized buffers, branches, loops.

    The four variables have the same shape, so every ``copy`` of that shape in
    the optimized HLO is a copy of a weight, a moment or an accumulator.
    """
    import re

    text = fn.jitted.lower(opt_vals, grads, train_vals).compile().as_text()
    shape = f"f32[{grads[0].shape[0]}]"
    return {"parameter_sized_copies": len(re.findall(re.escape(shape) + r"\{0\} copy\(", text)),
            "conditionals": len(re.findall(r" conditional\(", text)),
            "while_loops": len(re.findall(r" while\(", text))}


VARIANTS = ("no_accumulation", "keras", "fix_cond", "fix_while")


def cost_section(keras, n: int, params: int, rounds: int, warmup: int) -> dict:
    """Median cost of each micro-step of a jitted ``stateless_apply``, by position in the group.

    Each call is timed twice: CPU time of this process (the work done, all of
    XLA's threads; robust on a shared machine) and wall time (what a user
    waits, on an otherwise idle device).
    """
    import jax
    import numpy as np

    rng = np.random.default_rng(1)
    adam = keras.optimizers.Adam
    acc = {"gradient_accumulation_steps": n}
    variants = {"no_accumulation": adam(1e-3), "keras": adam(1e-3, **acc),
                "fix_cond": accumulate_then_update(adam, branch="cond")(1e-3, **acc),
                "fix_while": accumulate_then_update(adam, branch="while")(1e-3, **acc)}
    state = {}
    for name, opt in variants.items():
        variables = make_variables(keras, params)
        fn, opt_vals, train_vals = jitted_apply(opt, variables)
        grads = [jax.numpy.asarray(rng.normal(size=v.shape).astype("float32")) for v in variables]
        state[name] = {"fn": fn, "opt": opt_vals, "train": train_vals, "grads": grads,
                       "cpu": [[] for _ in range(n)], "wall": [[] for _ in range(n)],
                       "compiled": compiled_buffers(fn, opt_vals, grads, train_vals)}

    def group(name, record):
        st = state[name]
        for i in range(n):  # Keras's counter starts at 0: call i of a group is its micro-step i
            w0, c0 = time.perf_counter(), time.process_time()
            st["train"], st["opt"] = st["fn"](st["opt"], st["grads"], st["train"])
            jax.block_until_ready((st["train"], st["opt"]))
            if record:
                st["cpu"][i].append(time.process_time() - c0)
                st["wall"][i].append(time.perf_counter() - w0)

    names = list(variants)
    for _ in range(warmup):
        for name in names:
            group(name, record=False)
    order = random.Random(0)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            group(name, record=True)
    out = {}
    for name in variants:
        row = {}
        for clock in ("cpu", "wall"):
            times = state[name][clock]
            by_pos = [float(np.median(times[i])) * 1e3 for i in range(n)]
            row[clock] = {"ms_by_position": by_pos,
                          "ms_non_update": float(np.median(sum(times[:n - 1], []))) * 1e3,
                          "ms_update": by_pos[n - 1],
                          "ms_per_micro_step": float(np.mean(by_pos))}
        out[name] = {**row, "compiled": state[name]["compiled"]}
    return out


def fit_section(keras, n: int, params: int, rounds: int, groups: int = 4) -> dict:
    """Time per micro-step of ``model.fit`` on a one-layer model of ``params`` weights.

    ``Dense(d, d)`` with ``d * d`` about ``params``, batches of 2 rows: the
    forward and backward passes are cheap next to Adam's update of every
    weight, which is where optimizer accumulation's per-micro-step work shows.
    Each round fits every variant for one epoch of ``groups * n`` micro-steps,
    in a shuffled order; the first (compiling) epoch is not timed.
    """
    import numpy as np

    d = max(2, int(params ** 0.5))
    rng = np.random.default_rng(4)
    micro = groups * n
    x = rng.normal(size=(2 * micro, d)).astype("float32")
    y = rng.normal(size=(2 * micro, d)).astype("float32")
    adam = keras.optimizers.Adam
    acc = {"gradient_accumulation_steps": n}
    makers = {"no_accumulation": lambda: adam(1e-3), "keras": lambda: adam(1e-3, **acc),
              "fix_cond": lambda: accumulate_then_update(adam, branch="cond")(1e-3, **acc),
              "fix_while": lambda: accumulate_then_update(adam, branch="while")(1e-3, **acc)}
    models, cpu, wall = {}, {k: [] for k in makers}, {k: [] for k in makers}
    for name, make in makers.items():
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(d, use_bias=False)])
        model.compile(optimizer=make(), loss="mse")
        model.fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)  # compiles
        models[name] = model
    names = list(makers)
    order = random.Random(1)
    for _ in range(rounds):
        order.shuffle(names)
        for name in names:
            w0, c0 = time.perf_counter(), time.process_time()
            models[name].fit(x, y, batch_size=2, epochs=1, shuffle=False, verbose=0)
            cpu[name].append((time.process_time() - c0) / micro)
            wall[name].append((time.perf_counter() - w0) / micro)
    return {"params": d * d, "micro_steps_per_fit": micro,
            **{name: {"cpu_ms": float(np.median(cpu[name])) * 1e3,
                      "wall_ms": float(np.median(wall[name])) * 1e3} for name in makers}}


# ---------------------------------------------------------------------------
# 4. The fix gives Keras's numbers
# ---------------------------------------------------------------------------

def equivalence_section(keras, n: int, groups: int = 3) -> dict:
    """Keras's accumulation against the two fixes, on the same gradients.

    ``fix_cond`` and ``fix_while``: the max |difference| from Keras's variables
    after each update; ``moved_between_updates``: the largest change of any
    variable on a micro-step that is not an update (0 for all three).
    """
    import numpy as np

    rng = np.random.default_rng(2)
    grads = [[rng.normal(size=(3, 5)).astype("float32"), rng.normal(size=(5,)).astype("float32")]
             for _ in range(n * groups)]
    out = {}
    for opt_name, cls, kwargs in (("AdamW", keras.optimizers.AdamW, {"weight_decay": 0.05}),
                                  ("SGD", keras.optimizers.SGD, {"momentum": 0.9, "weight_decay": 0.01}),
                                  ("Adam+clipnorm", keras.optimizers.Adam, {"clipnorm": 0.5})):
        runs, moved = [], 0.0
        for klass in (cls, accumulate_then_update(cls, branch="cond"), accumulate_then_update(cls)):
            rng_init = np.random.default_rng(3)
            variables = [keras.Variable(rng_init.normal(size=(3, 5)).astype("float32")),
                         keras.Variable(rng_init.normal(size=(5,)).astype("float32"))]
            start = [np.array(v.numpy()) for v in variables]
            after = run_micro_steps(klass(1e-2, gradient_accumulation_steps=n, **kwargs),
                                    variables, grads)
            for i, (now, prev) in enumerate(zip(after, [start] + after)):
                if i % n != n - 1:  # micro-step i does not update
                    moved = max(moved, *(float(np.abs(a - b).max()) for a, b in zip(now, prev)))
            runs.append(after[n - 1::n])  # after each update
        out[opt_name] = {fix: max(float(np.abs(a - b).max())
                                  for upd_a, upd_b in zip(runs[0], run) for a, b in zip(upd_a, upd_b))
                         for fix, run in zip(("fix_cond", "fix_while"), runs[1:])}
        out[opt_name]["moved_between_updates"] = moved
    return out


# ---------------------------------------------------------------------------

def versions() -> dict:
    import jax
    import jaxlib
    import keras

    return {"keras": keras.__version__, "jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "python": platform.python_version(), "backend": keras.backend.backend(),
            "device": str(jax.devices()[0].device_kind), "platform": platform.platform()}


def report(args: argparse.Namespace) -> dict:
    import keras

    n = args.steps
    return {"versions": versions(), "steps": n,
            "schedule": schedule_section(keras, n, args.updates),
            "executions": executions_section(keras, n),
            "cost": {"params": 4 * (args.params // 4), "rounds": args.rounds,
                     **cost_section(keras, n, args.params, args.rounds, args.warmup)},
            "fit": {"rounds": max(3, args.rounds // 3),
                    **fit_section(keras, n, args.params, max(3, args.rounds // 3))},
            "equivalence": equivalence_section(keras, n)}


def fmt(x: float | None, spec: str = ".5f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(r: dict) -> None:
    v, n = r["versions"], r["steps"]
    print(f"Keras {v['keras']} on {v['backend']} (JAX {v['jax']}, jaxlib {v['jaxlib']}), "
          f"Python {v['python']}, device {v['device']}; gradient_accumulation_steps = {n}")

    s = r["schedule"]
    print(f"\n1. Learning-rate schedule {s['schedule']}: the rate each update applied")
    print(f"{'update k':>8} {'micro-step':>10} {'Keras':>9} {'sched(k)':>9} "
          f"{'sched(Nk+N-1)':>13} {'fixed':>9} {'no accum.':>9}")
    for row in s["rows"]:
        print(f"{row['update']:>8} {row['micro_step']:>10} {fmt(row['keras']):>9} "
              f"{fmt(row['schedule_at_update']):>9} {fmt(row['schedule_at_micro_step']):>13} "
              f"{fmt(row['fixed']):>9} {fmt(row['no_accumulation']):>9}")
    print(f"After {n * len(s['rows'])} micro-steps: optimizer.iterations = {s['iterations_after']} "
          f"(updates), optimizer._iterations = {s['micro_steps_after']} (what the schedule reads).")
    print(f"model.fit, the same schedule, gradient -1 every micro-step: the weight moved "
          f"{s['fit_total_keras']:.5f} with Keras (sum of sched(Nk+N-1) = "
          f"{s['sum_schedule_at_micro_steps']:.5f}), {s['fit_total_fixed']:.5f} with the fix "
          f"(sum of sched(k) = {s['sum_schedule_at_updates']:.5f}).")

    e = r["executions"]
    print("\n2. How often the optimizer's update_step executes (jax.debug.callback in the jitted "
          "stateless_apply)")
    for name, row in e.items():
        print(f"  {name:<16} {row['update_executions']:>3} executions in {row['micro_steps']} micro-steps")

    c = r["cost"]
    print(f"\n3. Cost per micro-step, Adam, {c['params']:,} parameters, jitted stateless_apply "
          f"(variables donated, as in fit), median of {c['rounds']} interleaved groups")
    for clock, label in (("cpu", "CPU time of the process"), ("wall", "wall time")):
        print(f"  {label} (ms) by position in the group (position {n - 1} updates):")
        print(f"  {'variant':<16} " + " ".join(f"{'pos ' + str(i):>8}" for i in range(n))
              + f" {'mean':>8} {'vs no accum.':>12}")
        base = c["no_accumulation"][clock]["ms_per_micro_step"]
        for name in VARIANTS:
            row = c[name][clock]
            print(f"  {name:<16} " + " ".join(f"{t:>8.2f}" for t in row["ms_by_position"])
                  + f" {row['ms_per_micro_step']:>8.2f} {row['ms_per_micro_step'] / base:>11.2f}x")
    print("  The compiled micro-step (optimized HLO, this device):")
    for name in VARIANTS:
        comp = c[name]["compiled"]
        print(f"  {name:<16} {comp['parameter_sized_copies']:>3} copies of a parameter-sized buffer, "
              f"{comp['conditionals']} conditional(s), {comp['while_loops']} while loop(s)")
    k, f = c["keras"]["cpu"], c["fix_while"]["cpu"]
    print(f"  CPU time of a micro-step that does not update: {k['ms_non_update']:.2f} ms in Keras, "
          f"{f['ms_non_update']:.2f} ms with fix_while ({k['ms_non_update'] / f['ms_non_update']:.1f}x); "
          f"per micro-step over a group of {n}: {k['ms_per_micro_step'] / f['ms_per_micro_step']:.2f}x.")

    fit = r["fit"]
    print(f"\n   model.fit, Dense({int(fit['params'] ** 0.5)}, no bias): {fit['params']:,} parameters, "
          f"batches of 2, median of {fit['rounds']} interleaved epochs of "
          f"{fit['micro_steps_per_fit']} micro-steps (ms per micro-step)")
    print(f"  {'variant':<16} {'CPU':>8} {'wall':>8} {'CPU vs no accum.':>17}")
    for name in VARIANTS:
        print(f"  {name:<16} {fit[name]['cpu_ms']:>8.2f} {fit[name]['wall_ms']:>8.2f} "
              f"{fit[name]['cpu_ms'] / fit['no_accumulation']['cpu_ms']:>16.2f}x")

    print("\n4. The fixes against Keras's accumulation: max |difference| of the variables after every "
          "update, and the largest move on a micro-step that does not update (all three)")
    for name, diffs in r["equivalence"].items():
        print(f"  {name:<14} " + ", ".join(f"{key} {d:.3g}" for key, d in diffs.items()))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if "keras" in sys.modules and sys.modules["keras"].backend.backend() != "jax":
        print("error: Keras is already imported on another backend; run this script in a fresh "
              "process (it sets KERAS_BACKEND=jax itself)", file=sys.stderr)
        return 2
    os.environ["KERAS_BACKEND"] = "jax"
    r = report(args)
    print_report(r)
    if args.json is not None:
        args.json.write_text(json.dumps(r, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
