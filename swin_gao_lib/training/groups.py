"""Which runs can train side by side: one configuration at several seeds (no Keras here).

Planning a suite (``swin-gao run-all --executor side-by-side``) groups its runs
with :func:`group_runs` before any backend is imported;
:mod:`swin_gao_lib.training.side_by_side` trains each group as one program.
"""

from __future__ import annotations

from typing import Sequence, TypeVar

from swin_gao_lib.config import RunConfig
from swin_gao_lib.config.run_config import NOT_CONFIGURATION
from swin_gao_lib.errors import ConfigError

T = TypeVar("T")


def group_key(cfg: RunConfig) -> tuple:
    """Runs with equal keys can train side by side (everything but the seed and folder)."""
    return tuple(sorted((k, str(v)) for k, v in cfg.to_dict().items()
                        if k not in NOT_CONFIGURATION))


def check_group(cfgs: list[RunConfig]) -> None:
    """A group is one configuration at distinct seeds, on the device pipeline (else bad input)."""
    if not cfgs:
        raise ConfigError("seeds side by side: no runs given")
    if any(c.pipeline != "device" for c in cfgs):
        raise ConfigError("pipeline: seeds side by side run on the device; set pipeline: device "
                          "(with backend: jax)")
    if len({group_key(c) for c in cfgs}) > 1:
        a, b = cfgs[0].to_dict(), next(c for c in cfgs if group_key(c) != group_key(cfgs[0]))
        keys = [k for k in a if k not in NOT_CONFIGURATION and a[k] != b.to_dict()[k]]
        raise ConfigError(f"seeds side by side: runs {cfgs[0].run_name} and {b.run_name} differ "
                          f"in {', '.join(keys)}; only seed, run_name and output_dir may differ")
    seeds = [c.seed for c in cfgs]
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seed: the runs side by side repeat a seed ({seeds})")


def group_runs(items: Sequence[T], config=lambda item: item, size: int | None = None
               ) -> list[list[T]]:
    """``items`` grouped by configuration (first appearance order), each group in order.

    ``config`` reads an item's :class:`RunConfig`; ``size`` caps a group (a card
    holds only so many seeds at once): larger groups are cut in order.
    """
    groups: dict[tuple, list[T]] = {}
    for item in items:
        groups.setdefault(group_key(config(item)), []).append(item)
    out = []
    for group in groups.values():
        step = size or len(group)
        out += [group[i:i + step] for i in range(0, len(group), step)]
    return out
