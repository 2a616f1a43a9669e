"""A suite's progress and its time left: a tqdm bar over the training images.

Every run rewrites its ``history.csv`` after each epoch, so the driver sees
epochs end without asking the kernels. :class:`SuiteProgress` counts the
training images of the epochs ended since the suite started (not those of
skipped runs, of a resumed run's earlier epochs, or of a failed run's missing
ones) and estimates, as tqdm with ``smoothing=0``::

    left = elapsed x (images still to train) / (images trained so far)

(replayed on the main job's records it is within ±8% at half-way,
docs/running.md). On a terminal it draws one tqdm bar, redrawn every second;
elsewhere it writes a line per run start or end and per epoch at most every
``log_every`` seconds.
"""

from __future__ import annotations

import contextlib
import csv
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, TextIO


def _clock_text(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _count(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


def _bar(desc: str, stream: TextIO):
    """A tqdm bar over the suite's images (per mille), with our status after it."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        status = ""

        @property
        def format_dict(self):  # tqdm's way to add a field to bar_format
            return {**super().format_dict, "status": self.status}

    return Bar(total=1000, desc=desc, file=stream, leave=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {status}")


def _history_rows(path, before: int) -> int:
    """The epochs a history.csv holds (``before`` if it is absent or caught mid-rename)."""
    try:
        with path.open(newline="") as f:
            return sum(1 for _ in csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError):
        return before


@dataclass
class _Run:
    """One run of a suite as the progress sees it."""

    plan: Any
    index: int
    status: str = "pending"  # pending | running | done | skipped
    rows_at_start: int = 0  # epochs trained before this suite's start (a resumed run)
    rows: int = 0
    stamp: tuple | None = None  # history.csv's (mtime, size, inode) when last read

    @property
    def images(self) -> int:
        return self.plan.images_per_epoch

    def trained(self) -> int:
        """Images trained since the suite started."""
        return max(self.rows - self.rows_at_start, 0) * self.images

    def to_train(self) -> int:
        """Images this run trains in this suite, ended or not (a failed run: what it did)."""
        if self.status == "skipped":
            return 0
        if self.status == "done":
            return self.trained()
        return max(self.plan.epochs - self.rows_at_start, 0) * self.images


class SuiteProgress:
    """The progress of a suite's runs and report, and its time left (module docstring).

    The executors call :meth:`skip`, :meth:`start`, :meth:`finish`,
    :meth:`report_start` and :meth:`close`; a background thread reads the
    running runs' ``history.csv`` and redraws (:meth:`poll`), or a caller
    polls it itself (``ticker=False``).
    """

    def __init__(self, plans: list, desc: str, *, enabled: bool = True,
                 stream: TextIO | None = None, interactive: bool | None = None,
                 log_every: float = 20.0, clock: Callable[[], float] = time.monotonic,
                 ticker: bool = True):
        self.runs = [_Run(p, i) for i, p in enumerate(plans, 1)]
        self._by_dir = {str(r.plan.run_dir): r for r in self.runs}
        self.desc, self.enabled = desc, enabled
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if interactive is None else interactive
        self.log_every, self.clock = log_every, clock
        self.t0 = clock()
        self.report_started: float | None = None
        self.failed = 0
        self._lock = threading.RLock()
        self._last_log = -1e18
        self._bar = _bar(desc, self.stream) if enabled and self.interactive else None
        self._stop = threading.Event()
        self._thread = None
        if enabled and ticker:
            self._thread = threading.Thread(target=self._tick, daemon=True,
                                            name="swin-gao-progress")
            self._thread.start()

    # ------------------------------------------------------------ events
    def _run(self, plan) -> _Run:
        return self._by_dir[str(plan.run_dir)]

    def skip(self, plan) -> None:
        """A run that needs no time (complete, or diverged before): out of both counts."""
        with self._lock:
            self._run(plan).status = "skipped"

    def start(self, plan) -> None:
        with self._lock:
            run = self._run(plan)
            if run.status == "running":
                return
            run.status = "running"
            run.rows = run.rows_at_start = _history_rows(run.plan.run_dir / "history.csv", 0)
            self._emit(f"run {run.index}/{len(self.runs)} {run.plan.run_dir.name} started",
                       force=True)

    def finish(self, plan, ok: bool = True) -> None:
        with self._lock:
            run = self._run(plan)
            self._poll_run(run)
            run.status = "done"
            self.failed += not ok
            self._emit(f"run {run.index}/{len(self.runs)} {run.plan.run_dir.name} "
                       f"{'done' if ok else 'failed'}", force=True)

    def report_start(self) -> None:
        with self._lock:
            self.report_started = self.clock()
            self._emit("report started", force=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            if self._bar is not None:
                self._bar.n = 1000
                self._bar.status = self._status(final=True)
                self._bar.close()
                self._bar = None
            elif self.enabled:
                self._emit("finished", force=True, final=True)

    # ------------------------------------------------------------ reading the runs
    def _poll_run(self, run: _Run) -> bool:
        """Read a run's history if it changed; return whether an epoch ended."""
        path = run.plan.run_dir / "history.csv"
        try:
            st = path.stat()
        except OSError:
            return False
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == run.stamp:
            return False
        run.stamp, before = stamp, run.rows
        run.rows = _history_rows(path, before)
        return run.rows > before

    def poll(self) -> None:
        """Read the running runs' histories and redraw (or log an epoch line, now and then)."""
        with self._lock:
            ended = [r for r in self.runs if r.status == "running" and self._poll_run(r)]
            if self._bar is not None:
                self._bar.n = int(1000 * self.fraction())
                self._bar.status = self._status()
                self._bar.refresh()
            elif ended:
                self._emit("", force=False)

    def _tick(self) -> None:
        while not self._stop.wait(1.0):
            with contextlib.suppress(Exception):  # progress must never break a suite
                self.poll()

    # ------------------------------------------------------------ the estimate
    def images(self) -> tuple[int, int]:
        """(trained since the start, to train in all) over the runs not skipped."""
        with self._lock:
            return (sum(r.trained() for r in self.runs),
                    sum(r.to_train() for r in self.runs))

    def remaining(self) -> float | None:
        """Seconds left to train at the average rate so far; None before an epoch ended and
        while the report runs (it is not counted in images)."""
        done, total = self.images()
        if not done or self.report_started is not None:
            return None
        return (self.clock() - self.t0) * max(total - done, 0) / done

    def fraction(self) -> float:
        """The share of the suite's images trained."""
        done, total = self.images()
        return done / total if total else 1.0

    # ------------------------------------------------------------ output
    def _status(self, final: bool = False) -> str:
        elapsed = self.clock() - self.t0
        left = self.remaining()
        parts = [f"{_clock_text(elapsed)} elapsed"
                 + ("" if final or self.report_started is not None
                    else f", ~{_clock_text(left)} left" if left is not None
                    else ", estimating time left")]
        running = [r for r in self.runs if r.status == "running"]
        if self.report_started is not None:
            parts.append("report" + (" done" if final else ""))
        elif running:
            parts += [f"run {r.index}/{len(self.runs)} {r.plan.run_dir.name} epoch "
                      f"{min(r.rows + 1, r.plan.epochs)}/{r.plan.epochs}" for r in running[:3]]
            if len(running) > 3:
                parts.append(f"{len(running) - 3} more running")
        done, total = self.images()
        parts.append(f"{_count(done)}/{_count(total)} images")
        if self.failed:
            parts.append(f"{self.failed} failed")
        return " | ".join(parts)

    def _emit(self, event: str, force: bool, final: bool = False) -> None:
        """A plain progress line (no terminal): events always, epochs now and then."""
        if not self.enabled or self._bar is not None:
            if self._bar is not None and event:
                self._bar.status = self._status()
                self._bar.refresh()
            return
        now = self.clock()
        if not force:  # epoch lines: one per log_every seconds at most
            if now - self._last_log < self.log_every:
                return
            self._last_log = now
        percent = 100 if final else round(100 * self.fraction())
        print(f"{self.desc}: {percent:3d}% | {self._status(final)}"
              + (f" | {event}" if event else ""), file=self.stream, flush=True)
