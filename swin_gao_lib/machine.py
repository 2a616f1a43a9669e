"""The machine a run ran on: versions, device, commit, and peak memory.

TensorFlow is imported inside the functions that need it, so importing this
module stays cheap.
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
def git_commit(start: str | os.PathLike | None = None) -> str | None:
    """The commit checked out at ``start`` (default: cwd), ``+dirty`` if modified."""
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
    """Names of the visible GPUs, as TensorFlow reports them."""
    import tensorflow as tf

    names = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        names.append(details.get("device_name", dev.name))
    return names


def environment() -> dict[str, Any]:
    """Versions, device and commit: what another person needs to repeat a run."""
    import keras
    import numpy
    import tensorflow as tf

    gpus = gpu_names()
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "keras_backend": keras.backend.backend(),
        "device": gpus[0] if gpus else f"CPU: {_cpu_name()}",
        "gpus": gpus,
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

    On a GPU: TensorFlow's device allocator peak (``get_memory_info``), reset
    at the start. On CPU: the process's resident-set high-water mark (VmHWM);
    Linux lets a process reset it by writing ``5`` to
    ``/proc/self/clear_refs``, otherwise the lifetime peak
    (``ru_maxrss``) is reported and ``reset`` says so.
    """

    def __init__(self):
        self.kind = "gpu" if gpu_names() else "cpu_rss"
        self.reset_ok = False

    def reset(self) -> None:
        if self.kind == "gpu":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
            self.reset_ok = True
            return
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset_ok = True
        except OSError:
            self.reset_ok = False

    def peak_mib(self) -> float:
        if self.kind == "gpu":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        try:
            for line in Path("/proc/self/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        # ru_maxrss is KiB on Linux, bytes on macOS.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 1024

    def describe(self) -> dict[str, Any]:
        what = ("TensorFlow GPU:0 allocator peak" if self.kind == "gpu"
                else "process resident-set high-water mark (VmHWM)")
        return {"peak_memory_mib": round(self.peak_mib(), 1), "peak_memory_kind": what,
                "peak_memory_reset_at_start": self.reset_ok}
