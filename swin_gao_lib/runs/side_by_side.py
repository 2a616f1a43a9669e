"""``swin-gao run-all --executor side-by-side``: each configuration's seeds in one program.

The suite is planned exactly as ``run-all`` plans it
(:func:`swin_gao_lib.runs.runner.plan_suite`: every params file, grid point and
seed resolved and checked, every run folder checked, before anything runs);
its runs are then grouped by configuration (:func:`swin_gao_lib.training.groups.group_runs`)
and each group is trained as one program on the JAX device
(:func:`swin_gao_lib.training.side_by_side.train_side_by_side`) in this
process, one group after another. Run folders hold the records a run trained
alone would write, without ``train.ipynb`` (no notebook runs here: this is the
way on machines without Jupyter, e.g. a bare GPU node); the report is
``swin-gao report``'s, written at the end.

Complete runs are skipped (``force`` trains them again), unfinished ones
resume from their checkpoints, diverged ones are listed and not re-run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from swin_gao_lib.config.design import write_design
from swin_gao_lib.config.examples import missing_params_hint
from swin_gao_lib.errors import InputError
from swin_gao_lib.records import REPORT_DIR, RunFolder
from swin_gao_lib.runs.plan import Plan, plan_suite
from swin_gao_lib.runs.suite_lock import SuiteLock
from swin_gao_lib.training.groups import check_group, group_runs


@dataclass
class SideBySideResult:
    """What :func:`run_side_by_side` did: run folders, and ``(run name, error)`` pairs."""

    ran: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)
    report_dir: Path | None = None
    report_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.report_error is None


def params_files(params: str | Path) -> list[Path]:
    """A params file, or the ``*.yaml`` files of a folder (as ``run-all`` reads them)."""
    path = Path(params)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if files:
            return files
        raise InputError(f"{path}: no *.yaml params files found")
    raise InputError(f"{path}: no such params folder or file{missing_params_hint(path)}")


def run_side_by_side(params: str | Path, output: str | Path | None = None, *,
                     force: bool = False, group_size: int | None = None, report: bool = True,
                     verbose: int = 2, log=print, wait: bool = False) -> SideBySideResult:
    """Plan the suite of ``params``, train each configuration's seeds side by side, report.

    Raises:
        InputError: a bad params file, run folder or data source, or runs that
            cannot train side by side (not ``pipeline: device``), before any run.
        SuiteBusy: another ``run-all`` drives the suite (one driver per suite, as
            for the other executors; ``wait`` to start after it).
    """
    files = params_files(params)
    path = Path(params)
    output = Path(output) if output is not None else Path("outputs") / path.stem
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file; give a folder for the suite's runs")
    with SuiteLock(output, executor="side-by-side").hold(wait=wait, log=log):
        return _run(files, output, force=force, group_size=group_size, report=report,
                    verbose=verbose, log=log)


def _run(files: list[Path], output: Path, *, force: bool, group_size: int | None, report: bool,
         verbose: int, log) -> SideBySideResult:
    plans = plan_suite(files, output.resolve(), force=force)
    write_design(files, output, force=force)  # the study's declared design, before any run
    result = SideBySideResult()
    todo: list[Plan] = []
    for plan in plans:
        folder = RunFolder(plan.run_dir)
        if folder.complete and not force:
            result.skipped.append(plan.run_dir)
        elif folder.diverged and not force:
            result.failed.append((folder.name, "diverged earlier; not re-run (change its "
                                  "config, or --force)"))
        else:
            todo.append(plan)
    groups = group_runs(todo, lambda p: p.config, group_size)
    for group in groups:  # every group is checked before the first trains
        try:
            check_group([p.config for p in group])
        except InputError as exc:
            raise type(exc)(f"{group[0].params}: {exc}") from None
    result.groups = [[p.run_dir.name for p in g] for g in groups]
    if groups:
        from swin_gao_lib.runtime.backend import use_backend

        use_backend(groups[0][0].config.backend)  # preflight refuses anything but JAX
        from swin_gao_lib.training.side_by_side import train_side_by_side

        for i, group in enumerate(groups, 1):
            log(f"group {i}/{len(groups)}: {len(group)} run(s) side by side: "
                f"{', '.join(p.run_dir.name for p in group)}")
            outcomes = train_side_by_side([p.config for p in group], overwrite=force,
                                          verbose=verbose, log=log)
            for plan, outcome in zip(group, outcomes):
                if hasattr(outcome, "metrics"):
                    result.ran.append(plan.run_dir)
                else:
                    result.failed.append((plan.run_dir.name, str(outcome)))
    if report:
        from swin_gao_lib.analysis.report import build_report

        result.report_dir = output / REPORT_DIR
        try:
            build_report(output)
        except Exception as exc:  # the runs' records stay; the report can be drawn again
            result.report_error = f"{type(exc).__name__}: {exc}"
    return result
