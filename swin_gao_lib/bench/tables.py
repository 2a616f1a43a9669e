"""A benchmark's summary as a Markdown table and a figure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from swin_gao_lib.bench.specs import VARIANTS
from swin_gao_lib.bench.summary import TREND_LIMIT


def _fmt(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The summary as a Markdown table (times in ms per sample), then the cross-backend ratios."""
    head = ("| backend | model | B | N | micro | variant | XLA | precision | ms/sample (IQR) "
            "| between processes | trend | images/s | peak MiB | +MiB over idle "
            "| time vs plain@micro | time vs plain@B | mem vs plain@micro | mem vs plain@B |\n"
            "|---|---|---:|---:|---:|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|\n")
    lines = []
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows = sorted((r for r in report["summary"] if r["data"] == "pipeline"
                   and r.get("level", "step") == "step"),
                  key=lambda r: (r["backend"], r["model"], r["jit"], r["precision"], r["n"],
                                 order[r["variant"]]))
    for r in rows:
        xla = "on" if r["jit"] or r["backend"] == "jax" else "off"
        lead = (f"| {r['backend']} | {r['model']} | {r['batch']} | {r['n']} | {r['micro_batch']} | "
                f"{r['variant']} | {xla} | {r['precision']} |")
        if "error" in r:
            lines.append(f"{lead} failed: {r['error'][:60]} |")
            continue
        trend_text = ", ".join(f"{t:.2f}" for t in r["step_time_trend"]) or "–"
        lines.append(
            f"{lead} {r['s_per_sample'] * 1e3:.2f} ({r['s_per_sample_q25'] * 1e3:.2f}–"
            f"{r['s_per_sample_q75'] * 1e3:.2f}) | ±{r['between_process_spread'] * 50:.1f}% "
            f"({r['repeats']}) | {trend_text}{' ⚠' if r['trend_flagged'] else ''} | "
            f"{r['images_per_s']:.0f} | {r['peak_memory_mib']:.0f} | "
            f"{_fmt(r.get('peak_memory_increase_mib'), 0)} | {_fmt(r.get('time_vs_plain_micro'))} | "
            f"{_fmt(r.get('time_vs_plain_full'))} | {_fmt(r.get('memory_vs_plain_micro'))} | "
            f"{_fmt(r.get('memory_vs_plain_full'))} |")
    text = (head + "\n".join(lines) + "\n") if lines else ""
    cross = [r for r in rows if r["backend"] == "jax" and ("time_jax_vs_tf_no_xla" in r
                                                           or "time_jax_vs_tf_xla" in r)]
    if cross:
        text += ("\nJAX ÷ TensorFlow, same variant (time per sample; peak memory):\n\n"
                 "| model | B | N | variant | precision | time ÷ TF (XLA off) | time ÷ TF (XLA on) "
                 "| memory ÷ TF (XLA off) | memory ÷ TF (XLA on) |\n"
                 "|---|---:|---:|---|---|---:|---:|---:|---:|\n")
        text += "\n".join(
            f"| {r['model']} | {r['batch']} | {r['n']} | {r['variant']} | {r['precision']} | "
            f"{_fmt(r.get('time_jax_vs_tf_no_xla'))} | {_fmt(r.get('time_jax_vs_tf_xla'))} | "
            f"{_fmt(r.get('memory_jax_vs_tf_no_xla'))} | {_fmt(r.get('memory_jax_vs_tf_xla'))} |"
            for r in cross) + "\n"
    checks = [r for r in report["summary"] if "pipeline_overhead" in r]
    text += "".join(f"\nInput pipeline ({r['backend']}, {r['model']}, B={r['batch']}): the "
                    f"pipeline adds {r['pipeline_overhead'] * 100:+.1f}% time per sample over "
                    "in-memory arrays." for r in checks)
    kinds = sorted({f"{r['backend']}: {r['peak_memory_kind']}" for r in report["summary"]
                    if r.get("peak_memory_kind")})
    if rows:
        text += ("\n\nTimes are per optimizer update of B samples (optimizer mode: N "
                 "micro-steps including the apply), per sample; 'between processes' is ±half "
                 "the range of the per-process medians (processes); 'trend' is each process's "
                 f"last-third over first-third step time (⚠: beyond ±{TREND_LIMIT:.0%}).")
    text += fit_table(report)
    text += "\n\nMemory: " + "; ".join(kinds) + ".\n"
    return text


def fit_table(report: dict[str, Any]) -> str:
    """The fit-level rows: what ``train()`` delivers, records and validation included."""
    order = {v: i for i, v in enumerate(VARIANTS)}
    rows = sorted((r for r in report["summary"] if r.get("level") == "fit"),
                  key=lambda r: (r["backend"], r["pipeline"], r["model"], r["precision"],
                                 r["seeds"], r["n"], order[r["variant"]]))
    if not rows:
        return ""
    lines = ["\n\nFit level: the kit's `train()` with validation, history, lr.csv and "
             "checkpoints, epochs after the first (compile) timed from checkpoint to "
             "checkpoint; images/s of all seeds together:\n",
             "| backend | pipeline | model | B | N | variant | precision | seeds | images/s "
             "(epochs' median) | between processes | train loop images/s | compile s | peak MiB "
             "| time vs plain@B | mem vs plain@B | device ÷ host time | x one seed |",
             "|---|---|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lead = (f"| {r['backend']} | {r['pipeline']} | {r['model']} | {r['batch']} | {r['n']} | "
                f"{r['variant']} | {r['precision']} | {r['seeds']} |")
        if "error" in r:
            lines.append(f"{lead} failed: {r['error'][:60]} |")
            continue
        lines.append(
            f"{lead} {r['images_per_s']:,.0f} | ±{r['between_process_spread'] * 50:.1f}% "
            f"({r['repeats']}) | {r['train_images_per_s']:,.0f} | {r['compile_s']:.1f} | "
            f"{r['peak_memory_mib']:.0f} | {_fmt(r.get('time_vs_plain_full'))} | "
            f"{_fmt(r.get('memory_vs_plain_full'))} | {_fmt(r.get('time_device_vs_host'))} | "
            f"{_fmt(r.get('throughput_vs_one_seed'))} |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], stem: Path) -> list[Path]:
    """Time per sample and peak memory vs N, one line per variant."""
    import pandas as pd
    from matplotlib.figure import Figure

    from swin_gao_lib.analysis.plots import save

    df = pd.DataFrame([{"level": "step", "pipeline": "host", "seeds": 1, **r}
                       for r in report["summary"] if "s_per_sample" in r
                       and r["data"] == "pipeline"])
    if df.empty:
        return []
    groups = list(df.groupby(["backend", "model", "jit", "precision", "level", "pipeline",
                              "seeds"]))
    fig = Figure(figsize=(11, 3.8 * len(groups)))
    axes = fig.subplots(len(groups), 2, squeeze=False)
    for (key, sub), (t_ax, m_ax) in zip(groups, axes):
        backend, model, jit, precision, level, pipeline, seeds = key
        full = sub[sub["variant"] == "plain_full"]
        for variant in VARIANTS:
            v = sub[sub["variant"] == variant].sort_values("n")
            if variant == "plain_full":  # one value: draw it across N
                v = pd.concat([full.assign(n=n) for n in sorted(set(sub["n"]))])
            if v.empty:
                continue
            style = "--" if variant == "plain_full" else "-"
            t_ax.errorbar(v["n"], v["s_per_sample"] * 1e3, fmt="o" + style, capsize=3, label=variant,
                          yerr=[(v["s_per_sample"] - v["s_per_sample_q25"]) * 1e3,
                                (v["s_per_sample_q75"] - v["s_per_sample"]) * 1e3])
            m_ax.plot(v["n"], v["peak_memory_mib"], "o" + style, label=variant)
        title = (f"{backend}, {model} model, B={int(sub['batch'].iloc[0])}, XLA "
                 f"{'on' if jit or backend == 'jax' else 'off'}, {precision}"
                 + ("" if level == "step" else f", fit level, {pipeline}, {seeds} seed(s)"))
        for ax, ylabel in ((t_ax, "time per sample (ms), median and IQR"), (m_ax, "peak memory (MiB)")):
            ax.set_xscale("log", base=2)
            ax.set_xticks(sorted(set(sub["n"])), [str(n) for n in sorted(set(sub["n"]))])
            ax.set_xlabel("N (micro-batches per update)")
            ax.set_ylabel(ylabel)
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Cost of gradient accumulation on {report['device']}", y=1.0)
    fig.tight_layout()
    return save(fig, stem)
