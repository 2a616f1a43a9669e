"""The example params folders that ship with the kit, and copying them for a user.

A wheel carries ``params/`` as ``example_params/`` (``setup.py``); a clone or an
editable install uses the repository's ``params/``. ``swin-gao examples DIR``
copies them into a new or empty folder, never over anything.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from swin_gao_lib.errors import InputError

_PACKAGE = Path(__file__).resolve().parents[1]
#: Where an installed wheel holds the example params folders (setup.py's SHIPPED: keep equal).
PACKAGED = _PACKAGE / "example_params"
#: The repository's own folder, for a clone or an editable install.
CLONE = _PACKAGE.parent / "params"
#: What the command-line examples call the folder (``swin-gao run-all params/quick``).
DOCUMENTED = "params"


def example_params_dir() -> Path:
    """The folder holding the example params folders (``quick/``, ``study-quick/``, ...).

    Raises:
        InputError: neither the wheel's copy nor a clone's ``params/`` is there.
    """
    if PACKAGED.is_dir():
        return PACKAGED
    if CLONE.is_dir() and (CLONE.parent / "pyproject.toml").is_file():  # a clone, not site-packages
        return CLONE
    raise InputError(f"this install of the kit holds no example params files (neither {PACKAGED} "
                     f"nor a clone's params/); reinstall it from a wheel or a clone")


def example_folders() -> list[str]:
    """The names of the shipped example params folders, sorted."""
    return sorted(p.name for p in example_params_dir().iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")))


def copy_examples(dest: str | os.PathLike) -> list[Path]:
    """Copy every shipped example params folder into ``dest`` (``dest/quick/...``); return
    the copied files.

    Raises:
        InputError: ``dest`` is a file or a folder that is not empty (checked before
            anything is written), or cannot be written.
    """
    dest = Path(dest)
    source = example_params_dir()
    if dest.exists() and not dest.is_dir():
        raise InputError(f"DIR: {dest} is a file; give a new or empty folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise InputError(f"DIR: {dest} already exists and is not empty; give a new or empty "
                         "folder (nothing in it is overwritten)")
    try:
        dest.mkdir(parents=True, exist_ok=True)
        for name in example_folders():
            shutil.copytree(source / name, dest / name,
                            ignore=shutil.ignore_patterns("__pycache__", ".*"))
    except OSError as exc:
        raise InputError(f"DIR: cannot write {exc.filename or dest} ({exc.strerror or exc}); "
                         "give a writable folder") from None
    return sorted(p for p in dest.rglob("*") if p.is_file())


def missing_params_hint(path: str | os.PathLike) -> str:
    """A fix to add when a params path the docs use (``params/...``) is not there (an
    install without a clone), else ``""``."""
    parts = Path(path).parts
    if parts and parts[0] == DOCUMENTED and not Path(DOCUMENTED).exists():
        return (f"; no {DOCUMENTED}/ folder here (the kit installed without a clone?): "
                f"`swin-gao examples {DOCUMENTED}` copies the kit's example params folders "
                f"into ./{DOCUMENTED}")
    return ""
