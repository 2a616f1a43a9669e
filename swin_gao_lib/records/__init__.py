"""The run folder: its files, writing them, reading runs and suites back."""

from swin_gao_lib.records.layout import (CHECKPOINT, CHECKPOINT_FILE, COMPLETE_MARKER,
                                         CONFIG, EXAMPLE_FILES, EXAMPLE_SUITE, FAILURE,
                                         HISTORY, LEARNING_RATES, LINEAR_REFERENCE, LOCK,
                                         METRICS, NOTEBOOK, RECORDS, REPORT_DIR, RESULTS,
                                         run_dir_of)
from swin_gao_lib.records.run import Run
from swin_gao_lib.records.folder import RunFolder, config_differences
from swin_gao_lib.records.suite import Suite, load_suite

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FILE",
    "COMPLETE_MARKER",
    "CONFIG",
    "EXAMPLE_FILES",
    "EXAMPLE_SUITE",
    "FAILURE",
    "HISTORY",
    "LEARNING_RATES",
    "LINEAR_REFERENCE",
    "LOCK",
    "METRICS",
    "NOTEBOOK",
    "RECORDS",
    "REPORT_DIR",
    "RESULTS",
    "Run",
    "RunFolder",
    "Suite",
    "config_differences",
    "load_suite",
    "run_dir_of",
]
