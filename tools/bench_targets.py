"""The GPU benchmark's speed targets, judged on a benchmark summary (``benchmarks/gpu/summarize.py``).

Each target reads one row (paper-size model, B = 128, JAX, device pipeline,
fit level) and is judged only on the card it was set for (one H100 or H200);
elsewhere it is printed with its distance, "not judged".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

#: The cards the targets were set for.
TARGET_DEVICES = ("H100", "H200")


@dataclass(frozen=True)
class Target:
    """A threshold on one figure of one row of the summary."""

    name: str
    select: dict[str, Any]
    figure: Callable[[dict[str, Any]], float | None]
    at_least: float
    unit: str


_FIT = dict(backend="jax", model="paper", batch=128, level="fit", pipeline="device",
            precision="float32", data="pipeline")

TARGETS = (
    Target("fit-level throughput, plain B = 128, float32, one seed",
           dict(_FIT, variant="plain_full", n=1, seeds=1),
           lambda r: r.get("images_per_s"), 37_000, "images/s"),
    Target("in-step N = 4 (4 x 32) throughput over plain B = 128, fit level",
           dict(_FIT, variant="in_step", n=4, seeds=1),
           lambda r: 1 / r["time_vs_plain_full"] if r.get("time_vs_plain_full") else None,
           0.85, "x"),
    Target("10 seeds side by side, plain B = 128, all seeds together",
           dict(_FIT, variant="plain_full", n=1, seeds=10),
           lambda r: r.get("images_per_s"), 150_000, "images/s"),
)


def judge(summary: list[dict[str, Any]], device: str | None) -> list[dict[str, Any]]:
    """Every target with its measured figure, the ratio to the threshold and the verdict."""
    on_target_card = any(card in (device or "") for card in TARGET_DEVICES)
    out = []
    for t in TARGETS:
        row = next((r for r in summary if all(r.get(k) == v for k, v in t.select.items())
                    and "error" not in r), None)
        value = t.figure(row) if row else None
        entry = {"target": t.name, "at_least": t.at_least, "unit": t.unit, "measured": value}
        if value is None:
            entry["verdict"] = "not measured"
        else:
            entry["ratio"] = value / t.at_least
            met = value >= t.at_least
            if not on_target_card:
                entry["verdict"] = (f"not judged: set for one {' or '.join(TARGET_DEVICES)}, "
                                    f"measured on {device} ({entry['ratio']:.2f} of it)")
            elif met:
                entry["verdict"] = "met"
            else:
                entry["verdict"] = f"missed: {entry['ratio']:.2f} of the target"
        out.append(entry)
    return out


def markdown(judged: list[dict[str, Any]]) -> str:
    """The targets as a Markdown table."""
    def fmt(v: float | None, unit: str) -> str:
        if v is None:
            return "–"
        return f"{v:,.0f} {unit}" if unit != "x" else f"{v:.2f}x"

    lines = ["| target (paper model, B = 128, JAX, device pipeline) | at least "
             "| measured | verdict |", "|---|---:|---:|---|"]
    lines += [f"| {j['target']} | {fmt(j['at_least'], j['unit'])} | "
              f"{fmt(j['measured'], j['unit'])} | {j['verdict']} |" for j in judged]
    return "\n".join(lines) + "\n"
