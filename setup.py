"""Build hook (everything else is in pyproject.toml): the wheel carries params/ and the notebooks.

After ``pip install git+...`` there is no clone: the command-line examples name
``params/...`` files, and ``run-all`` and ``report`` execute
``notebooks/train.ipynb`` and ``notebooks/report.ipynb``. When a wheel is built,
this copies the repository's ``params/`` folder into the package as
``example_params/`` (``swin-gao examples DIR`` copies it out for the user) and
the two notebooks as ``notebooks/`` (``runs/execute.py`` finds them there). The
repository keeps one copy of each; an editable install reads them from the
clone, so nothing is copied for it. ``MANIFEST.in`` puts both folders in the
sdist, so a wheel built from the sdist has them too.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
#: repository folder -> (folder inside the package, the files it takes); the names inside the
#: package are read by swin_gao_lib/config/examples.py and swin_gao_lib/runs/execute.py
SHIPPED = {"params": ("example_params", "**/*.yaml"),
           "notebooks": ("notebooks", "*.ipynb")}


class BuildPyWithExamples(build_py):
    """``build_py``, then the repository's params and notebooks copied into the build."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # the package is the clone: it has them
            return
        for folder, (name, pattern) in SHIPPED.items():
            files = sorted(p for p in (ROOT / folder).glob(pattern) if p.is_file())
            if not files:  # a wheel without them would fail only on the user's machine
                raise FileNotFoundError(f"{ROOT / folder}: no {pattern} to ship in the wheel")
            target = Path(self.build_lib) / "swin_gao_lib" / name
            shutil.rmtree(target, ignore_errors=True)
            for path in files:
                dest = target / path.relative_to(ROOT / folder)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildPyWithExamples})
