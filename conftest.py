"""pytest, for every path it is given: nbval runs the notebooks in a scratch folder.

nbval starts each notebook's kernel in the notebook's own folder, so the train
notebook's demo run would land in ``notebooks/outputs/notebook/notebook-demo``:
beside a user's own demo run, which the tests must not touch, and, from the
second test run on, onto a complete run of the same name, where the notebook
stops rather than replace it (``overwrite = False``, its default). Here each
kernel starts in a fresh folder instead. The notebooks' defaults need nothing
from their folder (the demo trains on the sample inside the package, the report
draws the example bundled with it). This file sits at the repository's root, not
in ``tests/``, so that ``pytest notebooks/train.ipynb`` loads it too.
"""

from __future__ import annotations

import shutil
import tempfile

import pytest


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("nbval"):
        return
    import nbval.plugin

    scratch = tempfile.mkdtemp(prefix="swin-gao-nbval-")
    config.add_cleanup(lambda: shutil.rmtree(scratch, ignore_errors=True))
    started_in = nbval.plugin.RunningKernel  # a name nbval's plugin looks up when it starts one

    class ScratchKernel(started_in):
        """nbval's kernel, started in a fresh folder under this session's scratch folder."""

        def __init__(self, kernel_name, cwd=None, **kwargs):
            super().__init__(kernel_name, cwd=tempfile.mkdtemp(dir=scratch), **kwargs)

    nbval.plugin.RunningKernel = ScratchKernel
