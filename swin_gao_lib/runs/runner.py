"""Batch runs: ``run-all``, the one suite driver.

One driver holds a suite at a time (:mod:`swin_gao_lib.runs.suite_lock`). It
plans every run first (:mod:`swin_gao_lib.runs.plan`: resolved and checked, no
TensorFlow), writes the study's design, skips complete runs (unless ``force``)
and resumes unfinished ones, then runs them with one of :data:`EXECUTORS`: one
after another, each ``notebooks/train.ipynb`` in its own kernel through
papermill, its executed notebook saved in its run folder; on Dask
(:mod:`swin_gao_lib.runs.dask_runner`); or each configuration's seeds side by
side in one JAX program in this process, without notebooks
(:mod:`swin_gao_lib.training.side_by_side`). A failing run does not stop the
others. Then the report.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from swin_gao_lib.config import to_yaml
from swin_gao_lib.config.design import write_design
from swin_gao_lib.errors import InputError
from swin_gao_lib.records import REPORT_DIR, RunFolder
from swin_gao_lib.runs import scratch
from swin_gao_lib.runs.execute import error_text, execute_notebook, execute_report, find_notebook
from swin_gao_lib.runs.plan import Plan, SuiteProblems, plan_suite, suite_inputs
from swin_gao_lib.runs.progress import SuiteProgress
from swin_gao_lib.runs.suite_lock import SuiteLock

if TYPE_CHECKING:
    from swin_gao_lib.runs.dask_runner import DaskOptions

__all__ = ["EXECUTORS", "Failure", "Plan", "SuiteProblems", "SuiteResult", "plan_suite", "run_all"]


#: The executors ``run-all`` drives a suite with.
EXECUTORS = ("sequential", "dask", "side-by-side")


@dataclass
class Failure:
    params: Path
    run: str
    error: str
    notebook: Path | None = None  # the run's executed notebook (none side by side)


@dataclass
class SuiteResult:
    """What :func:`run_all` did; ``ran`` and ``skipped`` hold run folders."""

    ran: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)  # side by side: each program's runs
    report_dir: Path | None = None
    report_notebook: Path | None = None
    report_html: Path | None = None
    report_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.report_error is None


def to_run(plans: list[Plan], result: SuiteResult, progress: SuiteProgress,
           force: bool) -> list[Plan]:
    """The runs an executor trains: not the complete ones (``result.skipped``), nor those
    that diverged before (listed in ``result.failed``: they would diverge again), unless
    ``force``; an unfinished one is in, and resumes from its checkpoint."""
    todo = []
    for plan in plans:
        folder = RunFolder(plan.run_dir)
        if folder.complete and not force:
            result.skipped.append(plan.run_dir)
            progress.skip(plan)
        elif folder.diverged and not force:
            result.failed.append(_diverged(plan))
            progress.skip(plan)
        else:
            todo.append(plan)
    return todo


def _diverged(plan: Plan) -> Failure:
    """A run that diverged before: listed again, not re-run (it would diverge again)."""
    folder = RunFolder(plan.run_dir)
    where = folder.failure() or {}
    return Failure(plan.params, folder.name,
                   f"diverged earlier (loss {where.get('loss')} at epoch {where.get('epoch')}, "
                   f"step {where.get('step')}); not re-run: change its config, or --force",
                   folder.notebook)


def _run_on_dask(todo: list[Plan], train_nb: Path, result: SuiteResult, *, force: bool,
                 options, kernel_name: str | None, progress: SuiteProgress,
                 lock: SuiteLock, token: str) -> None:
    from swin_gao_lib.runs.dask_runner import run_on_dask

    previous = lock.previous or {}
    dead = [previous["dask_token"]] if previous.get("dask_token") else []
    if not todo and not dead:  # nothing to run, no dead driver's scratch to clear: no cluster
        return
    for plan, error in run_on_dask(todo, train_nb, force=force, options=options,
                                   kernel_name=kernel_name, progress=progress, dead_tokens=dead,
                                   on_token=lambda t: lock.record(dask_token=t), token=token):
        if error is None:
            result.ran.append(plan.run_dir)
        else:
            result.failed.append(Failure(plan.params, plan.run_dir.name, error,
                                         RunFolder(plan.run_dir).notebook))


def _run_sequentially(todo: list[Plan], train_nb: Path, result: SuiteResult, *, force: bool,
                      kernel_name: str | None, progress: SuiteProgress, scratch_dir,
                      cpus_per_run: int | None) -> None:
    """The default executor: one run after another, each in its own kernel (with
    ``cpus_per_run`` backend threads); ``scratch_dir()``: the driver's scratch folder."""
    from unittest import mock

    from swin_gao_lib.runtime.machine import thread_environment

    threads = thread_environment(cpus_per_run) if cpus_per_run is not None else {}
    with mock.patch.dict(os.environ, threads):  # the kernels inherit it
        for plan in todo:
            folder = RunFolder(plan.run_dir)
            folder.path.mkdir(parents=True, exist_ok=True)
            progress.start(plan)
            try:  # an unfinished run resumes; complete ones were skipped unless force
                execute_notebook(train_nb, folder.notebook, cwd=train_nb.parent,
                                 kernel_name=kernel_name, scratch=scratch_dir(),
                                 parameters={"config_yaml": to_yaml(plan.config),
                                             "overwrite": force})
                result.ran.append(folder.path)
                progress.finish(plan, ok=True)
            except Exception as exc:  # papermill re-raises the notebook's error
                result.failed.append(Failure(plan.params, folder.name, error_text(exc),
                                             folder.notebook))
                progress.finish(plan, ok=False)


def run_all(params_dir: str | Path, output: str | Path | None = None, *, force: bool = False,
            executor: str = "sequential", notebooks_dir: str | Path | None = None,
            kernel_name: str | None = None, report: bool = True, progress: bool = True,
            dask: "DaskOptions | None" = None, cpus_per_run: int | None = None,
            group_size: int | None = None, wait: bool = False, verbose: int = 2,
            log=print) -> SuiteResult:
    """Run every run of ``params_dir`` with ``executor`` (:data:`EXECUTORS`), then the report.

    ``params_dir``: a folder of ``*.yaml`` params files, or one. ``wait``: wait for
    another driver of the suite instead of raising ``SuiteBusy``. ``dask``
    options mean the Dask executor; ``cpus_per_run`` holds each sequential run's
    backend to that many threads; ``group_size`` caps the seeds of one program
    side by side, whose runs log with ``log`` at Keras's ``verbose``.

    Raises:
        InputError: bad params, run folders or data, or (side by side) runs that
            cannot train together, before any run starts.
    """
    if executor not in EXECUTORS or (dask is not None and executor not in ("sequential", "dask")):
        raise ValueError(f"executor: {executor!r} with dask options {dask!r}: name one of "
                         f"{', '.join(EXECUTORS)}; dask options go with 'dask' only")
    if dask is not None or executor == "dask":  # the options decide how the Dask runs go
        from swin_gao_lib.runs.dask_runner import DaskOptions

        executor, dask = "dask", dask or DaskOptions()
    files, output, suite_name = suite_inputs(params_dir, output)
    notebooks = executor != "side-by-side"  # side by side runs in this process, no Jupyter
    train_nb = find_notebook("train.ipynb", notebooks_dir) if notebooks else None
    report_nb = find_notebook("report.ipynb", notebooks_dir) if notebooks else None
    lock = SuiteLock(output, executor=executor)
    with lock.hold(wait=wait, log=lambda line: print(line, file=sys.stderr, flush=True)):
        # Absolute, because each notebook runs in the notebooks' folder.
        plans = plan_suite(files, output.resolve(), force=force,
                           check_data=dask is None or dask.scheduler is None)
        write_design(files, output, force=force)  # the study's declared design, before any run
        result = SuiteResult()
        # side by side, the runs log their own lines: a bar would be torn by them
        bar = SuiteProgress(plans, f"run-all {suite_name}", enabled=progress and notebooks)
        todo = to_run(plans, result, bar, force)
        if not notebooks:
            try:
                _run_side_by_side(todo, result, force=force, group_size=group_size,
                                  verbose=verbose, log=log)
            finally:
                bar.close()
            if report:
                _report_alone(output, result)
            return result
        scratch.clean_dead()  # scratch of drivers of this machine that were killed
        token = scratch.new_token()  # this start's scratch: its kernels' and Dask's files
        try:
            _execute_suite(todo, train_nb, report_nb, output, result, bar, lock, force=force,
                           kernel_name=kernel_name, dask=dask, cpus_per_run=cpus_per_run,
                           report=report, token=token)
        finally:
            bar.close()
            scratch.remove(token)
    return result


def _run_side_by_side(todo: list[Plan], result: SuiteResult, *, force: bool,
                      group_size: int | None, verbose: int, log) -> None:
    """Each configuration's seeds as one program on the JAX device, one group after another
    (:func:`swin_gao_lib.training.side_by_side.train_side_by_side`); every group is checked
    before the first trains."""
    from swin_gao_lib.training.groups import check_group, group_runs

    groups = group_runs(todo, lambda p: p.config, group_size)
    for group in groups:
        try:
            check_group([p.config for p in group])
        except InputError as exc:
            raise type(exc)(f"{group[0].params}: {exc}") from None
    result.groups = [[p.run_dir.name for p in g] for g in groups]
    if not groups:
        return
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
                result.failed.append(Failure(plan.params, plan.run_dir.name, str(outcome)))


def _report_alone(output: Path, result: SuiteResult) -> None:
    """The report's figures and tables without its notebook (no Jupyter: side by side)."""
    from swin_gao_lib.analysis.report import build_report

    result.report_dir = output / REPORT_DIR
    try:
        build_report(output)
    except Exception as exc:  # the runs' records stay; the report can be drawn again
        result.report_error = f"{type(exc).__name__}: {exc}"


def _execute_suite(plans, train_nb, report_nb, output, result, bar, lock, *, force, kernel_name,
                   dask, cpus_per_run, report, token) -> None:
    from swin_gao_lib.runtime.machine import quiet_tensorflow

    quiet_tensorflow()  # the kernels inherit it: no start-up noise between progress lines
    driver = scratch.this_driver()

    def scratch_dir() -> Path:  # made again after Dask's clean-up took it
        return scratch.mark(token, driver)

    if dask is not None:
        _run_on_dask(plans, train_nb, result, force=force, options=dask,
                     kernel_name=kernel_name, progress=bar, lock=lock, token=token)
    else:
        _run_sequentially(plans, train_nb, result, force=force, kernel_name=kernel_name,
                          progress=bar, scratch_dir=scratch_dir, cpus_per_run=cpus_per_run)
    if report:
        bar.report_start()
        report_dir = output / REPORT_DIR
        report_dir.mkdir(parents=True, exist_ok=True)
        result.report_dir, result.report_notebook = report_dir, report_dir / "report.ipynb"
        try:  # one offline page beside the figures and tables: <suite>/report/report.html
            result.report_html = execute_report(report_nb, result.report_notebook,
                                                output.resolve(), kernel_name=kernel_name,
                                                scratch=scratch_dir())
        except Exception as exc:
            result.report_error = error_text(exc)
