"""Batch runs: execute ``notebooks/train.ipynb`` once per run of a suite, then the report.

Planning (:func:`plan_suite`) resolves every run of every params file once
(:func:`swin_gao_lib.config.params.resolve`) and imports no TensorFlow. Each run then
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

from swin_gao_lib.config import RunConfig, to_yaml
from swin_gao_lib.data.sources import check_source, expected_train_images
from swin_gao_lib.errors import InputError
from swin_gao_lib.runs.execute import error_text, execute_notebook, find_notebook, progress_bar, skip
from swin_gao_lib.files import atomic_write_text
from swin_gao_lib.config.params import resolve
from swin_gao_lib.records import REPORT_DIR, RunFolder, config_differences, run_dir_of

if TYPE_CHECKING:
    from swin_gao_lib.runs.dask_runner import DaskOptions

@dataclass
class Failure:
    params: Path
    run: str
    error: str
    notebook: Path


@dataclass(frozen=True)
class Plan:
    """One run of a suite: its params file, its resolved config, its folder."""

    params: Path
    config: RunConfig
    run_dir: Path
    seed_rank: int = 0

    @property
    def cost(self) -> int:
        """Expected work: training images per epoch x epochs (what the progress bar counts)."""
        c = self.config
        return c.epochs * expected_train_images(c.dataset, c.source, c.validation_split,
                                                c.max_train_samples)


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


def plan_suite(files: list[Path], output: Path, force: bool = False,
               check_data: bool = True) -> list[Plan]:
    """Expand and validate every run of ``files`` before any of them starts.

    A typo in the last file stops the batch at once instead of after hours:
    every point is resolved (:func:`swin_gao_lib.config.params.resolve`), every run
    folder is checked (an unfinished run of another config, or files the kit
    did not write, are refused; :meth:`RunFolder.plan`), and every data source
    is looked at (a ``dir:`` folder must hold the published files). Runs are
    ordered seed by seed (all configurations at the first seed, then at the
    second...), so a study stopped early still holds whole replicates.
    """
    plans = []
    for f in files:
        try:
            for run in resolve(f, {"output_dir": str(output)}):
                plans.append(Plan(f, run.config, run_dir_of(run.config), run.seed_rank))
        except InputError as exc:
            raise type(exc)(f"{f}: {exc}") from None
    names = [p.run_dir.name for p in plans]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise InputError(f"several runs of this suite are named {dup}; set distinct run_name "
                         "values (or file names)")
    if check_data:  # (not for a cluster of your own: its workers read the data, not this machine)
        for source in dict.fromkeys((p.config.dataset, p.config.source) for p in plans):
            check_source(*source)
    for p in plans:
        folder = RunFolder(p.run_dir)
        try:
            if folder.complete and not force:  # skipped, but only if it is this very run
                differs = config_differences(folder.recorded_config(), p.config)
                if differs:
                    raise InputError(
                        f"output: {folder.path} holds a complete run of a different config (it "
                        f"differs in {', '.join(differs)}); use another --output, or --force to "
                        "run it again with the config as it is now")
            elif not (folder.diverged and not force):  # a diverged run is listed, not re-run
                folder.plan(p.config, overwrite=force)
        except InputError as exc:
            raise type(exc)(f"{p.params}: {exc}") from None
    return sorted(plans, key=lambda p: p.seed_rank)  # stable: file order within a seed


def _run_on_dask(plans: list[Plan], train_nb: Path, result: SuiteResult, *, force: bool,
                 options, kernel_name: str | None, progress: bool) -> None:
    from swin_gao_lib.runs.dask_runner import run_on_dask

    todo = []
    for plan in plans:
        folder = RunFolder(plan.run_dir)
        if folder.complete and not force:
            result.skipped.append(plan.run_dir)
        elif folder.diverged and not force:
            result.failed.append(_diverged(plan))
        else:
            todo.append(plan)
    for plan, error in run_on_dask(todo, train_nb, force=force, options=options,
                                   kernel_name=kernel_name, progress=progress):
        if error is None:
            result.ran.append(plan.run_dir)
        else:
            result.failed.append(Failure(plan.params, plan.run_dir.name, error,
                                         RunFolder(plan.run_dir).notebook))


def export_html(notebook: Path) -> Path:
    """The executed report notebook as one self-contained HTML page, without its code.

    Figures are embedded (as data URIs), so the page can be mailed or opened
    anywhere: ``<suite>/report/report.html`` beside the PNG/SVG/CSV/MD files.
    """
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_filename(str(notebook))
    return atomic_write_text(notebook.with_suffix(".html"), body)


def _diverged(plan: Plan) -> Failure:
    """A run that diverged before: listed again, not re-run (it would diverge again)."""
    folder = RunFolder(plan.run_dir)
    where = folder.failure() or {}
    return Failure(plan.params, folder.name,
                   f"diverged earlier (loss {where.get('loss')} at epoch {where.get('epoch')}, "
                   f"step {where.get('step')}); not re-run: change its config, or --force",
                   folder.notebook)


def _run_sequentially(plans: list[Plan], train_nb: Path, result: SuiteResult, *, force: bool,
                      kernel_name: str | None, desc: str, progress: bool) -> None:
    """The default executor: one run after another, each in its own kernel."""
    bar = progress_bar(plans, desc, progress)
    for i, plan in enumerate(plans, 1):
        params, folder = plan.params, RunFolder(plan.run_dir)
        run_dir = folder.path
        bar.set_postfix_str(f"run {i}/{len(plans)} {run_dir.name}"
                            + (f", {len(result.failed)} failed" if result.failed else ""))
        if folder.complete and not force:
            result.skipped.append(run_dir)
            skip(bar, plan)
            continue
        if folder.diverged and not force:
            result.failed.append(_diverged(plan))
            skip(bar, plan)
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        notebook = folder.notebook
        try:
            execute_notebook(
                train_nb, notebook, cwd=train_nb.parent, kernel_name=kernel_name,
                parameters={"config_yaml": to_yaml(plan.config),
                            # an unfinished run resumes from its last finished epoch;
                            # complete ones were skipped above unless force
                            "overwrite": force})
            result.ran.append(run_dir)
        except Exception as exc:  # papermill re-raises the notebook's error
            # listed once, at the end (the CLI prints each with its notebook)
            result.failed.append(Failure(params, run_dir.name, error_text(exc), notebook))
        bar.update(plan.cost)
    bar.close()


def run_all(params_dir: str | Path, output: str | Path | None = None, *, force: bool = False,
            notebooks_dir: str | Path | None = None, kernel_name: str | None = None,
            report: bool = True, progress: bool = True, dask: "DaskOptions | None" = None,
            cpus_per_run: int | None = None) -> SuiteResult:
    """Run every run of ``params_dir`` through the train notebook, then the report.

    ``params_dir`` is a folder of ``*.yaml`` files or one file; a file with a
    ``grid:``/``seeds:`` block gives one run per point (:mod:`swin_gao_lib.config.params`).
    Every run is validated before the first one starts (:func:`plan_suite`).
    Runs go one after another, or on Dask when ``dask`` options are given
    (:mod:`swin_gao_lib.runs.dask_runner`). ``cpus_per_run`` holds each sequential
    run's backend to that many threads (the Dask executor's option of that name).
    """
    params_dir = Path(params_dir)
    if params_dir.is_file():
        files = [params_dir]
    elif params_dir.is_dir():
        files = sorted(params_dir.glob("*.yaml"))
    else:
        raise InputError(f"{params_dir}: no such params folder or file")
    if not files:
        raise InputError(f"{params_dir}: no *.yaml params files found")
    suite_name = params_dir.stem if params_dir.is_file() else params_dir.name
    output = Path(output) if output is not None else Path("outputs") / suite_name
    if output.exists() and not output.is_dir():
        raise InputError(f"--output {output} is a file; give a folder for the suite's runs")
    train_nb = find_notebook("train.ipynb", notebooks_dir)
    report_nb = find_notebook("report.ipynb", notebooks_dir)
    # Absolute, because each notebook runs in the notebooks' folder.
    plans = plan_suite(files, output.resolve(), force=force,
                       check_data=dask is None or dask.scheduler is None)
    from swin_gao_lib.config.design import write_design

    write_design(files, output, force=force)  # the study's declared design, before any run

    import os

    from swin_gao_lib.runtime.machine import quiet_tensorflow

    quiet_tensorflow()  # the kernels inherit it: no start-up noise between progress lines
    result = SuiteResult()
    if dask is not None:
        _run_on_dask(plans, train_nb, result, force=force, options=dask,
                     kernel_name=kernel_name, progress=progress)
    else:
        saved_env = dict(os.environ)
        if cpus_per_run is not None:
            from swin_gao_lib.runtime.machine import thread_environment

            os.environ.update(thread_environment(cpus_per_run))  # the kernels inherit it
        try:
            _run_sequentially(plans, train_nb, result, force=force, kernel_name=kernel_name,
                              desc=f"run-all {suite_name}", progress=progress)
        finally:
            os.environ.clear()
            os.environ.update(saved_env)
    if report:
        report_dir = output / REPORT_DIR
        report_dir.mkdir(parents=True, exist_ok=True)
        result.report_notebook = report_dir / "report.ipynb"
        try:
            execute_notebook(report_nb, result.report_notebook, cwd=report_nb.parent,
                             parameters={"suite_dir": str(output.resolve())},
                             kernel_name=kernel_name)
            result.report_html = export_html(result.report_notebook)
        except Exception as exc:
            result.report_error = error_text(exc)
    return result
