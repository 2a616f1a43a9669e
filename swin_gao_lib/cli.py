"""``swin-gao``: the command line.

Exit status: 0 success, 1 a run that failed (its partial records are kept
and their folder named), 2 bad input (one clear line, no traceback).
"""

from __future__ import annotations

import argparse
import sys
import traceback
from pathlib import Path
from typing import Sequence

from swin_gao_lib.bench.command import add_arguments as bench_arguments
from swin_gao_lib.bench.command import at_least
from swin_gao_lib.errors import InputError, RunError
from swin_gao_lib.runs.runner import EXECUTORS

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
#: run-all's options that only the Dask executor takes (DaskOptions' fields).
DASK_ONLY = ("scheduler", "workers", "gpus_per_run", "retries")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own usage errors are bad input too: one line
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_BAD_INPUT)


def _train_epilog() -> str:
    """Where every config key is explained, and two examples (``train --help``)."""
    from swin_gao_lib.runtime.installed import repository_url

    url = repository_url()
    online = f"\n(in a clone; online: {url}/blob/main/docs/configuration.md)" if url else ""
    return ("every config key, its default and its meaning: docs/configuration.md" + online + """

examples:
  swin-gao train params/examples/mnist-sample.yaml
  swin-gao train params/quick/mnist-gao.yaml --set accumulation_steps=8 --set run_name=gao8
""")


#: ``run-all --help``'s examples (a test parses each, and checks the folders exist).
RUN_ALL_EPILOG = """examples:
  swin-gao run-all params/quick
  swin-gao run-all params/study-quick --executor dask --workers 2

installed with pip, without a clone? `swin-gao examples params` first copies the kit's
example params folders (params/quick, params/study-quick, ...) into ./params
"""


class _Version(argparse.Action):
    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="print the version (and the git "
                         "commit when run from a clone) and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from swin_gao_lib.runtime.installed import version_text

        print(version_text())
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="swin-gao", description="Swin Transformer gradient-accumulation kit")
    parser.add_argument("--version", action=_Version)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    tr = sub.add_parser("train", help="train one configuration and write its records",
                        description="Train one configuration and write its records "
                        "(docs/running.md#running-one-configuration).", epilog=_train_epilog(),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    tr.add_argument("params", help="a params YAML file (see params/)")
    tr.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one config key (docs/configuration.md); the value is read "
                    "as YAML; repeatable")
    tr.add_argument("--overwrite", action="store_true",
                    help="replace the records of an earlier run with the same name (by default an "
                    "unfinished run of the same config is resumed, anything else refused)")
    tr.add_argument("--verbose", type=int, choices=(0, 1, 2), default=1,
                    help="Keras progress: 0 silent, 1 progress bar, 2 one line per epoch")
    ra = sub.add_parser("run-all", help="run every params file of a suite through "
                        "notebooks/train.ipynb (papermill), then notebooks/report.ipynb",
                        epilog=RUN_ALL_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ra.add_argument("params_dir", help="a folder of params YAML files (e.g. params/quick), or one "
                    "file; a file with grid:/seeds: gives one run per point")
    ra.add_argument("--output", default=None,
                    help="where the runs land (default: outputs/<folder or file name>)")
    ra.add_argument("--force", action="store_true", help="re-run configurations whose records "
                    "are already complete")
    ra.add_argument("--wait", action="store_true", help="if another run-all is running the "
                    "same suite, wait for it to finish instead of stopping (exit 2)")
    ra.add_argument("--notebooks", default=None, help="folder holding train.ipynb and report.ipynb")
    ra.add_argument("--kernel", default=None, help="Jupyter kernel name (default: the notebook's)")
    ra.add_argument("--executor", choices=EXECUTORS,
                    default="sequential",
                    help="run one run after another (default), spread them on Dask "
                    "(docs/distributed.md), or train each configuration's seeds side by side "
                    "in one program on the JAX device, in this process and without notebooks "
                    "(pipeline: device; docs/backends.md)")
    ra.add_argument("--group-size", type=at_least(1), default=None, metavar="K",
                    help="side-by-side: at most K seeds in one program (default: all seeds of "
                    "a configuration)")
    ra.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="dask: join the cluster at tcp://host:port (default: start a local "
                    "cluster on 127.0.0.1)")
    ra.add_argument("--workers", type=at_least(1), default=None,
                    help="dask, local cluster: worker processes, one CPU run each at a time "
                    "(default: 2)")
    ra.add_argument("--gpus-per-run", type=float, default=None, metavar="F",
                    help="dask: fraction of a GPU each run asks for, from 1/64 to 1, e.g. 0.25 "
                    "for four runs per card (default: CPU runs)")
    ra.add_argument("--cpus-per-run", type=at_least(1), default=None, metavar="C",
                    help="backend threads per run (dask default: 1; sequential default: the "
                    "backend's own choice)")
    ra.add_argument("--retries", type=at_least(0), default=None, metavar="R",
                    help="dask: tries again a run whose kernel or worker died, up to R times "
                    "(default: 2)")
    bench_arguments(sub.add_parser(
        "bench", help="benchmark accumulation's time and memory",
        description="Benchmark the time and memory cost of gradient accumulation: plain "
        "training at B and at B/N, in-step and Keras optimizer accumulation, each measurement "
        "in a fresh process, repeats interleaved (docs/benchmarks.md)."))
    li = sub.add_parser("linear", help="fit the linear reference (softmax regression on pixels) "
                        "on a config's split; writes <output_dir>/<run_name>-linear/linear.json")
    li.add_argument("params", help="a params YAML file (see params/)")
    li.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="override one config key; the value is read as YAML; repeatable")
    li.add_argument("--overwrite", action="store_true",
                    help="replace an earlier linear.json in the same folder")
    ex = sub.add_parser("examples", help="copy the kit's example params folders (quick/, "
                        "study-quick/, ...) into DIR: the params/ the examples name, for an "
                        "install without a clone", epilog="example:\n  swin-gao examples params "
                        "&& swin-gao run-all params/quick",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    ex.add_argument("dir", metavar="DIR", help="a new or empty folder (nothing in it is "
                    "overwritten), e.g. params")
    rp = sub.add_parser("report", help="draw the figures and tables of a suite's runs, and "
                        "report.html (all of it on one page)")
    rp.add_argument("suite_dir", help="a folder of runs, e.g. outputs/quick")
    rp.add_argument("--out", default=None, help="default: <suite_dir>/report")
    rp.add_argument("--notebooks", default=None, help="folder holding report.ipynb, which makes "
                    "report.html (default: the repository's notebooks/)")
    rp.add_argument("--no-html", action="store_true", help="figures and tables only, without "
                    "executing report.ipynb for report.html")
    return parser


def _check_paths(*fields: tuple[str, str | None]) -> None:
    """Refuse an empty path (an unset shell variable: the current folder), a control character
    or a path too long, for the options whose folders the library does not check itself."""
    from swin_gao_lib.config.paths import check_path

    for field, value in fields:
        if value is not None:
            check_path(value, field)


def _run_all(args: argparse.Namespace) -> int:
    from swin_gao_lib.runs.runner import run_all

    _check_paths(("--notebooks", args.notebooks))  # params and --output: suite_inputs
    dask = None
    dask_only = [f"--{name.replace('_', '-')}" for name in DASK_ONLY
                 if getattr(args, name) is not None]
    if args.executor == "dask":
        gpus = args.gpus_per_run
        if gpus is not None and not 1 / 64 <= gpus <= 1:
            raise InputError(f"--gpus-per-run: must be in [1/64, 1], got {gpus}")
        if args.workers is not None and (args.scheduler or gpus):
            raise InputError("--workers sizes the local CPU cluster; with --scheduler (your "
                             "workers) or --gpus-per-run (one worker per GPU) leave it out")
        from swin_gao_lib.runs.dask_runner import DaskOptions, require_dask

        require_dask()
        dask = DaskOptions(**{name: getattr(args, name) for name in DASK_ONLY + ("cpus_per_run",)
                              if getattr(args, name) is not None})  # the rest: its defaults
    elif dask_only:
        raise InputError(f"{', '.join(dask_only)}: only with --executor dask")
    if args.group_size is not None and args.executor != "side-by-side":
        raise InputError("--group-size: only with --executor side-by-side")
    if args.executor == "side-by-side" and (args.notebooks or args.kernel or args.cpus_per_run):
        raise InputError("--notebooks, --kernel, --cpus-per-run: not with --executor "
                         "side-by-side (it runs no notebooks, in this process)")
    result = run_all(args.params_dir, args.output, force=args.force, executor=args.executor,
                     notebooks_dir=args.notebooks, kernel_name=args.kernel, dask=dask,
                     cpus_per_run=args.cpus_per_run if dask is None else None,
                     group_size=args.group_size, wait=args.wait)
    groups = f" in {len(result.groups)} group(s)" if args.executor == "side-by-side" else ""
    print(f"ran {len(result.ran)}{groups}, skipped {len(result.skipped)} complete, "
          f"failed {len(result.failed)}")
    for f in result.failed:
        print(f"FAILED {f.run} ({f.params}): {f.error}"
              + (f"\n  executed notebook: {f.notebook}" if f.notebook else ""), file=sys.stderr)
    if result.report_error:
        print(f"report failed: {result.report_error}" + (
            f"\n  executed notebook: {result.report_notebook}" if result.report_notebook else ""),
            file=sys.stderr)
    elif result.report_dir is not None:
        print(f"report: figures and tables in {result.report_dir}" + (
            f"; all of it in one page: {result.report_html}" if result.report_html else ""))
    return EXIT_OK if result.ok else EXIT_FAILED


def _report(args: argparse.Namespace) -> int:
    """The report of a suite: executed through notebooks/report.ipynb, as run-all's last step,
    so report.html is the same page; without the notebook (or with --no-html), the figures and
    tables alone."""
    from swin_gao_lib.analysis.report import build_report
    from swin_gao_lib.records import REPORT_DIR, load_suite
    from swin_gao_lib.runs.execute import find_notebook

    _check_paths(("suite_dir", args.suite_dir), ("--out", args.out),
                 ("--notebooks", args.notebooks))
    notebook = None
    if not args.no_html:
        try:
            notebook = find_notebook("report.ipynb", args.notebooks)
        except InputError:
            if args.notebooks:
                raise
    if notebook is None:
        report = build_report(args.suite_dir, args.out)
        for path in report.files:
            print(path)
        if not args.no_html:
            print("report.html not written: notebooks/report.ipynb not found (run from the "
                  "repository, or pass --notebooks)", file=sys.stderr)
        return EXIT_OK
    from swin_gao_lib.runs import scratch
    from swin_gao_lib.runs.execute import error_text, execute_report
    from swin_gao_lib.runtime.machine import quiet_tensorflow

    suite = load_suite(args.suite_dir).path.resolve()  # bad input: exit 2 before a kernel starts
    out = Path(args.out).resolve() if args.out else suite / REPORT_DIR
    quiet_tensorflow()  # the kernel inherits it
    scratch.clean_dead()  # a killed driver's (or report's) scratch
    token = scratch.new_token()
    try:  # the executed copy and the kernel's files in a scratch folder a next start clears
        folder = scratch.mark(token, scratch.this_driver())
        try:
            page = execute_report(notebook, folder / "report.ipynb", suite, out, scratch=folder)
        except Exception as exc:  # papermill re-raises the notebook's error
            print(f"report failed: {error_text(exc)}", file=sys.stderr)
            return EXIT_FAILED
    finally:
        scratch.remove(token)
    print(f"report: figures and tables in {out}; all of it on one page: {page}")
    return EXIT_OK


def _linear(args: argparse.Namespace) -> int:
    from swin_gao_lib.training.linear import (check_reference_dir, fit_reference, reference_dir,
                                     write_reference)
    from swin_gao_lib.config.params import load_config

    cfg = load_config(args.params, args.overrides)
    folder = reference_dir(cfg)
    check_reference_dir(folder, overwrite=args.overwrite)  # before the fit: fail fast
    ref = fit_reference(cfg)
    path = write_reference(ref, folder)
    print(f"{ref.summary()} -> {path}")
    return EXIT_OK


def _examples(args: argparse.Namespace) -> int:
    from swin_gao_lib.config.examples import copy_examples, example_folders

    files = copy_examples(args.dir)
    folders = example_folders()
    print(f"copied {len(files)} params files into {args.dir}: "
          f"{', '.join(f'{name}/' for name in folders)}")
    print(f"e.g. swin-gao run-all {Path(args.dir) / 'quick'}")
    return EXIT_OK


def _bench(args: argparse.Namespace) -> int:
    from swin_gao_lib.bench.command import run

    _check_paths(("--out", args.out))
    return run(args)


def _train(args: argparse.Namespace) -> int:
    from swin_gao_lib.config import to_yaml
    from swin_gao_lib.config.checks import uneven_split_note
    from swin_gao_lib.config.params import load_config
    from swin_gao_lib.training.preflight import preflight

    cfg = load_config(args.params, args.overrides)
    notes: list[str] = [uneven_split_note(cfg)] if uneven_split_note(cfg) else []
    # Output folder and data are checked before the backend is imported, so bad
    # input is one line, not one line after TensorFlow's start-up log.
    checked = preflight(cfg, overwrite=args.overwrite, log=notes.append)
    print(to_yaml(cfg).rstrip(), *notes, sep="\n", flush=True)
    from swin_gao_lib.runtime.backend import use_backend
    from swin_gao_lib.runtime.machine import quiet_tensorflow

    use_backend(cfg.backend)  # before Keras is imported: Keras reads it once
    quiet_tensorflow()  # its start-up lines look like errors
    from swin_gao_lib.training.train import train

    train(cfg, overwrite=args.overwrite, verbose=args.verbose, checked=checked)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return {"train": _train, "run-all": _run_all, "report": _report,
                "bench": _bench, "linear": _linear, "examples": _examples}[args.command](args)
    except InputError as exc:
        print(f"swin-gao: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except RunError as exc:
        if exc.__cause__ is not None:
            traceback.print_exception(exc.__cause__, file=sys.stderr)
        print(f"swin-gao: run failed: {exc}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
