"""A driver's scratch folders: what its kernels and Dask keep, marked, and cleaned up.

Each start of a ``run-all`` driver has a token; its scratch, on its machine and
on every Dask worker, is ``$TMPDIR/swin-gao-dask-<uid>/<token>/``: Dask runs'
folders, the kernels' connection files (which jupyter_client would leave in
``$TMPDIR``) and a local cluster's worker space (:data:`DASK_DIR`). Its marker,
``driver.json``, names the driver's pid, host and process start time. The
folder is removed when the suite ends; a killed driver's is removed by the next
start: on its machine when the marker names a pid of this host that no longer
runs (or was reused), on workers when the suite's lock names its token
(:mod:`swin_gao_lib.runs.suite_lock`). A kernel still holding a run's ``.lock``
there is stopped first. Folders without a marker are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Iterable

from swin_gao_lib.files import atomic_write_text
from swin_gao_lib.records import LOCK

MARKER = "driver.json"
#: In a driver's scratch folder on its own machine: a local Dask cluster's worker space.
DASK_DIR = "dask"


def new_token() -> str:
    """The token of a driver's start: retries of its runs share it, a new start does not."""
    return uuid.uuid4().hex[:12]


def root() -> Path:
    """The scratch root of this user on this machine."""
    return Path(tempfile.gettempdir()) / f"swin-gao-dask-{os.getuid()}"


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or None if it does not run."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except ImportError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return 0.0  # runs, start unknown
    except Exception:  # NoSuchProcess, AccessDenied, ZombieProcess
        return None


def this_driver() -> dict[str, Any]:
    """The marker of the calling process: pid, host and start time."""
    pid = os.getpid()
    return {"pid": pid, "host": socket.gethostname(), "started": process_start(pid)}


def alive(driver: dict[str, Any]) -> bool | None:
    """Whether the driver a marker names still runs; None when it is on another host."""
    if driver.get("host") != socket.gethostname():
        return None
    try:
        started = process_start(int(driver["pid"]))
    except (KeyError, TypeError, ValueError):
        return False
    if started is None:
        return False
    recorded = driver.get("started")
    # a pid reused by a later process is not the driver
    return not (recorded and started and abs(started - float(recorded)) > 1.0)


def token_dir(token: str) -> Path:
    return root() / token


def mark(token: str, driver: dict[str, Any]) -> Path:
    """Create the scratch folder of a driver's start on this machine, with its marker."""
    folder = token_dir(token)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / MARKER).is_file():
        atomic_write_text(folder / MARKER, json.dumps({**driver, "token": token}))
    return folder


def held_by(run_dir: Path) -> str | None:
    """The pid of another process writing ``run_dir`` right now (it holds its lock), or None."""
    import fcntl

    path = run_dir / LOCK
    if not path.is_file():
        return None
    try:
        with open(path, "r") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return handle.read().strip() or "?"
            fcntl.flock(handle, fcntl.LOCK_UN)
    except OSError:
        return None
    return None


def stop_holder(run_dir: Path, timeout: float = 60.0) -> bool:
    """Stop the process that holds ``run_dir``'s lock (a kernel whose driver or worker died);
    whether the folder is free. A stale pid in a lock file nobody holds is never killed."""
    deadline = time.monotonic() + timeout
    while (pid := held_by(run_dir)) is not None:
        if pid.isdigit():
            with contextlib.suppress(OSError):
                os.kill(int(pid), signal.SIGKILL)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _run_folders(folder: Path) -> Iterable[Path]:
    return (p.parent for p in folder.rglob(LOCK))


def remove(token: str) -> None:
    """Remove this machine's scratch of ``token`` (a suite that ended)."""
    folder = token_dir(token)
    if folder.is_dir():
        for run_dir in list(_run_folders(folder)):
            stop_holder(run_dir, timeout=10.0)
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        root().rmdir()  # the user's root too, once nothing else is in it


def clean_dead(dead_tokens: Iterable[str] = ()) -> list[str]:
    """Remove the scratch of dead drivers on this machine; return the tokens removed.

    A token's folder goes when its marker names a driver of this host that no
    longer runs, or when the token is in ``dead_tokens`` (named by a suite's
    lock as the entry of a driver that ended without releasing it).
    """
    dead_tokens = set(dead_tokens)
    removed = []
    base = root()
    if not base.is_dir():
        return removed
    for folder in sorted(base.iterdir()):
        try:
            driver = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # no marker: being created, or not ours to judge
        if not isinstance(driver, dict):
            continue
        if folder.name in dead_tokens or alive(driver) is False:
            remove(folder.name)
            removed.append(folder.name)
    return removed
