"""Run a suite on Dask distributed: a local cluster on 127.0.0.1, or any existing cluster.

Each run is one Dask task that executes ``notebooks/train.ipynb`` through
papermill exactly as the sequential runner does (its own kernel process, the
same resolved config and seed). Records need no shared filesystem: the task
works in a scratch folder on its worker and sends the run folder's files back
(they are small); the driver writes them atomically under the suite's output
folder as each run finishes, so an interrupted driver loses no finished run.

Faults. A run whose kernel or worker dies (killed, out of memory, node lost)
is tried again, up to ``retries`` times, and resumes from its last finished
epoch when the retry lands on the same machine (the scratch folder is
per machine and user, keyed by the run and this driver's start; a kernel left
from the try before is stopped first, so one process writes a run at a time); on another machine
without a shared filesystem it starts over. A run that fails on its own (bad
data, divergence) is not retried: its ``failure.json`` and executed notebook
come back like any record and it is listed at the end.

Resources. Workers advertise ``GPU`` and runs ask for ``gpus_per_run`` of one
(0.25 lets four small runs share a card); each run's kernel sees only its
worker's card (``CUDA_VISIBLE_DEVICES``) and grows its GPU memory on demand
(TensorFlow's ``TF_FORCE_GPU_ALLOW_GROWTH``; JAX without preallocation). On
CPU each run gets ``cpus_per_run`` cores: the backends' intra-op threads (and
OpenMP's) are set to match, inter-op threads to 1, so runs do not
oversubscribe the machine.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swin_gao_lib.config import to_yaml
from swin_gao_lib.runs.execute import error_text, execute_notebook, progress_bar
from swin_gao_lib.runtime.machine import DIE_WITH_PARENT, die_with_parent, quiet_tensorflow, thread_environment
from swin_gao_lib.files import atomic_write_bytes
from swin_gao_lib.records import CONFIG, LOCK, METRICS, NOTEBOOK, RunFolder

#: Exit status of the execute helper when the kernel died: the run may be retried.
KERNEL_DIED = 3


@dataclass(frozen=True)
class DaskOptions:
    """How ``run-all --executor dask`` spreads a suite."""

    scheduler: str | None = None  # tcp://host:port of a running cluster; None: a LocalCluster
    workers: int = 2              # LocalCluster worker processes (one run each at a time on CPU)
    gpus_per_run: float = 0.0     # fraction of a GPU each run asks for; 0: CPU runs
    cpus_per_run: int = 1         # cores (backend threads) per run
    retries: int = 2              # further tries of a run whose kernel or worker died


def require_dask() -> None:
    """Fail early, as bad input, when Dask is not installed."""
    import importlib.util

    from swin_gao_lib.errors import InputError

    if importlib.util.find_spec("distributed") is None:
        raise InputError("--executor dask needs Dask: pip install 'dask[distributed]' (or the "
                         "kit's extra: pip install 'swin-gao[dask]')")


class KernelDied(RuntimeError):
    """The run's kernel (or the process running it) died: a fault of the machine, not the run."""


def _read_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def run_task(notebook: bytes, config_yaml: str, run_name: str, shipped: dict[str, bytes],
             scratch_key: str, cpus: int, gpu: str | None, kernel_name: str | None) -> dict[str, Any]:
    """Execute one run on a worker; return its run folder's files (the Dask task).

    ``shipped`` holds the files of an unfinished run from the driver's output
    folder (config, history, checkpoint), so the run resumes. A retry of this
    task on the same machine finds the scratch folder of the try before and
    resumes from it.

    ``gpu`` is the ``CUDA_VISIBLE_DEVICES`` of the run's kernel ("" for none);
    None keeps the worker's.

    Raises:
        KernelDied: the kernel died; Dask tries the task again (``retries``).
    """
    from swin_gao_lib.config import from_yaml

    root = Path(tempfile.gettempdir()) / f"swin-gao-dask-{os.getuid()}" / scratch_key
    out = root / "runs"
    run_dir = out / run_name
    _stop_earlier_try(run_dir)
    if not root.exists():  # the first try: start from what the driver holds
        run_dir.mkdir(parents=True)
        for rel, data in shipped.items():
            (run_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / rel).write_bytes(data)
    # The same run, recorded under the scratch folder; the driver writes its own config back.
    local_yaml = to_yaml(dataclasses.replace(from_yaml(config_yaml), output_dir=str(out)))
    if (run_dir / CONFIG).exists():
        (run_dir / CONFIG).write_text(local_yaml)
    source = root / "train.ipynb"
    source.write_bytes(notebook)
    quiet_tensorflow()
    env = dict(os.environ, **thread_environment(cpus), TF_FORCE_GPU_ALLOW_GROWTH="true",
               XLA_PYTHON_CLIENT_PREALLOCATE="false", **{DIE_WITH_PARENT: "1"})
    if gpu is not None:  # None: keep the worker's own (a worker started per card)
        env["CUDA_VISIBLE_DEVICES"] = gpu
    request = json.dumps({"source": str(source), "target": str(run_dir / NOTEBOOK),
                          "cwd": str(root), "kernel_name": kernel_name,
                          "parameters": {"config_yaml": local_yaml, "overwrite": False},
                          "parent": os.getpid()})
    # The helper dies with this worker, and its kernel with the helper (DIE_WITH_PARENT).
    proc = subprocess.run([sys.executable, "-m", "swin_gao_lib.runs.dask_runner", request], env=env,
                          capture_output=True, text=True)
    if proc.returncode == KERNEL_DIED or proc.returncode < 0:
        raise KernelDied(f"{run_name}: the kernel died (exit {proc.returncode}); "
                         f"{proc.stderr.strip().splitlines()[-1:] or ''}")
    # A failed run keeps its checkpoint (a later start resumes from it); a complete one has none.
    files = _read_tree(run_dir)
    error = None
    if proc.returncode:
        lines = proc.stderr.strip().splitlines()
        error = lines[-1] if lines else f"exit {proc.returncode}"
    shutil.rmtree(root, ignore_errors=True)
    return {"ok": proc.returncode == 0, "error": error, "files": files}


def _stop_earlier_try(run_dir: Path, timeout: float = 60.0) -> None:
    """Stop the kernel of an earlier try of this task that still holds the run folder.

    Only a try of this very task (same run, same driver start) can hold this
    scratch folder's lock: a kernel orphaned when its worker was killed. It is
    stopped, so one writer at a time continues the run.
    """
    import fcntl
    import signal

    lock = run_dir / LOCK
    if not lock.is_file():
        return
    deadline = time.monotonic() + timeout
    with open(lock, "a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(handle, fcntl.LOCK_UN)
                return
            except OSError:
                handle.seek(0)
                pid = handle.read().strip()
                if pid.isdigit():
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except OSError:
                        pass
                if time.monotonic() > deadline:
                    raise KernelDied(f"{run_dir.name}: an earlier try still holds {lock}")
                time.sleep(0.5)


def _execute(request: dict[str, Any]) -> int:
    """Run one notebook with papermill (in the task's subprocess, with its environment)."""
    die_with_parent()  # armed in the child itself (preexec_fn is unsafe in a threaded worker)
    if os.getppid() != request["parent"]:  # the worker died before that: nothing to do
        return KERNEL_DIED
    from nbclient.exceptions import DeadKernelError

    try:
        execute_notebook(request["source"], request["target"], cwd=request["cwd"],
                         parameters=request["parameters"], kernel_name=request["kernel_name"])
    except DeadKernelError as exc:
        print(error_text(exc), file=sys.stderr)
        return KERNEL_DIED
    except Exception as exc:  # the notebook's own error (papermill re-raises it)
        print(error_text(exc), file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------- driver
def _cluster(options: DaskOptions):
    """A client of the cluster the options name (a new LocalCluster on 127.0.0.1 by default)."""
    import dask
    from distributed import Client, LocalCluster

    # A task whose worker dies is rescheduled this many times before it is given up.
    dask.config.set({"distributed.scheduler.allowed-failures": options.retries})
    if options.scheduler:
        from swin_gao_lib.errors import InputError

        try:
            return Client(options.scheduler, timeout="30s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise InputError(f"--scheduler {options.scheduler}: cannot connect ({exc}); is the "
                             "scheduler running, and is the address tcp://host:port?") from None
    if options.gpus_per_run:
        gpus = _visible_gpus()
        cluster = LocalCluster(n_workers=max(len(gpus), 1), host="127.0.0.1", processes=True,
                               threads_per_worker=max(1, math.floor(1 / options.gpus_per_run)),
                               resources={"GPU": 1}, dashboard_address=None)
    else:
        cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
    return Client(cluster), cluster


def _visible_gpus() -> list[str]:
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
        return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]
    except (OSError, subprocess.SubprocessError):
        return []




def _shipped(folder: RunFolder, force: bool) -> dict[str, bytes]:
    """The files of an unfinished run the driver holds, for the task to resume from."""
    if force or not folder.path.is_dir() or folder.complete:
        return {}
    return {rel: data for rel, data in _read_tree(folder.path).items() if rel != NOTEBOOK}


def run_on_dask(plans: list, train_nb: Path, *, force: bool, options: DaskOptions,
                kernel_name: str | None = None, progress: bool = True) -> list[tuple[Any, str | None]]:
    """Run ``plans`` (the runs still to do) on Dask; write each run's files as it finishes.

    Returns ``(plan, error)`` per run, ``error`` None on success.
    """
    from distributed import as_completed

    client, cluster = _cluster(options)
    token = uuid.uuid4().hex[:12]  # this driver's start: retries share it, a new start does not
    notebook = train_nb.read_bytes()
    # CPU runs see no GPU; on a local cluster worker i's runs see card i (looked up in the
    # task by the worker's name, which a restarted worker keeps); on a cluster of your own
    # each worker was started with its card and its runs keep it.
    gpus = (None if not options.gpus_per_run else _visible_gpus() if cluster is not None else [])
    futures, outcomes = {}, []
    try:
        for plan in plans:
            folder = RunFolder(plan.run_dir)
            key = hashlib.sha256(f"{plan.run_dir}|{token}".encode()).hexdigest()[:16]
            resources = {"GPU": options.gpus_per_run} if options.gpus_per_run else None
            future = client.submit(
                _task_on_worker, notebook, to_yaml(plan.config), folder.name,
                _shipped(folder, force), key, options.cpus_per_run, gpus, kernel_name,
                resources=resources, retries=options.retries, pure=False,
                key=f"run-{folder.name}-{key}")
            futures[future] = plan
        bar = progress_bar(plans, "run-all (dask)", progress)
        failed = 0
        for future in as_completed(futures):
            plan = futures[future]
            try:
                result = future.result()
                error = result["error"]
                _write_back(RunFolder(plan.run_dir), plan, result["files"])
            except Exception as exc:  # retries used up: KernelDied, KilledWorker
                error = f"{type(exc).__name__}: {exc}"
            outcomes.append((plan, error))
            failed += error is not None
            running = _running(client)
            bar.update(plan.cost)
            bar.set_postfix_str(f"done {len(outcomes) - failed}/{len(plans)}, running {running}, "
                                f"failed {failed}")
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return outcomes


def _running(client) -> int:
    """Runs executing now: each worker runs at most its thread count of the tasks it holds."""
    threads = {a: w.get("nthreads", 1) for a, w in client.scheduler_info()["workers"].items()}
    return sum(min(len(tasks), threads.get(a, 1)) for a, tasks in client.processing().items())


def _task_on_worker(notebook, config_yaml, run_name, shipped, key, cpus, gpus, kernel_name):
    from distributed import get_worker

    name = str(get_worker().name)
    if gpus is None:
        gpu = ""  # a CPU run
    elif gpus and name.isdigit():
        gpu = gpus[int(name) % len(gpus)]
    else:
        gpu = None  # keep the worker's own CUDA_VISIBLE_DEVICES
    return run_task(notebook, config_yaml, run_name, shipped, key, cpus, gpu, kernel_name)


def _write_back(folder: RunFolder, plan, files: dict[str, bytes]) -> None:
    """Write a finished run's files under the driver's output folder, atomically, marker last."""
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.clear()  # the run's own records (and checkpoint) are replaced by what came back
    files = dict(files)
    files[CONFIG] = to_yaml(plan.config).encode()  # the driver's paths, as the sequential runner
    marker = files.pop(METRICS, None)
    for rel, data in sorted(files.items()):
        atomic_write_bytes(folder.path / rel, data)
    if marker is not None:  # written last: its presence marks the run complete
        atomic_write_bytes(folder.path / METRICS, marker)


if __name__ == "__main__":
    sys.exit(_execute(json.loads(sys.argv[1])))
