"""Executing suites of runs: notebooks through papermill, sequentially or on Dask."""
