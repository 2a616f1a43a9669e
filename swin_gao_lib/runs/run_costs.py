"""A suite's runs as the time left sees them: their measured times, and a borrowed cost.

:class:`RunTimes` holds a run's status and the epoch times its ``history.csv``
shows, and from them its cost per training image and its fixed start and tail.
The suite's time left (:mod:`swin_gao_lib.runs.progress`) prices each run at its
own measured seconds per training image. A run that has not trained an epoch
yet borrows the cost of the measured run whose config is nearest to its own
(fewest differing keys), so a suite of CIFAR-10 runs then MNIST runs is not
priced at the wrong data set's rate; and where the same change of config has
been measured elsewhere, the borrowed cost is scaled by it::

    mnist-gao = mnist-baseline x cifar10-gao / cifar10-baseline

(costs per image taken as a product of what the data/model and the
accumulation arm cost, which the replays in docs/running.md bear out better
than the unscaled borrow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from swin_gao_lib.config import RunConfig
from swin_gao_lib.config.run_config import NOT_IDENTITY

#: A config's identity as a dict key: sorted (key, value) pairs, lists made tuples.
Key = tuple


@dataclass
class RunTimes:
    """One run of a suite as the progress sees it: its status, and the epoch times it wrote."""

    plan: Any
    index: int
    status: str = "pending"  # pending | running | done | skipped
    started: float | None = None
    finished: float | None = None
    rows_at_start: int = 0
    rows: list[tuple[float, float]] = field(default_factory=list)  # (epoch_s, compile_s)
    first_row_seen: float | None = None  # when a row of this process first appeared
    last_row_seen: float | None = None
    history_stamp: tuple | None = None

    @property
    def images(self) -> int:
        return self.plan.images_per_epoch

    @property
    def new_rows(self) -> int:
        return max(0, len(self.rows) - self.rows_at_start)

    def seconds_per_image(self) -> float | None:
        if not self.rows or not self.images:
            return None
        steady = [max(e - c, 1e-9) for e, c in self.rows]
        return sum(steady) / len(steady) / self.images

    def start_s(self) -> float | None:
        """From its start until its first epoch of this process began training steadily."""
        if self.started is None or self.first_row_seen is None or not self.new_rows:
            return None
        epoch_s, compile_s = self.rows[self.rows_at_start]
        return max(self.first_row_seen - self.started - (epoch_s - compile_s), 0.0)

    def tail_s(self) -> float | None:
        if self.finished is None or self.last_row_seen is None:
            return None
        return max(self.finished - self.last_row_seen, 0.0)


def identity_key(config: RunConfig) -> Key:
    """What makes a run cost what it costs: its config without where it lands, its seed and
    its epochs (the cost is per image of one epoch)."""
    values = config.to_dict()
    return _key({k: v for k, v in values.items() if k not in (*NOT_IDENTITY, "seed", "epochs")})


def _key(identity: dict[str, Any]) -> Key:
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v)
                        for k, v in identity.items()))


def borrowed_cost(mine: Key, measured: dict[Key, float]) -> float:
    """The cost per image of ``mine`` from ``measured`` (cost per image by identity, not empty).

    The nearest measured identities' costs, each scaled by the same change of
    config measured elsewhere where there is one (the mean of those), else as
    they are (their mean).
    """
    configs = {key: dict(key) for key in measured}
    me = dict(mine)

    def differing(theirs: dict) -> set[str]:
        return {k for k in set(me) | set(theirs) if me.get(k) != theirs.get(k)}

    distance = {key: len(differing(configs[key])) for key in measured}
    nearest = min(distance.values())
    borrowed, scaled = [], []
    for key in (k for k in measured if distance[k] == nearest):
        theirs, keys = configs[key], differing(configs[key])
        borrowed.append(measured[key])
        # The same change measured elsewhere: a pair (from, to) that differs only in
        # ``keys``, ``from`` holding the nearest run's values there and ``to`` mine.
        for other_key, other in configs.items():
            if other_key == key or any(other.get(k) != theirs.get(k) for k in keys):
                continue
            to = _key({**other, **{k: me[k] for k in keys if k in me}})
            if to in measured:
                scaled.append(measured[key] * measured[to] / measured[other_key])
    chosen = scaled or borrowed
    return sum(chosen) / len(chosen)
