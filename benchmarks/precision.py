"""Mixed precision's effect on accuracy: float32 against mixed_bfloat16, paired by seed.

``python benchmarks/precision.py SUITE`` reads a suite of runs that differ only in
``precision`` (``benchmarks/precision/``, run with ``swin-gao run-all ...
--executor side-by-side``) and writes ``SUITE/precision.md``: per seed the test
and validation accuracy in each precision, then per metric the paired
difference (bfloat16 - float32) with its 95% interval, p-value and the
smallest difference the seeds could have detected (80% power), and the
training throughput of each.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from swin_gao_lib.analysis.stats import compare
    from swin_gao_lib.records import load_suite

    suite = load_suite(argv[0])
    by = {}
    for run in suite.runs:
        by.setdefault(run.config["precision"], {})[run.metrics["seed"]] = run
    f32, bf16 = by.get("float32", {}), by.get("mixed_bfloat16", {})
    lines = [f"# float32 vs mixed_bfloat16 ({argv[0]})\n",
             "| seed | test acc float32 (%) | test acc bfloat16 (%) | val acc float32 (%) "
             "| val acc bfloat16 (%) |", "|---:|---:|---:|---:|---:|"]
    for seed in sorted(set(f32) & set(bf16)):
        a, b = f32[seed].metrics, bf16[seed].metrics
        lines.append(f"| {seed} | {100 * a['test_accuracy']:.2f} | {100 * b['test_accuracy']:.2f} "
                     f"| {100 * a['final_val_accuracy']:.2f} | "
                     f"{100 * b['final_val_accuracy']:.2f} |")
    lines += ["", "| metric (bfloat16 - float32) | difference | 95% CI | p | detectable at 80% "
              "power |", "|---|---:|---|---:|---:|"]
    for key, scale in (("test_accuracy", 100), ("final_val_accuracy", 100), ("test_loss", 1)):
        d = compare({s: r.metrics[key] * scale for s, r in bf16.items()},
                    {s: r.metrics[key] * scale for s, r in f32.items()})
        unit = " pp" if scale == 100 else ""
        lines.append(f"| {key} | {d.estimate:+.3f}{unit} | [{d.ci_low:+.3f}, {d.ci_high:+.3f}] "
                     f"| {d.p_value:.3f} | {d.minimum_detectable_effect():.3f}{unit} |")
    for name, runs in (("float32", f32), ("mixed_bfloat16", bf16)):
        rates = [r.metrics["images_per_s"] for r in runs.values()]
        lines.append(f"\n{name}: {len(runs)} runs side by side, {statistics.median(rates):.0f} "
                     f"training images/s per run ({runs and next(iter(runs.values())).metrics['environment']['device']})")
    text = "\n".join(lines) + "\n"
    Path(argv[0], "precision.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
