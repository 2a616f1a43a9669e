"""Aggregating a benchmark's repeats: medians, spreads, trends and the ratios between variants."""

from __future__ import annotations

import statistics
from dataclasses import asdict
from typing import Any

from swin_gao_lib.bench.specs import Spec


def _quantile(values, q):
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


#: A worker whose step times drift more than this between the first and last third of its
#: measured updates is flagged: its warm-up was too short, or the machine was not quiet.
TREND_LIMIT = 0.10


def trend(times: list[float]) -> float | None:
    """Median of the last third of ``times`` over the median of the first third (None if < 3)."""
    k = len(times) // 3
    if k < 1:
        return None
    return statistics.median(times[-k:]) / statistics.median(times[:k])


def _row_key(row: dict[str, Any], variant: str, n: int, backend: str | None = None,
             jit: bool | None = None, pipeline: str | None = None,
             seeds: int | None = None) -> str:
    """The key of the row like ``row`` but for another variant, N, backend, XLA, pipeline, seeds."""
    spec = Spec(model=row["model"], batch=row["batch"], n=n, variant=variant,
                jit=row["jit"] if jit is None else jit, precision=row["precision"],
                data=row["data"], backend=backend or row["backend"],
                level=row.get("level", "step"), pipeline=pipeline or row.get("pipeline", "host"),
                seeds=seeds or row.get("seeds", 1))
    return spec.key


def summarise(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Aggregate the repeats of each spec and add the ratios (within and across backends)."""
    by_key: dict[str, list[dict]] = {}
    for r in results:
        by_key.setdefault(r["key"], []).append(r)
    rows = {}
    for key, reps in by_key.items():
        ok = [r for r in reps if "error" not in r]
        spec = {**asdict(Spec("", 1, 1, "")), **reps[0]["spec"]}
        row = {"key": key, **{k: spec[k] for k in ("backend", "model", "batch", "n", "variant",
                                                    "jit", "precision", "data", "level",
                                                    "pipeline", "seeds")},
               "micro_batch": spec["batch"] // spec["n"], "repeats": len(ok)}
        if not ok:
            row["error"] = reps[0]["error"]
            rows[key] = row
            continue
        per_sample = [t / r["step_samples"] for r in ok for t in r["step_times_s"]]
        per_process = [statistics.median(r["step_times_s"]) / r["step_samples"] for r in ok]
        trends = [trend(r["step_times_s"]) for r in ok]
        trends = [t for t in trends if t is not None]
        med = statistics.median(per_sample)
        increases = [r.get("peak_memory_increase_mib") for r in ok]
        row.update({
            "s_per_sample": med,
            "s_per_sample_q25": _quantile(per_sample, 0.25),
            "s_per_sample_q75": _quantile(per_sample, 0.75),
            "s_per_sample_process_median": statistics.median(per_process),
            "between_process_spread": (max(per_process) - min(per_process))
            / statistics.median(per_process),
            "step_time_trend": [round(t, 3) for t in trends],
            "trend_flagged": any(abs(t - 1) > TREND_LIMIT for t in trends),
            "images_per_s": 1.0 / med,
            "s_per_update": med * spec["batch"],
            "peak_memory_mib": statistics.median(r["peak_memory_mib"] for r in ok),
            "peak_memory_range_mib": [min(r["peak_memory_mib"] for r in ok),
                                      max(r["peak_memory_mib"] for r in ok)],
            "peak_memory_increase_mib": (statistics.median(increases)
                                         if None not in increases else None),
            "peak_memory_kind": ok[0].get("peak_memory_kind"),
        })
        if spec.get("level") == "fit":  # the train loop alone, and the compile, from the records
            row["train_images_per_s"] = statistics.median(r["train_images_per_s"] for r in ok)
            row["compile_s"] = statistics.median(r["compile_s"] for r in ok)
            row["test_accuracy"] = [a for r in ok for a in r["test_accuracy"]]
        rows[key] = row

    def ratio(row, base, field):
        if base and base.get(field) and row.get(field) is not None:
            return row[field] / base[field]
        return None

    for row in rows.values():
        if "s_per_sample" not in row or row["data"] == "tensors":
            continue
        full = rows.get(_row_key(row, "plain_full", 1))
        micro = row if row["variant"] == "plain_micro" else rows.get(
            _row_key(row, "plain_micro", row["n"]))
        if row["n"] == 1:
            micro = full
        for name, base in (("vs_plain_micro", micro), ("vs_plain_full", full)):
            if base and "s_per_sample" in base:
                row[f"time_{name}"] = ratio(row, base, "s_per_sample")
                row[f"memory_{name}"] = ratio(row, base, "peak_memory_mib")
                row[f"memory_increase_{name}"] = ratio(row, base, "peak_memory_increase_mib")
        if row["backend"] == "jax" and row.get("pipeline", "host") == "host":
            # the same variant on TensorFlow, XLA off and on
            for jit in (False, True):
                tf_row = rows.get(_row_key(row, row["variant"], row["n"], "tensorflow", jit))
                if tf_row and "s_per_sample" in tf_row:
                    tag = "xla" if jit else "no_xla"
                    row[f"time_jax_vs_tf_{tag}"] = ratio(row, tf_row, "s_per_sample")
                    row[f"memory_jax_vs_tf_{tag}"] = ratio(row, tf_row, "peak_memory_mib")
    for row in rows.values():  # fit level: the device against the host, S seeds against one
        if row.get("level") != "fit" or "s_per_sample" not in row:
            continue
        if row["pipeline"] == "device":
            host = rows.get(_row_key(row, row["variant"], row["n"], pipeline="host", seeds=1))
            if host and "s_per_sample" in host:
                row["time_device_vs_host"] = ratio(row, host, "s_per_sample")
        if row["seeds"] > 1:
            one = rows.get(_row_key(row, row["variant"], row["n"], seeds=1))
            if one and "s_per_sample" in one:
                row["throughput_vs_one_seed"] = one["s_per_sample"] / row["s_per_sample"]
                row["memory_vs_one_seed"] = ratio(row, one, "peak_memory_mib")
    for row in rows.values():  # input pipeline overhead
        if row["data"] == "tensors" and "s_per_sample" in row:
            pipe = rows.get(row["key"].replace("+tensors", ""))
            if pipe and "s_per_sample" in pipe:
                row["pipeline_overhead"] = pipe["s_per_sample"] / row["s_per_sample"] - 1.0
    return list(rows.values())
