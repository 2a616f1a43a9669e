"""Executing the kit's notebooks with papermill: where they are, one quiet call, the error.

The sequential runner, each Dask task and the report run notebooks the same
way: each in its own kernel, with papermill's parameters, without the kernel's
start-up warning (it listens on 127.0.0.1 only), which would break the progress bar.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from swin_gao_lib.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The notebooks inside an installed wheel (setup.py copies them there when it is built).
PACKAGED_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
#: Kernel arguments: only the kernel's own errors are logged; cells' output is kept.
QUIET_KERNEL = ["--IPKernelApp.log_level=ERROR"]


def find_notebook(name: str, notebooks_dir: str | Path | None = None) -> Path:
    """Locate a kit notebook: the given folder, the repository's, ./notebooks, or the wheel's."""
    candidates = ([Path(notebooks_dir)] if notebooks_dir
                  else [REPO_ROOT / "notebooks", Path("notebooks"), PACKAGED_NOTEBOOKS])
    for folder in candidates:
        if (folder / name).is_file():
            return (folder / name).resolve()
    raise InputError(f"cannot find notebooks/{name}; run from the repository root or pass "
                     "--notebooks <folder>")


def execute_notebook(source: str | Path, target: str | Path, *, cwd: str | Path,
                     parameters: dict[str, Any], kernel_name: str | None = None,
                     scratch: str | Path | None = None) -> None:
    """Execute ``source`` into ``target`` with papermill, quietly.

    ``scratch``: the driver's scratch folder (:mod:`swin_gao_lib.runs.scratch`)
    for the kernel's connection file and its ``$TMPDIR`` (``tmp/``), which would
    otherwise stay in ``$TMPDIR`` when the kernel or this process is killed.

    Raises:
        Exception: the notebook's own error (papermill's ``PapermillExecutionError``,
            or nbclient's ``DeadKernelError`` when the kernel died).
    """
    from unittest import mock

    import papermill as pm

    extra: dict[str, Any] = {}
    kernel_env: dict[str, str] = {}
    if scratch is not None:
        import uuid

        from traitlets.config import Config

        connection = Path(scratch) / f"kernel-{uuid.uuid4().hex}.json"
        extra["config"] = Config({"KernelManager": {"connection_file": str(connection)}})
        kernel_tmp = Path(scratch) / "tmp"
        kernel_tmp.mkdir(parents=True, exist_ok=True)
        kernel_env["TMPDIR"] = str(kernel_tmp)
        tempfile.gettempdir()  # this process keeps its own: the choice is made on first use
    with mock.patch.dict(os.environ, kernel_env):  # the kernel inherits it
        pm.execute_notebook(str(source), str(target), cwd=str(cwd), parameters=parameters,
                            kernel_name=kernel_name, progress_bar=False, log_output=False,
                            extra_arguments=QUIET_KERNEL, **extra)


def execute_report(notebook: Path, executed: Path, suite: Path, out: Path | None = None, *,
                   scratch: Path, kernel_name: str | None = None) -> Path:
    """Execute ``report.ipynb`` on ``suite`` into ``executed``; return its offline page
    (``run-all`` and ``swin-gao report`` alike). ``out``: the report folder, when not
    ``<suite>/report``; the page lands in it (else beside ``executed``).

    Raises:
        Exception: the notebook's own error, as :func:`execute_notebook`.
    """
    from swin_gao_lib.analysis.page import export_html

    parameters = {"suite_dir": str(suite), **({"out_dir": str(out)} if out else {})}
    execute_notebook(notebook, executed, cwd=notebook.parent, parameters=parameters,
                     kernel_name=kernel_name, scratch=scratch)
    return export_html(executed, Path(out) / "report.html" if out else None)


def error_text(exc: BaseException) -> str:
    """A notebook's error as one line: ``Name: value``."""
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if ename:
        return f"{ename}: {evalue}"
    return f"{type(exc).__name__}: {exc}"
