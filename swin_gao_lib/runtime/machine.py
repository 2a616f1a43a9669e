"""The machine a run ran on: versions, device, commit, peak memory; quiet start-up, threads.

Keras and its backend are imported inside the functions that need them (a JAX
run never imports TensorFlow).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

from swin_gao_lib.runtime.backend import backend_version, gpu_names

# ------------------------------------------------------------------ environment
#: The commit a copy of the tree was made from, where its ``.git`` is absent or stale (the
#: GPU machine gets the working tree; ``benchmarks/gpu/run.sh`` sets it from ``GIT_COMMIT``).
COMMIT_ENV = "SWIN_GAO_COMMIT"


def git_commit(start: str | os.PathLike | None = None) -> str | None:
    """The commit checked out at ``start`` (default: cwd), ``+dirty`` if modified.

    ``$SWIN_GAO_COMMIT``, when set, is the answer: the caller vouches for the tree.
    """
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    cwd = str(start or Path.cwd())
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                             text=True, timeout=10)
        if sha.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=cwd, capture_output=True, text=True, timeout=10)
        return sha.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Versions, backend, device and commit: what another person needs to repeat a run.

    Only the backend in use is imported (a JAX run never loads TensorFlow).
    """
    import keras
    import numpy

    name = keras.backend.backend()
    version, gpus = backend_version(name), gpu_names(name)
    return {
        "python": platform.python_version(),
        name: version,  # the backend's version under its own name too (records of TF runs)
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "keras_backend": name, "backend_version": version, "gpus": gpus,
        "device": gpus[0] if gpus else f"CPU: {_cpu_name()}",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "git_commit": git_commit(Path(__file__).resolve().parent) or git_commit(),
        "argv": sys.argv,
    }


# ------------------------------------------------------------------ quiet start-up
def has_nvidia_device() -> bool:
    """Whether this machine shows an NVIDIA GPU (device files, driver, or nvidia-smi)."""
    import shutil

    return (any(Path("/dev").glob("nvidia[0-9]*")) or Path("/proc/driver/nvidia").exists()
            or shutil.which("nvidia-smi") is not None)


def quiet_tensorflow() -> None:
    """Keep TensorFlow's start-up chatter, which reads like failure, out of the output.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` (unless set): C++ INFO and WARNING lines go, and
    without an NVIDIA GPU the ERROR lines too (a harmless "failed call to cuInit").
    Call it before TensorFlow is imported; kernels started later inherit it. From
    TensorFlow 2.21 its libraries log through absl before reading that variable,
    so ``import tensorflow`` runs with file descriptor 2 captured and only the
    lines the level keeps are written back (:func:`tensorflow_log_filter`).
    """
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_device() else "3")
    if ("tensorflow" not in sys.modules and level.strip() in ("1", "2", "3")
            and not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path)):
        sys.meta_path.insert(0, _QuietTensorFlowImport(int(level)))


#: A TensorFlow/absl C++ log line: absl's ``I0000 00:00:...`` or TensorFlow's own
#: ``2026-01-01 12:00:00.000000: I tensorflow/...``; the letter is the severity.
_TF_LOG = re.compile(r"^(?:([IWEF])\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+:\d+\]"
                     r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: ([IWEF]) \S+:\d+\])")
_ABSL_PREAMBLE = ("WARNING: All log messages before absl::InitializeLog() is called are "
                  "written to STDERR")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def tensorflow_log_filter(text: str, level: int) -> str:
    """``text`` without the TensorFlow C++ log lines below ``level`` (``TF_CPP_MIN_LOG_LEVEL``).

    A line of any other kind (a Python traceback, a crash report) is kept.
    """
    kept = []
    for line in text.splitlines(keepends=True):
        match = _TF_LOG.match(line)
        if line.startswith(_ABSL_PREAMBLE) and level >= 1:
            continue
        if match and _SEVERITY[match.group(1) or match.group(2)] < level:
            continue
        kept.append(line)
    return "".join(kept)


class _QuietTensorFlowImport:
    """A one-shot import hook: ``import tensorflow`` with stderr filtered (see quiet_tensorflow)."""

    def __init__(self, level: int):
        self.level = level

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one import only; the real finders do the finding
        import importlib.util

        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:  # a loader made for this import
            exec_module, level = spec.loader.exec_module, self.level

            def filtered(module):
                with _stderr_filtered(level):
                    exec_module(module)

            spec.loader.exec_module = filtered
        return spec


@contextlib.contextmanager
def _stderr_filtered(level: int):
    """Capture file descriptor 2 (C++ and Python alike) and write back what the level keeps."""
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = tensorflow_log_filter(capture.read().decode("utf-8", "replace"), level)
            if kept:
                os.write(2, kept.encode())


class _KernelShutdownFilter(logging.Filter):
    """Drops the kernel's "KeyboardInterrupt caught in kernel" record.

    jupyter_client interrupts the kernel (SIGINT) before shutting it down at the
    end of a papermill run; a signal landing in the wrong instant makes ipykernel
    log this line. A user's interrupt inside a cell is shown in the cell instead.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("KeyboardInterrupt caught in kernel")


def quiet_notebook() -> None:
    """A notebook's quiet start: :func:`quiet_tensorflow`, and no kernel shutdown-race line."""
    quiet_tensorflow()
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    log = getattr(kernel, "log", None)
    if isinstance(log, logging.Logger) and not any(
            isinstance(f, _KernelShutdownFilter) for f in log.filters):
        log.addFilter(_KernelShutdownFilter())


# ------------------------------------------------------------------ process lifetime
#: Set in a Dask task's environment: its helper and kernel die with their parent.
DIE_WITH_PARENT = "SWIN_GAO_DIE_WITH_PARENT"


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (``PR_SET_PDEATHSIG``).

    A Dask task's helper and kernel must not outlive a killed worker (a retry
    writes the same scratch folder). Elsewhere (macOS, Windows) it does nothing.
    """
    import ctypes
    import signal

    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


# ------------------------------------------------------------------ threads
def thread_environment(cpus: int) -> dict[str, str]:
    """Environment variables that hold TensorFlow and OpenMP (and, at one thread, XLA's
    CPU backend, added to ``XLA_FLAGS``) to ``cpus`` threads."""
    env = {"TF_NUM_INTRAOP_THREADS": str(cpus), "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": str(cpus)}
    if cpus == 1:
        flags = os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
        env["XLA_FLAGS"] = flags.strip()
    return env


# ------------------------------------------------------------------ memory
class PeakMemory:
    """Peak memory of the part of the process that follows :meth:`reset`.

    On a GPU the backend allocator's peak (JAX's cannot be reset: the process's);
    on CPU the resident-set high-water mark (VmHWM, reset through
    ``/proc/self/clear_refs``, else the lifetime ``ru_maxrss``). :meth:`reset`
    notes the idle level, so :meth:`describe` gives the increase over it too.
    """

    def __init__(self):
        import keras

        self.backend = keras.backend.backend()
        self.kind = "gpu" if gpu_names() else "cpu_rss"
        self.reset_ok = False
        self.idle_mib: float | None = None

    def reset(self) -> None:
        """Start measuring here (and note the idle level)."""
        if self.kind == "gpu":
            if self.backend == "tensorflow":  # JAX keeps its peak for the process's lifetime
                import tensorflow as tf

                tf.config.experimental.reset_memory_stats("GPU:0")
            self.reset_ok = self.backend == "tensorflow"
            self.idle_mib = self._device_mib()["current"]
            return
        self.idle_mib = _status_mib("VmRSS:")
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset_ok = True
        except OSError:
            self.reset_ok = False

    def peak_mib(self) -> float:
        """The peak since :meth:`reset` (see the class doc for what it is)."""
        if self.kind == "gpu":
            return self._device_mib()["peak"]
        peak = _status_mib("VmHWM:")
        if peak is not None:
            return peak
        # ru_maxrss is KiB on Linux, bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024

    def _device_mib(self) -> dict[str, float]:
        """The first GPU's allocator numbers: ``current`` and ``peak`` MiB."""
        if self.backend == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return {"current": stats.get("bytes_in_use", 0) / 2**20,
                    "peak": stats.get("peak_bytes_in_use", 0) / 2**20}
        import tensorflow as tf

        info = tf.config.experimental.get_memory_info("GPU:0")
        return {"current": info["current"] / 2**20, "peak": info["peak"] / 2**20}

    def label(self) -> str:
        """What :meth:`peak_mib` measures, in words, naming the backend."""
        if self.kind == "gpu":
            name = "TensorFlow GPU:0" if self.backend == "tensorflow" else "JAX device 0"
            return f"{name} allocator peak"
        return f"process resident-set high-water mark (VmHWM), {self.backend} backend"

    def describe(self) -> dict[str, Any]:
        """Peak, its increase over the idle level at :meth:`reset`, and what they measure."""
        peak = self.peak_mib()
        increase = None if self.idle_mib is None else round(peak - self.idle_mib, 1)
        return {"peak_memory_mib": round(peak, 1), "peak_memory_increase_mib": increase,
                "peak_memory_kind": self.label(),
                "peak_memory_reset_at_start": self.reset_ok}


def _status_mib(field: str) -> float | None:
    """A ``/proc/self/status`` line in MiB (``VmRSS:``, ``VmHWM:``), None where there is none."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return None
