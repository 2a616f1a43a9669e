"""The run folder's layout: its file names, the completion marker, where a run lands.

A run lands in ``<output_dir>/<run_name>/`` (:func:`run_dir_of`; the files:
docs/records.md). ``metrics.json`` is written last, only by a successful run,
so it marks a complete record; a suite is a folder of run folders, its
``report/`` and reference folders (``linear.json``). No TensorFlow here:
``run-all`` plans and skips runs with this module.
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
#: The example records shipped in the package (``examples/quick``'s runs, copied by
#: ``tools/bundle_example.py``): the report notebook opened alone has a suite to show.
EXAMPLE_SUITE = Path(__file__).resolve().parents[1] / "example_suite"
#: The files of each example run that are bundled (what the report reads).
EXAMPLE_FILES = (CONFIG, HISTORY, LEARNING_RATES, METRICS)
#: Held (flock) by the process that writes a run folder; holds that process's pid.
LOCK = ".lock"
#: The files a checkpoint folder may hold (:mod:`swin_gao_lib.training.checkpoint`): the
#: variables and state, their temporary names, and earlier versions' ``.weights.h5``, ``.rng.npz``.
CHECKPOINT_FILE = re.compile(r"(\.tmp-)?epoch-\d{5}\.(variables\.npz|weights\.h5|rng\.npz)|"
                             r"state\.json|"
                             r"\.(epoch-\d{5}\.(variables|rng)\.npz|state\.json)\..*\.tmp")


def run_dir_of(cfg: RunConfig) -> Path:
    """Where the run of ``cfg`` lands: ``<output_dir>/<run_name>``."""
    return Path(cfg.output_dir) / (cfg.run_name or labels.default_run_name(cfg))
