"""The GPU run's summary: what ran, the throughput table with its targets, the paper's regime.

``python benchmarks/gpu/summarize.py WORK`` reads what ``benchmarks/gpu/run.sh`` left
in ``WORK`` (every ``bench-*/bench.json``, ``equivalence.json``, ``seeds.json``, the
paper-regime records in ``paper-regime/`` and ``stages.txt``) and writes
``WORK/SUMMARY.md`` and ``WORK/bench-all/bench.{json,md}``:

* the benchmark's stages merged into one table (fit level and step level) with
  the speed targets judged on it (only on an H100 or H200);
* the paper's regime: runs, test accuracy per configuration (mean and standard
  deviation over seeds), images trained, the stage's wall time against the
  5-minute target;
* the full ``params/study/`` estimated from these figures, with the arithmetic.

Each part says what it is missing instead of failing: a run stopped by its time
budget still gets its summary.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REGIME_TARGET_S = 300
STUDY_TARGET_S = 3600


def _bench(work: Path) -> tuple[str, dict | None]:
    from bench_targets import judge, markdown  # tools/, put on sys.path by main()
    from swin_gao_lib.bench.summary import summarise
    from swin_gao_lib.bench.tables import markdown_table
    from swin_gao_lib.files import write_json

    reports = [json.loads(p.read_text()) for p in sorted(work.glob("bench-*/bench.json"))
               if p.parent.name != "bench-all"]
    if not reports:
        return "No benchmark stage finished (see stages.txt).\n", None
    raw = [r for rep in reports for r in rep["raw"]]
    device = next((rep["device"] for rep in reports if rep.get("device")), None)
    report = {"method": reports[0]["method"], "repeats": max(r["repeats"] for r in reports),
              "device": device, "cpu_count": reports[0].get("cpu_count"),
              "versions": {k: v for rep in reports for k, v in rep["versions"].items()},
              "stages": [p.parent.name for p in sorted(work.glob("bench-*/bench.json"))],
              "summary": summarise(raw), "raw": raw}
    report["targets"] = judge(report["summary"], device)
    (work / "bench-all").mkdir(exist_ok=True)
    write_json(work / "bench-all" / "bench.json", report)
    table = markdown_table(report) + "\nTargets:\n\n" + markdown(report["targets"])
    (work / "bench-all" / "bench.md").write_text(f"Device: {device}\n\n{table}")
    return table, report


def _regime(work: Path, device: str | None) -> str:
    from swin_gao_lib.records import load_suite

    suite_dir = work / "paper-regime"
    if not suite_dir.is_dir():
        return "The paper's regime did not start (see stages.txt).\n"
    suite = load_suite(suite_dir)
    lines = ["| data set | configuration | runs | test accuracy, mean ± sd (%) | images trained "
             "| compile s (per group) | peak MiB |", "|---|---|---:|---:|---:|---:|---:|"]
    groups: dict[tuple, list] = {}
    for run in suite.runs:
        groups.setdefault((run.dataset_title, run.variant), []).append(run)
    images = 0
    for (title, variant), runs in sorted(groups.items()):
        acc = [100 * r.metrics["test_accuracy"] for r in runs]
        n = sum(r.metrics["samples"]["train"] * r.metrics["epochs_completed"] for r in runs)
        images += n
        sd = statistics.stdev(acc) if len(acc) > 1 else float("nan")
        lines.append(f"| {title} | {variant} | {len(runs)} | {statistics.mean(acc):.1f} ± "
                     f"{sd:.1f} | {n:,} | {runs[0].metrics['compile_s']:.1f} | "
                     f"{runs[0].metrics['peak_memory_mib']:.0f} |")
    stages = (work / "stages.txt").read_text() if (work / "stages.txt").exists() else ""
    wall = re.search(r"end paper-regime: exit (\d+) after (\d+) s", stages)
    text = "\n".join(lines) + "\n\n"
    text += (f"{len(suite.runs)} complete runs, {len(suite.incomplete)} unfinished, "
             f"{len(suite.failed)} failed; {images:,} training images.\n")
    if wall:
        secs = int(wall.group(2))
        on_card = any(c in (device or "") for c in ("H100", "H200"))
        verdict = ("met" if secs <= REGIME_TARGET_S else f"missed by {secs - REGIME_TARGET_S} s") \
            if on_card else f"not judged (set for one H100/H200; measured on {device})"
        text += (f"\nWall time of the stage (planning, compilation, training, validation, "
                 f"records, report): {secs} s, exit {wall.group(1)}; target ≤ "
                 f"{REGIME_TARGET_S} s for all 40 runs: {verdict}; {images / max(secs, 1):,.0f} "
                 "training images per second over the whole stage.\n")
    return text


def _study_estimate(report: dict | None) -> str:
    """The full params/study/ on the full data sets, from the measured fit-level figures."""
    if report is None:
        return "No benchmark figures to estimate from.\n"
    from swin_gao_lib.runs.runner import plan_suite
    from swin_gao_lib.training.groups import group_runs

    rows = {r["key"]: r for r in report["summary"] if "s_per_sample" in r}
    fit = [r for r in rows.values() if r.get("level") == "fit" and r["pipeline"] == "device"
           and r["model"] == "paper" and r["precision"] == "float32" and r["batch"] == 128]
    plain = [r for r in fit if r["variant"] == "plain_full"]
    if not plain:
        return "No fit-level plain B = 128 figure (device, float32) to estimate from.\n"
    best = max(plain, key=lambda r: r["seeds"])
    one = {(r["variant"], r["n"]): r for r in fit if r["seeds"] == 1}
    plans = plan_suite(sorted((ROOT / "params" / "study").glob("*.yaml")), Path("/nonexistent"),
                       check_data=False)
    lines = ["| configuration kind | runs | training images | relative time per image (measured "
             "row) | seconds |", "|---|---:|---:|---|---:|"]
    kinds: dict[str, list] = {}
    for p in plans:
        c = p.config
        if c.accumulation_steps > 1:
            kind = (c.accumulation_mode if c.accumulation_mode == "optimizer" else "in_step",
                    c.accumulation_steps, c.batch_size)
        else:
            kind = ("plain", 1, c.batch_size)
        kinds.setdefault(kind, []).append(p)
    total = 0.0
    per_image = 1 / best["images_per_s"]
    for (variant, n, batch), ps in sorted(kinds.items()):
        images = sum(p.cost for p in ps)
        if variant == "plain" and batch == 128:
            factor, why = 1.0, "plain B = 128 itself"
        else:
            # accumulation at B = 128 is measured as itself; plain training at B = 128 / k as
            # the benchmark's plain_micro at N = k (both per image, against plain B = 128)
            key = (variant, n) if variant != "plain" else ("plain_micro", 128 // batch)
            measured = batch == 128 if variant != "plain" else (batch < 128 and 128 % batch == 0)
            row = one.get(key) if measured else None
            if row and row.get("time_vs_plain_full"):
                factor, why = row["time_vs_plain_full"], f"{key[0]} N={key[1]}, one seed"
            else:
                factor, why = 1.0, "not measured: taken as 1"
        secs = images * per_image * factor
        total += secs
        lines.append(f"| {variant}, N = {n}, B = {batch} | {len(ps)} | {images:,} | "
                     f"{factor:.2f} ({why}) | {secs:,.0f} |")
    groups = len(group_runs(plans, lambda p: p.config))
    compile_s = best.get("compile_s") or 0.0
    total += groups * compile_s
    verdict = "within" if total <= STUDY_TARGET_S else "over"
    return ("\n".join(lines) + "\n\n"
            f"Arithmetic: {sum(p.cost for p in plans):,} training images in {len(plans)} runs "
            f"(epochs x training images of the full data sets); at "
            f"{best['images_per_s']:,.0f} images/s (fit level, plain B = 128, float32, "
            f"{best['seeds']} seed(s) side by side) times each kind's measured time ratio, plus "
            f"{groups} groups x {compile_s:.1f} s of compilation: about {total / 3600:.2f} "
            f"GPU-hours ({verdict} the 1 GPU-hour target). The sample's epochs are 10x shorter "
            "than the full data sets', so per-epoch costs (validation, records) weigh more here: "
            "the estimate leans high.\n")


def main(argv: list[str]) -> int:
    work = Path(argv[0])
    sys.path[:0] = [str(ROOT), str(ROOT / "tools")]
    parts = ["# GPU run (benchmarks/gpu/run.sh)\n\n"]
    env = work / "environment.txt"
    parts.append("```\n" + (env.read_text() if env.exists() else "no environment.txt\n") + "```\n")
    for name, title in (("equivalence.txt", "Equivalence on the device"),
                        ("seeds.txt", "Seeds side by side vs alone, on the device")):
        path = work / name
        parts.append(f"\n## {title}\n\n```\n"
                     + (path.read_text() if path.exists() else "did not run\n") + "```\n")
    sections = [("Throughput (benchmark; targets at the end)", lambda: _bench(work))]
    report = None
    for title, fn in sections:
        try:
            text, report = fn()
        except Exception as exc:  # a summary never fails the run
            text = f"failed: {type(exc).__name__}: {exc}\n"
        parts.append(f"\n## {title}\n\n{text}")
    device = report.get("device") if report else None
    for title, fn in (("The paper's regime (40 runs, seeds side by side)",
                       lambda: _regime(work, device)),
                      ("The full params/study/ estimated from these figures",
                       lambda: _study_estimate(report))):
        try:
            text = fn()
        except Exception as exc:
            text = f"failed: {type(exc).__name__}: {exc}\n"
        parts.append(f"\n## {title}\n\n{text}")
    stages = work / "stages.txt"
    parts.append("\n## Stages\n\n```\n" + (stages.read_text() if stages.exists() else "") + "```\n")
    (work / "SUMMARY.md").write_text("".join(parts))
    print("".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
