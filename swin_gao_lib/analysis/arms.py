"""A study's arms as the figures show them: one name, one colour and one marker each.

An *arm* is a configuration across N (everything but the seed, N and the batch
or epochs N implies). One :class:`ArmStyles` per report gives every figure its
colours and markers: an arm looks the same in every figure, two arms never
alike; a baseline is black, the paper's GAO blue, AdamW a circle, SGD a square.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from swin_gao_lib.config.labels import (BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES,
                                        PLAIN_BATCH, arm_label)

#: Families of one configuration without accumulation (N = 1): mode and reduction do not apply.
_SINGLE = (BASELINE, PLAIN_BATCH, "no accumulation")
#: The colour of each kind of arm: its family and, with accumulation, mode and reduction.
_KIND_COLORS = {
    (BASELINE, None, None): "#000000",
    (EQUAL_BATCH, "in_step", "sum"): "#1f77b4",  # the paper's GAO (Eq. 9)
    (EQUAL_BATCH, "in_step", "mean"): "#9467bd",
    (EQUAL_BATCH, "optimizer", "mean"): "#8c564b",
    (EQUAL_MICRO, None, None): "#d62728",
    (EQUAL_UPDATES, None, None): "#2ca02c",
    (PLAIN_BATCH, None, None): "#ff7f0e",
    ("no accumulation", None, None): "#7f7f7f",
}
#: Colours for arms of no listed kind, and for the rare clash (tab10's remaining hues first).
_SPARE_COLORS = ("#17becf", "#e377c2", "#bcbd22", "#7f7f7f", "#aec7e8", "#ff9896", "#98df8a",
                 "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5")
#: The marker of each training arm (optimizer, momentum, schedule), then spares.
_TRAINING_MARKERS = {"AdamW": "o", "SGD without momentum": "s", "AdamW, cosine lr": "D",
                     "Adam": "v", "SGD, momentum 0.9": "^"}
MARKERS = ("o", "s", "D", "v", "^", "P", "X", "<", ">", "h", "p", "*")
_FAMILY_RANK = {f: i for i, f in enumerate((BASELINE, EQUAL_BATCH, EQUAL_MICRO, EQUAL_UPDATES,
                                            PLAIN_BATCH, "no accumulation"))}


@dataclass(frozen=True, order=True)
class Arm:
    """An arm: what a configuration is, but for its seed and N."""

    family: str
    training: str
    mode: str | None = None
    reduction: str | None = None
    lr_scaling: str = "none"

    @property
    def label(self) -> str:
        """The arm's one name (:func:`swin_gao_lib.config.labels.arm_label`)."""
        return arm_label(self.family, self.training, self.mode, self.reduction, self.lr_scaling)

    def _rank(self) -> tuple:
        return (_FAMILY_RANK.get(self.family, len(_FAMILY_RANK)), self.family, self.training,
                self.mode or "", self.reduction or "", self.lr_scaling)


def arm_of(row: Mapping[str, Any]) -> Arm:
    """The arm of a study row (a configuration, a run, a point of an N sweep): its ``family``,
    ``training`` and, with accumulation, ``mode``, ``reduction`` and ``lr_scaling``."""
    family = row["family"]
    if family in _SINGLE:
        scaling = "none" if family == BASELINE else row.get("lr_scaling", "none")
        return Arm(family, row["training"], None, None, scaling or "none")
    return Arm(family, row["training"], row.get("mode"), row.get("reduction"),
               row.get("lr_scaling") or "none")


@dataclass(frozen=True)
class Style:
    """How an arm is drawn: its colour and its marker."""

    color: str
    marker: str


class ArmStyles:
    """One colour + marker per arm of a suite, distinct between arms, fixed for the report."""

    def __init__(self, styles: Mapping[Arm, Style]):
        self._styles = dict(styles)

    @classmethod
    def for_arms(cls, arms: Iterable[Arm]) -> "ArmStyles":
        """Styles for ``arms``, the same for the same set in any order: the kind's colour and the
        training's marker; where two would coincide, the later takes the next free marker, then
        a spare colour."""
        arms = sorted(set(arms), key=Arm._rank)
        markers: dict[str, str] = {}
        for training in sorted({a.training for a in arms}):
            # an optimizer at several rates ("SGD without momentum, lr 0.4") keeps its marker;
            # the clash rule below then parts its arms that share a colour
            if training.split(", lr ")[0] in _TRAINING_MARKERS:
                markers[training] = _TRAINING_MARKERS[training.split(", lr ")[0]]
        for training in sorted({a.training for a in arms}):
            if training not in markers:
                free = [m for m in MARKERS if m not in markers.values()]
                markers[training] = free[0] if free else MARKERS[len(markers) % len(MARKERS)]
        taken: set[tuple[str, str]] = set()
        styles: dict[Arm, Style] = {}
        spares = iter(_SPARE_COLORS * 4)
        for arm in arms:
            single = arm.family in _SINGLE or arm.family in (EQUAL_MICRO, EQUAL_UPDATES)
            kind = (arm.family, None, None) if single else (arm.family, arm.mode, arm.reduction)
            color = _KIND_COLORS.get(kind) or next(spares)
            marker = markers[arm.training]
            while (color, marker) in taken:
                free = [m for m in MARKERS if (color, m) not in taken]
                if free:
                    marker = free[0]
                else:
                    color = next(spares)
            taken.add((color, marker))
            styles[arm] = Style(color, marker)
        return cls(styles)

    def __getitem__(self, arm: Arm) -> Style:
        return self._styles[arm]

    def items(self):
        return self._styles.items()
