"""The machine a run ran on: versions, device, commit, and peak memory.

Keras and its backend are imported inside the functions that need them, so
importing this module stays cheap (and a JAX run never imports TensorFlow).
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any


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
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """Names of the visible GPUs, as the Keras backend in use reports them."""
    from swin_gao_lib.runtime.backend import gpu_names as backend_gpus

    return backend_gpus()


def environment() -> dict[str, Any]:
    """Versions, backend, device and commit: what another person needs to repeat a run.

    Only the backend in use is imported (a JAX run never loads TensorFlow).
    """
    import keras
    import numpy

    from swin_gao_lib.runtime.backend import describe_backend

    backend = describe_backend(keras.backend.backend())
    gpus = backend["gpus"]
    return {
        "python": platform.python_version(),
        # the backend's version under its own name, as before (records of TF runs)
        backend["keras_backend"]: backend["backend_version"],
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        **backend,
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

    Its C++ INFO and WARNING lines always; on a machine without an NVIDIA GPU also
    its C++ ERROR lines, the first of which is a certain and harmless "failed call
    to cuInit ... CUDA error" (TensorFlow logs nothing finer to filter on). Python
    exceptions and warnings are untouched, and an explicit ``TF_CPP_MIN_LOG_LEVEL``
    wins. Call it before TensorFlow is imported (kernels started afterwards
    inherit it).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if has_nvidia_device() else "3")


# ------------------------------------------------------------------ process lifetime
#: Set in a Dask task's environment: its helper and kernel die with their parent.
DIE_WITH_PARENT = "SWIN_GAO_DIE_WITH_PARENT"


def die_with_parent() -> None:
    """Ask Linux to kill this process when its parent dies (``PR_SET_PDEATHSIG``).

    A Dask task runs a notebook in a helper process whose kernel trains; if the
    worker is killed, neither may go on writing the run's scratch folder behind
    a retry's back. Elsewhere (macOS, Windows) it does nothing.
    """
    import ctypes
    import signal

    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except OSError:
        pass


# ------------------------------------------------------------------ threads
def thread_environment(cpus: int) -> dict[str, str]:
    """Environment variables that hold TensorFlow and OpenMP to ``cpus`` threads.

    TensorFlow reads ``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS`` when
    it starts; with one thread, XLA's CPU backend is kept single-threaded too
    (appended to any ``XLA_FLAGS`` already set).
    """
    env = {"TF_NUM_INTRAOP_THREADS": str(cpus), "TF_NUM_INTEROP_THREADS": "1",
           "OMP_NUM_THREADS": str(cpus)}
    if cpus == 1:
        env["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false").strip()
    return env


# ------------------------------------------------------------------ memory
class PeakMemory:
    """Peak memory of the part of the process that follows :meth:`reset`.

    On a GPU: the backend's device allocator peak (TensorFlow's
    ``get_memory_info``, reset at the start; JAX's ``memory_stats()``
    ``peak_bytes_in_use``, which JAX cannot reset: its peak is the process's).
    On CPU: the process's resident-set high-water mark (VmHWM); Linux lets a
    process reset it by writing ``5`` to ``/proc/self/clear_refs``, otherwise
    the lifetime peak (``ru_maxrss``) is reported and ``reset`` says so.
    :meth:`reset` also notes the idle level (allocator in use, or RSS) so
    that :meth:`describe` can give the increase over it.
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
            from swin_gao_lib.runtime.backend import device_memory_mib, reset_device_peak

            self.reset_ok = reset_device_peak(self.backend)
            self.idle_mib = device_memory_mib(self.backend)["current"]
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
            from swin_gao_lib.runtime.backend import device_memory_mib

            return device_memory_mib(self.backend)["peak"]
        peak = _status_mib("VmHWM:")
        if peak is not None:
            return peak
        # ru_maxrss is KiB on Linux, bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024

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
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None
