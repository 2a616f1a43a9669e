"""Batch runs: execute ``notebooks/train.ipynb`` once per run of a suite, then the report.

One driver holds a suite at a time (:mod:`swin_gao_lib.runs.suite_lock`).
Planning (:func:`plan_suite`, :mod:`swin_gao_lib.runs.plan`) resolves every run
of every params file once and checks every run's data and output folder, all
problems reported at once, before the first kernel starts; it imports no
TensorFlow. The progress bar and its time left follow each run's epochs
(:mod:`swin_gao_lib.runs.progress`). Each run then
executes through papermill's Python API in its own kernel, handed its resolved
config as the YAML text of its ``config.yaml``, so the notebook loads it once
and never re-reads the params file. The executed notebook is saved beside that
run's records (``<output>/<run>/train.ipynb``), so a failure can be read in
place. A failing configuration does not stop the others. A complete run
(:attr:`swin_gao_lib.records.RunFolder.complete`) is skipped unless ``force``;
an unfinished one (killed, kernel died) resumes from its last finished epoch.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from swin_gao_lib.config import to_yaml
from swin_gao_lib.config.design import write_design
from swin_gao_lib.records import REPORT_DIR, RunFolder
from swin_gao_lib.runs import scratch
from swin_gao_lib.runs.execute import error_text, execute_notebook, execute_report, find_notebook
from swin_gao_lib.runs.plan import Plan, SuiteProblems, plan_suite, suite_inputs
from swin_gao_lib.runs.progress import SuiteProgress
from swin_gao_lib.runs.suite_lock import SuiteLock

if TYPE_CHECKING:
    from swin_gao_lib.runs.dask_runner import DaskOptions

__all__ = ["Failure", "Plan", "SuiteProblems", "SuiteResult", "plan_suite", "run_all"]


@dataclass
class Failure:
    params: Path
    run: str
    error: str
    notebook: Path


@dataclass
class SuiteResult:
    """What :func:`run_all` did; ``ran`` and ``skipped`` hold run folders."""

    ran: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: list[Failure] = field(default_factory=list)
    report_notebook: Path | None = None
    report_html: Path | None = None
    report_error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and self.report_error is None


def _run_on_dask(plans: list[Plan], train_nb: Path, result: SuiteResult, *, force: bool,
                 options, kernel_name: str | None, progress: SuiteProgress,
                 lock: SuiteLock, token: str) -> None:
    from swin_gao_lib.runs.dask_runner import run_on_dask

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


def _diverged(plan: Plan) -> Failure:
    """A run that diverged before: listed again, not re-run (it would diverge again)."""
    folder = RunFolder(plan.run_dir)
    where = folder.failure() or {}
    return Failure(plan.params, folder.name,
                   f"diverged earlier (loss {where.get('loss')} at epoch {where.get('epoch')}, "
                   f"step {where.get('step')}); not re-run: change its config, or --force",
                   folder.notebook)


def _run_sequentially(plans: list[Plan], train_nb: Path, result: SuiteResult, *, force: bool,
                      kernel_name: str | None, progress: SuiteProgress, scratch_dir) -> None:
    """The default executor: one run after another, each in its own kernel.

    ``scratch_dir()`` gives the driver's scratch folder (its kernels' connection files).
    """
    for plan in plans:
        params, folder = plan.params, RunFolder(plan.run_dir)
        run_dir = folder.path
        if folder.complete and not force:
            result.skipped.append(run_dir)
            progress.skip(plan)
            continue
        if folder.diverged and not force:
            result.failed.append(_diverged(plan))
            progress.skip(plan)
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        notebook = folder.notebook
        progress.start(plan)
        try:
            execute_notebook(
                train_nb, notebook, cwd=train_nb.parent, kernel_name=kernel_name,
                scratch=scratch_dir(),
                parameters={"config_yaml": to_yaml(plan.config),
                            # an unfinished run resumes from its last finished epoch;
                            # complete ones were skipped above unless force
                            "overwrite": force})
            result.ran.append(run_dir)
            progress.finish(plan, ok=True)
        except Exception as exc:  # papermill re-raises the notebook's error
            # listed once, at the end (the CLI prints each with its notebook)
            result.failed.append(Failure(params, run_dir.name, error_text(exc), notebook))
            progress.finish(plan, ok=False)


def run_all(params_dir: str | Path, output: str | Path | None = None, *, force: bool = False,
            notebooks_dir: str | Path | None = None, kernel_name: str | None = None,
            report: bool = True, progress: bool = True, dask: "DaskOptions | None" = None,
            cpus_per_run: int | None = None, wait: bool = False) -> SuiteResult:
    """Run every run of ``params_dir`` through the train notebook, then the report.

    ``params_dir`` is a folder of ``*.yaml`` files or one file; a file with a
    ``grid:``/``seeds:`` block gives one run per point (:mod:`swin_gao_lib.config.params`).
    One driver at a time holds the suite (:mod:`swin_gao_lib.runs.suite_lock`): a
    second one raises :class:`swin_gao_lib.runs.suite_lock.SuiteBusy` naming the
    first, or waits for it (``wait``). Every run is validated and its input
    checked before the first one starts (:func:`plan_suite`). Runs go one after
    another, or on Dask when ``dask`` options are given
    (:mod:`swin_gao_lib.runs.dask_runner`). ``cpus_per_run`` holds each sequential
    run's backend to that many threads (the Dask executor's option of that name).
    """
    files, output, suite_name = suite_inputs(params_dir, output)
    train_nb = find_notebook("train.ipynb", notebooks_dir)
    report_nb = find_notebook("report.ipynb", notebooks_dir)
    lock = SuiteLock(output, executor="sequential" if dask is None else "dask")
    with lock.hold(wait=wait, log=lambda line: print(line, file=sys.stderr, flush=True)):
        # Absolute, because each notebook runs in the notebooks' folder.
        plans = plan_suite(files, output.resolve(), force=force,
                           check_data=dask is None or dask.scheduler is None)
        write_design(files, output, force=force)  # the study's declared design, before any run
        scratch.clean_dead()  # scratch of drivers of this machine that were killed
        result = SuiteResult()
        bar = SuiteProgress(plans, f"run-all {suite_name}", enabled=progress)
        token = scratch.new_token()  # this start's scratch: its kernels' and Dask's files
        try:
            _execute_suite(plans, train_nb, report_nb, output, result, bar, lock, force=force,
                           kernel_name=kernel_name, dask=dask, cpus_per_run=cpus_per_run,
                           report=report, token=token)
        finally:
            bar.close()
            scratch.remove(token)
    return result


def _execute_suite(plans, train_nb, report_nb, output, result, bar, lock, *, force, kernel_name,
                   dask, cpus_per_run, report, token) -> None:
    import os

    from swin_gao_lib.runtime.machine import quiet_tensorflow

    quiet_tensorflow()  # the kernels inherit it: no start-up noise between progress lines
    driver = scratch.this_driver()

    def scratch_dir() -> Path:  # made again after Dask's clean-up took it
        return scratch.mark(token, driver)

    if dask is not None:
        _run_on_dask(plans, train_nb, result, force=force, options=dask,
                     kernel_name=kernel_name, progress=bar, lock=lock, token=token)
    else:
        saved_env = dict(os.environ)
        if cpus_per_run is not None:
            from swin_gao_lib.runtime.machine import thread_environment

            os.environ.update(thread_environment(cpus_per_run))  # the kernels inherit it
        try:
            _run_sequentially(plans, train_nb, result, force=force, kernel_name=kernel_name,
                              progress=bar, scratch_dir=scratch_dir)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
    if report:
        bar.report_start()
        report_dir = output / REPORT_DIR
        report_dir.mkdir(parents=True, exist_ok=True)
        result.report_notebook = report_dir / "report.ipynb"
        try:
            # one offline page beside the figures and tables: <suite>/report/report.html
            result.report_html = execute_report(report_nb, result.report_notebook,
                                                output.resolve(), kernel_name=kernel_name,
                                                scratch=scratch_dir())
        except Exception as exc:
            result.report_error = error_text(exc)
