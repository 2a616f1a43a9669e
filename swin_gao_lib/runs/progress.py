"""A suite's progress and its time left, from what the runs already write as they go.

Every run rewrites its ``history.csv`` after each epoch (the Dask driver
writes the copy its tasks send back), so the driver sees each epoch end and
how long it took, without asking the kernels anything. From those files and
the times at which runs start and end, :class:`SuiteProgress` estimates the
time left as a sum of measured costs:

* an epoch of a run costs its own measured time per training image (the
  mean of its epochs, compile time left out) times its images; a run that
  has not trained an epoch yet borrows one from the runs measured so far
  (:func:`swin_gao_lib.runs.run_costs.borrowed_cost`);
* a run's fixed cost, measured on the runs so far: its start (kernel, imports,
  data, the first step's compilation) until its first epoch ends, and its tail
  (the final evaluation, the notebook's last cells and save) after its last;
* the runs still to start are laid out on the executor's slots (one for the
  sequential runner, the cluster's threads on Dask), each to the slot free
  first, so the last runs' tail is counted;
* the report comes last: ``REPORT_S`` plus ``REPORT_PER_RUN_S`` per run (an
  assumption, measured on the quick suite and a study on 2 cores; it cannot be
  measured before it runs).

On a terminal it draws a bar over the estimated time (elapsed / (elapsed +
left)) with the run, epoch and images done beside it, redrawn every second;
otherwise (a log file, CI, a notebook cell) it writes plain lines: one when a
run starts or ends or the report starts, and one per epoch at most every
``log_every`` seconds.
"""

from __future__ import annotations

import csv
import sys
import threading
import time
from typing import Callable, TextIO

from swin_gao_lib.runs.run_costs import RunTimes, borrowed_cost, identity_key

#: The report's cost, assumed: a fixed part and a part per run (seconds, 2 CPU cores).
REPORT_S, REPORT_PER_RUN_S = 15.0, 0.3
#: Before any run has ended, its tail is assumed this fraction of its measured start.
TAIL_OF_START = 0.25


def _clock_text(seconds: float) -> str:
    seconds = int(round(max(seconds, 0)))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _count(n: float) -> str:
    return f"{n / 1e6:.1f}M" if n >= 1e6 else f"{n / 1e3:.1f}k" if n >= 1e3 else f"{n:.0f}"


def _bar(desc: str, stream: TextIO):
    """A tqdm bar over the suite's estimated time (per mille), with our status after it."""
    from tqdm.auto import tqdm

    class Bar(tqdm):
        status = ""

        @property
        def format_dict(self):  # tqdm's way to add a field to bar_format
            return {**super().format_dict, "status": self.status}

    return Bar(total=1000, desc=desc, file=stream, leave=True,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {status}")


class SuiteProgress:
    """The progress of a suite's runs and report, and its time left (see the module docstring).

    The executors call :meth:`skip`, :meth:`start`, :meth:`finish`,
    :meth:`report_start` and :meth:`close`; a background thread reads the
    running runs' ``history.csv`` and redraws (:meth:`poll`), or a caller
    polls it itself (``ticker=False``).
    """

    def __init__(self, plans: list, desc: str, *, enabled: bool = True, slots: int = 1,
                 report: bool = True, stream: TextIO | None = None,
                 interactive: bool | None = None, log_every: float = 20.0,
                 clock: Callable[[], float] = time.monotonic, ticker: bool = True):
        self.runs = [RunTimes(p, i) for i, p in enumerate(plans, 1)]
        self._keys = {id(r): identity_key(r.plan.config) for r in self.runs}
        self._by_dir = {str(r.plan.run_dir): r for r in self.runs}
        self.desc, self.enabled, self.slots = desc, enabled, max(1, int(slots))
        self.report = report
        self.stream = stream or sys.stderr
        self.interactive = (self.stream.isatty() if interactive is None else interactive)
        self.log_every, self.clock = log_every, clock
        self.t0 = clock()
        self.report_started: float | None = None
        self.failed = 0
        self._lock = threading.RLock()
        self._last_log = -1e18
        self._bar = None
        self._stop = threading.Event()
        self._thread = None
        if enabled and self.interactive:
            self._bar = _bar(desc, self.stream)
        if enabled and ticker:
            self._thread = threading.Thread(target=self._tick, daemon=True,
                                            name="swin-gao-progress")
            self._thread.start()

    # ------------------------------------------------------------ events
    def _run(self, plan) -> RunTimes:
        return self._by_dir[str(plan.run_dir)]

    def skip(self, plan) -> None:
        """A run that needs no time (complete, or diverged before): out of the estimate."""
        with self._lock:
            self._run(plan).status = "skipped"

    def start(self, plan) -> None:
        with self._lock:
            run = self._run(plan)
            if run.status == "running":
                return
            run.status, run.started = "running", self.clock()
            run.rows = self._read_rows(run)
            run.rows_at_start = len(run.rows)
            self._emit(f"run {run.index}/{len(self.runs)} {run.plan.run_dir.name} started",
                       force=True)

    def finish(self, plan, ok: bool = True) -> None:
        with self._lock:
            run = self._run(plan)
            if run.status == "pending":  # a Dask task that never told us it started
                run.started = self.clock()
            self._poll_run(run)
            run.status, run.finished = "done", self.clock()
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
    def _read_rows(self, run: RunTimes) -> list[tuple[float, float]]:
        path = run.plan.run_dir / "history.csv"
        try:
            with path.open(newline="") as f:
                return [(float(r["epoch_s"]), float(r.get("compile_s") or 0.0))
                        for r in csv.DictReader(f)]
        except (OSError, KeyError, ValueError):
            return run.rows  # absent, or caught mid-rename: keep what we had

    def _poll_run(self, run: RunTimes) -> bool:
        """Read a running run's history if it changed; return whether an epoch ended."""
        path = run.plan.run_dir / "history.csv"
        try:
            st = path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except OSError:
            return False
        if stamp == run.history_stamp:
            return False
        run.history_stamp = stamp
        before = len(run.rows)
        run.rows = self._read_rows(run)
        if len(run.rows) > before and len(run.rows) > run.rows_at_start:
            now = self.clock()
            if run.first_row_seen is None:
                run.first_row_seen = now
            run.last_row_seen = now
            return True
        return False

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
            try:
                self.poll()
            except Exception:  # progress must never break a suite
                pass

    # ------------------------------------------------------------ the estimate
    def _measured(self) -> list[RunTimes]:
        return [r for r in self.runs if r.status in ("running", "done") and r.rows]

    def _measured_rates(self) -> dict[tuple, float]:
        """Measured cost per image by identity (a config without its seed): the mean over seeds."""
        by_key: dict[tuple, list[float]] = {}
        for other in (r for r in self._measured() if r.seconds_per_image() is not None):
            by_key.setdefault(self._keys[id(other)], []).append(other.seconds_per_image())
        return {key: sum(v) / len(v) for key, v in by_key.items()}

    def _seconds_per_image(self, run: RunTimes, measured: dict | None = None) -> float | None:
        """The run's own cost per image, or one borrowed from ``measured`` (module docstring)."""
        own = run.seconds_per_image()
        measured = self._measured_rates() if own is None and measured is None else measured
        if own is not None or not measured:
            return own
        return borrowed_cost(self._keys[id(run)], measured)

    def _fixed_costs(self) -> tuple[float | None, float | None]:
        """(start, tail) of a run: means over the runs measured so far."""
        starts = [s for s in (r.start_s() for r in self.runs) if s is not None]
        tails = [t for t in (r.tail_s() for r in self.runs if r.status == "done")
                 if t is not None]
        start = sum(starts) / len(starts) if starts else None
        tail = (sum(tails) / len(tails) if tails
                else start * TAIL_OF_START if start is not None else None)
        return start, tail

    def report_seconds(self) -> float:
        return REPORT_S + REPORT_PER_RUN_S * len(self.runs) if self.report else 0.0

    def remaining(self) -> float | None:
        """Estimated seconds left (runs and report), or None before anything was measured."""
        with self._lock:
            now = self.clock()
            if self.report_started is not None:
                return max(self.report_seconds() - (now - self.report_started), 0.0)
            start, tail = self._fixed_costs()
            measured = self._measured_rates()  # once per estimate, not once per waiting run
            busy, queued = [], []
            for run in self.runs:
                if run.status not in ("running", "pending"):
                    continue
                rate = self._seconds_per_image(run, measured)
                if rate is None or start is None:
                    return None
                epoch = rate * run.images
                left = run.plan.epochs - len(run.rows)
                if run.status == "pending":
                    queued.append(start + run.plan.epochs * epoch + tail)
                    continue
                if run.new_rows:
                    since = now - run.last_row_seen
                    if left > 0:
                        busy.append(max(epoch - since, 0.0) + (left - 1) * epoch + tail)
                    else:
                        busy.append(max(tail - since, 0.0))
                else:  # still starting, or in its first epoch
                    since = now - run.started
                    busy.append(max(start + epoch - since, 0.0) + max(left - 1, 0) * epoch
                                + tail)
            slots = sorted(busy) + [0.0] * max(self.slots - len(busy), 0)
            for duration in queued:  # each waiting run goes to the slot free first
                i = min(range(len(slots)), key=slots.__getitem__)
                slots[i] += duration
            return (max(slots) if slots else 0.0) + self.report_seconds()

    def fraction(self) -> float:
        """The share of the suite's estimated time that has passed."""
        left = self.remaining()
        if left is None:
            return 0.0
        elapsed = self.clock() - self.t0
        return elapsed / (elapsed + left) if elapsed + left > 0 else 1.0

    # ------------------------------------------------------------ output
    def _status(self, final: bool = False) -> str:
        elapsed = self.clock() - self.t0
        left = self.remaining()
        parts = [f"{_clock_text(elapsed)} elapsed"
                 + ("" if final else f", ~{_clock_text(left)} left" if left is not None
                    else ", estimating time left")]
        counted = [r for r in self.runs if r.status != "skipped"]
        done_images = sum(r.plan.cost if r.status == "done" else len(r.rows) * r.images
                          for r in counted)
        total_images = sum(r.plan.cost for r in counted)
        running = [r for r in self.runs if r.status == "running"]
        if self.report_started is not None:
            parts.append("report" + (" done" if final else ""))
        elif running:
            parts += [f"run {r.index}/{len(self.runs)} {r.plan.run_dir.name} epoch "
                      f"{min(len(r.rows) + 1, r.plan.epochs)}/{r.plan.epochs}"
                      for r in running[:3]]
            if len(running) > 3:
                parts.append(f"{len(running) - 3} more running")
        parts.append(f"{_count(done_images)}/{_count(total_images)} images")
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
