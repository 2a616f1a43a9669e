"""The kit's display vocabulary: how variants, optimizers, arms and runs are named.

Tables, figures, run folders and grid points take their words from here (data-set
titles from the registry, :func:`swin_gao_lib.config.datasets.title`).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from swin_gao_lib.config import RunConfig

OPTIMIZER_TITLES = {"adamw": "AdamW", "adam": "Adam", "sgd": "SGD"}
LR_SCALING_TITLES = {"none": "lr x1", "sqrt": "lr x sqrt(N)", "linear": "lr x N"}
MODE_TITLES = {"in_step": "in-step", "optimizer": "Keras optimizer"}
BASELINE = "baseline"
EQUAL_BATCH, EQUAL_MICRO = "equal effective batch", "equal micro-batch"
#: The two controls for the update count: equal micro-batch trained N x the epochs
#: (as many updates as the baseline), and plain training at the larger batch B = N B0
#: without accumulation.
EQUAL_UPDATES, PLAIN_BATCH = "equal updates", "plain large batch"
#: Short tags for the keys grids vary most; other keys use their full name.
TAGS = {"accumulation_steps": "n", "batch_size": "b", "learning_rate": "lr", "lr_scaling": "lr",
        "epochs": "e", "seed": "s", "accumulation_mode": "", "reduction": "", "optimizer": "",
        "dataset": ""}
_DEFAULTS = RunConfig()


def mode_title(mode: str) -> str:
    """``in-step`` or ``Keras optimizer`` (an unknown mode as it is)."""
    return MODE_TITLES.get(mode, mode)


def training_title(row: Mapping[str, Any]) -> str:
    """The optimizer as a study tells its arms apart: ``SGD without momentum, cosine lr``.

    ``row`` holds ``optimizer`` and, where known, ``momentum``, ``lr_schedule`` and
    ``warmup_updates``: SGD names its momentum, a schedule other than ``constant``
    its name and warm-up, so arms that differ only there get distinct labels.
    """
    text = OPTIMIZER_TITLES.get(row["optimizer"], row["optimizer"])
    momentum = row.get("momentum")
    if row["optimizer"] == "sgd" and momentum is not None:
        text += " without momentum" if momentum == 0 else f", momentum {momentum:g}"
    schedule = row.get("lr_schedule") or "constant"
    if schedule != "constant":
        text += f", {schedule} lr"
    warmup = row.get("warmup_updates") or 0
    if warmup:
        text += f", {warmup:g} warm-up updates"
    return text


def variant(config: Mapping[str, Any]) -> str:
    """``baseline``, or how accumulation was done: ``GAO N=4 (in-step, sum)``."""
    if config["accumulation_steps"] == 1:
        return BASELINE
    return (f"GAO N={config['accumulation_steps']} ({mode_title(config['accumulation_mode'])}, "
            f"{config['reduction']})")


def configuration_label(row: Mapping[str, Any]) -> str:
    """A study configuration in one line: ``AdamW N=4: 4x32=128, in-step sum, lr x sqrt(N)``.

    ``row`` holds ``family``, ``optimizer``, ``N``, ``micro_batch``, ``batch``,
    ``mode``, ``reduction`` and ``lr_scaling`` (a row of the study's tables).
    """
    opt = training_title(row)
    if row["family"] == BASELINE:
        return f"{opt} baseline, B={row['batch']}"
    lr = "" if row["lr_scaling"] == "none" else f", {LR_SCALING_TITLES[row['lr_scaling']]}"
    if row["family"] == PLAIN_BATCH:
        return f"{opt} plain B={row['batch']}, no accumulation{lr}"
    text = (f"{opt} N={row['N']}: {row['N']}x{row['micro_batch']}={row['batch']}, "
            f"{mode_title(row['mode'])} {row['reduction']}{lr}")
    if row["family"] == EQUAL_UPDATES:
        text += f", {row['epochs']} epochs"
    return text


def _updates(same: Any) -> str:
    """``same updates`` unless the recorded update counts differ from the partner's."""
    # == rather than `is`: numpy's False counts; None and NaN (no partner) do not
    return "updates differ" if same == False else "same updates"  # noqa: E712


def control_label(row: Mapping[str, Any]) -> str:
    """A control: the family at fixed optimizer, mode, reduction and lr scaling (N varies).

    A family promising its partner's update count says ``same updates`` unless
    ``row["same_updates"]`` is False (Keras's optimizer mode crosses epoch ends).
    """
    lr = LR_SCALING_TITLES.get(row["lr_scaling"], row["lr_scaling"])
    same = row.get("same_updates")
    if row["family"] == EQUAL_BATCH:
        what = f"equal effective batch ({_updates(same)})"
    elif row["family"] == EQUAL_MICRO:
        what = f"equal micro-batch (N x fewer updates, {lr})"
    elif row["family"] == EQUAL_UPDATES:
        what = f"equal micro-batch, N x epochs ({_updates(same)}, {lr})"
    elif row["family"] == PLAIN_BATCH:
        return (f"plain batch B0 x N without accumulation (N x fewer updates, {lr}), "
                f"{training_title(row)}")
    else:
        what = row["family"]
    return f"{what}, {training_title(row)}, {mode_title(row['mode'])} {row['reduction']}"


def versus_plain_label(row: Mapping[str, Any], same_updates: bool | None) -> str:
    """The control comparing equal micro-batch accumulation with plain training at its batch."""
    lr = LR_SCALING_TITLES.get(row["lr_scaling"], row["lr_scaling"])
    return (f"equal micro-batch vs plain B0 x N (same batch, {_updates(same_updates)}, {lr}), "
            f"{training_title(row)}, {mode_title(row['mode'])} {row['reduction']}")


def arm_label(family: str, training: str, mode: str | None = None, reduction: str | None = None,
              lr_scaling: str = "none") -> str:
    """An arm: a configuration across N, e.g. ``AdamW equal effective batch, in-step sum``.

    ``training`` is the arm's :func:`training_title`; ``mode`` is None for arms
    without accumulation (N = 1).
    """
    lr = "" if lr_scaling in (None, "none") else f", {LR_SCALING_TITLES.get(lr_scaling, lr_scaling)}"
    how = f", {mode_title(mode)} {reduction}" if mode is not None else ""
    if family == BASELINE:
        return f"{training} baseline"
    if family == PLAIN_BATCH:
        return f"{training} plain large batch, no accumulation{lr}"
    if family == EQUAL_UPDATES:
        return f"{training} {EQUAL_MICRO}, N x epochs{how}{lr}"
    return f"{training} {family}{how}{lr}"


def series_label(training: str, family: str, base_batch: int, lr_scaling: str = "none") -> str:
    """A line of the figures against N: one family of one training arm from its baseline
    batch; ``training`` is the arm's :func:`training_title`."""
    if family == EQUAL_BATCH:
        return f"{training}: {EQUAL_BATCH} (B={base_batch})"
    return (f"{training}: {EQUAL_MICRO} (B={base_batch}N), "
            f"{LR_SCALING_TITLES[lr_scaling]}")


def default_run_name(cfg: RunConfig) -> str:
    """A name that says what differs between runs: data, accumulation, batch, seed."""
    if cfg.accumulation_steps == 1:
        acc = BASELINE
    else:
        acc = f"{cfg.accumulation_mode}-n{cfg.accumulation_steps}-{cfg.reduction}"
    return f"{cfg.dataset}-{acc}-b{cfg.batch_size}-s{cfg.seed}"


def _format(value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (list, tuple)):
        text = "x".join(_format(v) for v in value)
    else:
        text = str(value)
    # Keep names safe as folder names on every OS and in shells.
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)  # what config.RUN_NAME accepts


def point_name(prefix: str, varied: list[str], values: Mapping[str, Any]) -> str:
    """``<prefix>-<tag><value>-...`` for every ``varied`` key in order, e.g.
    ``mnist-n4-b512-lrsqrt-s1``: the run name of a grid point."""
    parts = [prefix]
    for key in varied:
        value = values.get(key, getattr(_DEFAULTS, key, None))
        parts.append(TAGS.get(key, key) + _format(value))
    return "-".join(parts)
