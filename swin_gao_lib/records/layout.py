"""The run folder's layout: its file names, the completion marker, where a run lands.

One run lands in ``<output_dir>/<run_name>/`` (:func:`run_dir_of`):

* ``config.yaml`` — the resolved config (loads back to the same run), first;
* ``history.csv`` — one row per epoch, rewritten after every epoch, so a run
  that dies keeps the epochs it finished;
* ``lr.csv`` — one row per optimizer update: ``update`` (k, from 0), the
  ``epoch`` and train ``step`` (a micro-step in optimizer mode) it happened
  at, and the ``learning_rate`` the optimizer applied; rewritten after every
  epoch. Runs recorded before it existed have none (:attr:`Run.learning_rates`
  is then None);
* ``metrics.json`` — written last, only when the run succeeded: its presence
  marks a complete record (:data:`COMPLETE_MARKER`);
* ``failure.json`` — instead of ``metrics.json`` when the run failed: the
  error, the traceback and the epochs completed;
* ``train.ipynb`` — the executed notebook, when ``run-all`` ran it;
* ``checkpoint/`` — while the run is unfinished: the state after the last
  finished epoch (:mod:`swin_gao_lib.training.checkpoint`), from which a new start of
  the same config resumes; removed when the run completes.

A *suite* is a folder of run folders (plus its ``report/``, and reference
folders holding a ``linear.json``, :data:`LINEAR_REFERENCE`, written by
``swin-gao linear``: read as references, not runs). Every file is
written atomically (:mod:`swin_gao_lib.files`), so a crash leaves either the
old file or the new one, never half.

This module imports no TensorFlow: ``run-all`` plans and skips runs with it.
"""

from __future__ import annotations

import re
from pathlib import Path

from swin_gao_lib.config import labels
from swin_gao_lib.config import RunConfig

CONFIG, HISTORY, METRICS, FAILURE, NOTEBOOK, CHECKPOINT = (
    "config.yaml", "history.csv", "metrics.json", "failure.json", "train.ipynb", "checkpoint")
#: The learning rate applied at every optimizer update.
LEARNING_RATES = "lr.csv"
#: Written last, only by a successful run: a run folder holding it is complete.
COMPLETE_MARKER = METRICS
#: What a run writes besides its config; the completion marker first, so that
#: :meth:`RunFolder.clear` unmarks a complete run before it removes anything else.
RESULTS = (METRICS, FAILURE, HISTORY, LEARNING_RATES)
#: The records a run writes; a folder holding any of them holds a run.
RECORDS = (CONFIG, *RESULTS)
#: A linear classifier's reference result (:mod:`swin_gao_lib.training.linear`); a folder holding it
#: is a reference, not a run.
LINEAR_REFERENCE = "linear.json"
#: The suite's report folder, beside its run folders.
REPORT_DIR = "report"
#: The example records that ship inside the package: ``examples/quick``'s run records
#: (the paper's four runs of ``params/quick``), so that the report notebook opened alone
#: (its Colab badge) has a suite to show. ``tools/bundle_example.py`` copies them.
EXAMPLE_SUITE = Path(__file__).resolve().parents[1] / "example_suite"
#: The files of each example run that are bundled (what the report reads).
EXAMPLE_FILES = (CONFIG, HISTORY, LEARNING_RATES, METRICS)
#: Held (flock) by the process that writes a run folder; holds that process's pid.
LOCK = ".lock"
#: The files a checkpoint folder may hold, all written by :mod:`swin_gao_lib.training.checkpoint`.
#: (``epoch-NNNNN.variables.npz`` and ``state.json``, their temporary names while written,
#: and the ``.weights.h5`` and ``.rng.npz`` of checkpoints written by earlier versions.)
CHECKPOINT_FILE = re.compile(r"(\.tmp-)?epoch-\d{5}\.(variables\.npz|weights\.h5|rng\.npz)|"
                             r"state\.json|"
                             r"\.(epoch-\d{5}\.(variables|rng)\.npz|state\.json)\..*\.tmp")


# ------------------------------------------------------------------ one run's folder
def run_dir_of(cfg: RunConfig) -> Path:
    """Where the run of ``cfg`` lands: ``<output_dir>/<run_name>``."""
    return Path(cfg.output_dir) / (cfg.run_name or labels.default_run_name(cfg))
