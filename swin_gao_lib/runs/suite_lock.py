"""One suite, one driver: the lock a ``run-all`` holds on its output folder.

The first driver takes an exclusive ``flock`` on
``<output>/.swin-gao-run-all.lock`` and writes who it is into it; a second one
exits with one line naming the first, or waits (``--wait``). The kernel
releases a ``flock`` however its holder ends, so a dead driver never blocks
the next one, which reads its entry (:attr:`SuiteLock.previous`) to clean up
after it (:mod:`swin_gao_lib.runs.scratch`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from swin_gao_lib.errors import InputError

LOCK_NAME = ".swin-gao-run-all.lock"


class SuiteBusy(InputError):
    """Another ``run-all`` is running this suite."""


def describe(holder: dict[str, Any] | None) -> str:
    """Who holds a suite, in words: ``run-all pid 1234 on host h (since 10:02:03 UTC)``."""
    if not holder:
        return "another run-all (it wrote no details)"
    since = holder.get("started", "")
    since = f", since {since[11:19]} UTC" if len(since) >= 19 else ""
    return f"run-all pid {holder.get('pid', '?')} on host {holder.get('host', '?')}{since}"


def _read(handle) -> dict[str, Any] | None:
    handle.seek(0)
    try:
        value = json.loads(handle.read() or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _same_file(handle, path: Path) -> bool:
    """Whether ``handle`` is still the file at ``path`` (a holder removes it before letting go)."""
    try:
        return os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
    except OSError:
        return False


class SuiteLock:
    """Held by the ``run-all`` driving a suite, from planning to its report."""

    def __init__(self, output: Path, executor: str = "sequential"):
        self.output = Path(output)
        self.path = self.output / LOCK_NAME
        self.executor = executor
        self.previous: dict[str, Any] | None = None  # the entry of a driver that died
        self.me = {"pid": os.getpid(), "host": socket.gethostname(),
                   "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   "executor": executor}
        self._handle = None
        self._created: list[Path] = []

    @contextlib.contextmanager
    def hold(self, wait: bool = False, log: Callable[[str], Any] = print, poll_s: float = 1.0):
        """Hold the suite for this driver; on a clean exit leave the folder as found.

        Raises:
            SuiteBusy: another driver holds it and ``wait`` is False.
            InputError: the output folder cannot be created or written.
        """
        self._acquire(wait, log, poll_s)
        try:
            yield self
        finally:
            self.release()

    def _acquire(self, wait: bool, log, poll_s: float) -> None:
        missing = self.output
        while not missing.exists() and missing != missing.parent:
            self._created.insert(0, missing)
            missing = missing.parent
        told = False
        while True:
            try:
                self.output.mkdir(parents=True, exist_ok=True)
                handle = open(self.path, "a+")
            except OSError as exc:
                self._remove_created()
                raise InputError(f"--output: cannot write {exc.filename or self.output} "
                                 f"({exc.strerror or exc}); choose a writable folder") from None
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if _same_file(handle, self.path):
                    break
                handle.close()  # its holder removed it as we opened it: open the new one
                continue
            except OSError:
                holder = _read(handle)
                handle.close()
                if not wait:
                    self._remove_created()
                    raise SuiteBusy(f"--output {self.output} is being run by {describe(holder)}; "
                                    "wait for it to finish, or pass --wait to start after it")
                if not told:
                    log(f"waiting for {describe(holder)} to finish with {self.output} ...")
                    told = True
                time.sleep(poll_s)
        self.previous = _read(handle)  # a driver that ended without cleaning up (killed)
        self._handle = handle
        self.record()

    def record(self, **extra: Any) -> None:
        """Add to this driver's entry (e.g. its Dask token, so a next start can clean up)."""
        self.me.update(extra)
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()
            self._handle.write(json.dumps(self.me))
            self._handle.flush()

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)  # removed while held: no window for a mix-up
        self._handle.close()
        self._handle = None
        self._remove_created()

    def _remove_created(self) -> None:
        """Remove the folders this lock created, if they are still empty (a refused plan)."""
        for folder in reversed(self._created):
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []
