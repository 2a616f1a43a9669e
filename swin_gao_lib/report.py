"""Read the run records of a suite and turn them into tables and figure data.

A suite is a folder of runs, ``outputs/<suite>/<run>/``; a run counts only
when its ``metrics.json`` exists (written last, on success). The tidy tables
built here are what the figures in :mod:`plots` draw, so tests can check the
data behind a figure instead of its pixels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from swin_gao_lib.errors import InputError
from swin_gao_lib.records import atomic_write_text

DATASET_TITLES = {"cifar10": "CIFAR-10", "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST"}


@dataclass
class Run:
    """One complete run's records."""

    name: str
    path: Path
    config: dict[str, Any]
    metrics: dict[str, Any]
    history: pd.DataFrame

    @property
    def dataset(self) -> str:
        return self.config["dataset"]

    @property
    def dataset_title(self) -> str:
        return DATASET_TITLES.get(self.dataset, self.dataset)

    @property
    def variant(self) -> str:
        """``baseline`` or a label saying how accumulation was done."""
        c = self.config
        if c["accumulation_steps"] == 1:
            return "baseline"
        mode = "in-step" if c["accumulation_mode"] == "in_step" else "Keras optimizer"
        return f"GAO N={c['accumulation_steps']} ({mode}, {c['reduction']})"


@dataclass
class Suite:
    """The complete runs of a suite, and the folders that hold no complete run."""

    path: Path
    runs: list[Run]
    incomplete: list[Path] = field(default_factory=list)


def load_suite(path: str | Path) -> Suite:
    """Load every complete run under ``path`` (one level of run folders)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such suite folder; run `swin-gao run-all params/<suite>` first")
    runs, incomplete = [], []
    for run_dir in sorted(p for p in path.iterdir() if p.is_dir() and p.name != "report"):
        metrics_file = run_dir / "metrics.json"
        if not metrics_file.is_file():
            incomplete.append(run_dir)
            continue
        runs.append(Run(
            name=run_dir.name, path=run_dir,
            config=yaml.safe_load((run_dir / "config.yaml").read_text()),
            metrics=json.loads(metrics_file.read_text()),
            history=pd.read_csv(run_dir / "history.csv"),
        ))
    if not runs:
        raise InputError(f"{path}: holds no complete run (a run is complete once its metrics.json "
                         "is written)")
    return Suite(path, runs, incomplete)


def summary_table(suite: Suite) -> pd.DataFrame:
    """One row per run: accuracy, time, throughput, memory, updates."""
    rows = []
    for r in suite.runs:
        m, c = r.metrics, r.config
        rows.append({
            "run": r.name, "dataset": r.dataset_title,
            "variant": r.variant, "batch": c["batch_size"],
            "micro-batch": m["micro_batch_size"], "N": c["accumulation_steps"],
            "reduction": c["reduction"], "epochs": m["epochs_completed"],
            "test accuracy": m["test_accuracy"],
            "final train accuracy": m["final_train_accuracy"],
            "final val accuracy": m["final_val_accuracy"],
            "time/epoch (s)": m["train_time_per_epoch_s"],
            "total time (s)": m["total_time_s"],
            "images/s": m["images_per_s"],
            "peak memory (MiB)": m["peak_memory_mib"],
            "optimizer updates": m["optimizer_updates"],
            "device": m["environment"]["device"],
        })
    return pd.DataFrame(rows)


def epoch_times(suite: Suite) -> pd.DataFrame:
    """Tidy per-epoch training time (steady, compile excluded) of every run."""
    frames = []
    for r in suite.runs:
        frames.append(pd.DataFrame({
            "dataset": r.dataset_title, "variant": r.variant,
            "run": r.name, "epoch": r.history["epoch"],
            "train time (s)": r.history["train_s_steady"],
        }))
    return pd.concat(frames, ignore_index=True)


def accuracy_curves(suite: Suite) -> pd.DataFrame:
    """Tidy accuracy per epoch: train and validation, for every run."""
    frames = []
    for r in suite.runs:
        for col, split in (("accuracy", "train"), ("val_accuracy", "validation")):
            if col in r.history and r.history[col].notna().any():
                frames.append(pd.DataFrame({
                    "dataset": r.dataset_title, "variant": r.variant,
                    "run": r.name, "epoch": r.history["epoch"], "split": split,
                    "accuracy": r.history[col],
                }))
    return pd.concat(frames, ignore_index=True)


def write_table(table: pd.DataFrame, stem: str | Path) -> list[Path]:
    """Write ``stem.csv`` and ``stem.md`` atomically."""
    stem = Path(stem)
    csv_path = atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
    md_path = atomic_write_text(stem.with_suffix(".md"),
                                table.to_markdown(index=False, floatfmt=".4g") + "\n")
    return [csv_path, md_path]


@dataclass
class Report:
    """What :func:`build_report` made: the tables, the figure data, the files."""

    suite: Suite
    table: pd.DataFrame
    times: pd.DataFrame
    curves: pd.DataFrame
    figures: dict[str, Any]
    files: list[Path]


def build_report(suite_dir: str | Path, out_dir: str | Path | None = None) -> Report:
    """Load a suite, draw Figs. 3–6 equivalents and the summary table, save them.

    Files go to ``<suite_dir>/report/`` unless ``out_dir`` is given: figures as
    PNG and SVG, tables as CSV and Markdown.
    """
    from swin_gao_lib import plots

    suite = load_suite(suite_dir)
    out = Path(out_dir) if out_dir is not None else suite.path / "report"
    table, times, curves = summary_table(suite), epoch_times(suite), accuracy_curves(suite)
    tests = {r.name: r.metrics["test_accuracy"] for r in suite.runs}
    figures = {
        "training_time": plots.training_time(times),
        "accuracy_curves": plots.accuracy_curves(curves, tests),
    }
    files = write_table(table, out / "summary")
    for name, fig in figures.items():
        files += plots.save(fig, out / name)
    return Report(suite, table, times, curves, figures, files)
