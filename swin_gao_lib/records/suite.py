"""A suite: the folder of run folders, read back as complete runs, failures and references."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swin_gao_lib.errors import InputError
from swin_gao_lib.records.layout import (COMPLETE_MARKER, CONFIG, FAILURE, LINEAR_REFERENCE,
                                         REPORT_DIR)
from swin_gao_lib.records.folder import RunFolder
from swin_gao_lib.records.run import Run


@dataclass
class Suite:
    """The complete runs of a suite, and the folders that hold no complete run.

    ``failed``: each incomplete folder's ``failure.json`` by folder name;
    ``references``: each reference folder's ``linear.json`` (with ``name``).
    """

    path: Path
    runs: list[Run]
    incomplete: list[Path] = field(default_factory=list)
    failed: dict[str, dict[str, Any]] = field(default_factory=dict)
    references: list[dict[str, Any]] = field(default_factory=list)


def load_suite(path: str | Path) -> Suite:
    """Load every complete run under ``path`` (one level of run folders)."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{path}: no such suite folder; run `swin-gao run-all params/<suite>` first")
    runs, incomplete, failed, references = [], [], {}, []
    for run_dir in sorted(p for p in path.iterdir() if p.is_dir() and p.name != REPORT_DIR):
        reference = run_dir / LINEAR_REFERENCE
        if reference.is_file() and not (run_dir / CONFIG).exists():
            try:
                references.append({**json.loads(reference.read_text(encoding="utf-8")),
                                   "name": run_dir.name})
            except ValueError:
                raise InputError(f"{reference}: is not valid JSON; delete it and run "
                                 "`swin-gao linear` again") from None
            continue
        folder = RunFolder(run_dir)
        if not folder.complete:
            incomplete.append(run_dir)
            failure = run_dir / FAILURE
            if failure.is_file():
                try:
                    failed[run_dir.name] = json.loads(failure.read_text(encoding="utf-8"))
                except ValueError:
                    failed[run_dir.name] = {"error": f"{failure} is unreadable"}
            continue
        runs.append(folder.read())
    if not runs:
        raise InputError(f"{path}: holds no complete run (a run is complete once its "
                         f"{COMPLETE_MARKER} is written)")
    return Suite(path, runs, incomplete, failed, references)
