"""Run a suite on Dask distributed: a local cluster on 127.0.0.1, or any existing cluster.

Each run is one Dask task (:mod:`swin_gao_lib.runs.dask_task`) that executes
``notebooks/train.ipynb`` as the sequential runner does, in a scratch folder on
its worker. The driver writes into the suite's folder each run's checkpoint as
it is made (so a killed driver's runs resume on the next start) and its files
when it ends, ``metrics.json`` last: no shared filesystem is needed. A run whose
kernel or worker dies is retried (``retries``); one that fails on its own is
not. Runs are handed out only as slots (worker threads, or GPU shares) free up,
since Dask would queue runs of uneven length behind one busy worker. Each run
gets ``gpus_per_run`` of a card (its kernel sees only its worker's card, memory
grown on demand) or ``cpus_per_run`` backend threads. docs/distributed.md tells more.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from swin_gao_lib.config import to_yaml
from swin_gao_lib.files import atomic_write_bytes
from swin_gao_lib.records import (CHECKPOINT, CHECKPOINT_FILE, CONFIG, LOCK, METRICS, NOTEBOOK,
                                  RunFolder)
from swin_gao_lib.runs import scratch
from swin_gao_lib.runs.dask_task import queue_name, read_tree, run_task


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


# ---------------------------------------------------------------- driver
def _cluster(options: DaskOptions, local_directory: Path):
    """A client of the cluster the options name (a new LocalCluster on 127.0.0.1 by default,
    its workers' space in ``local_directory``)."""
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
    # The workers' space and the scheduler's (its temporary-directory): Dask's folders and
    # lock files, which a killed driver would leave in $TMPDIR, live in the driver's scratch.
    space = dict(local_directory=str(local_directory), dashboard_address=None, processes=True,
                 host="127.0.0.1")
    with dask.config.set({"temporary-directory": str(local_directory)}):
        if options.gpus_per_run:
            gpus = _visible_gpus()
            cluster = LocalCluster(n_workers=max(len(gpus), 1), resources={"GPU": 1},
                                   threads_per_worker=max(1, math.floor(1 / options.gpus_per_run)),
                                   **space)
        else:
            cluster = LocalCluster(n_workers=options.workers, threads_per_worker=1, **space)
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
    return {rel: data for rel, data in read_tree(folder.path).items()
            if rel not in (NOTEBOOK, LOCK) and not rel.startswith(".")}


def slots(client, options: DaskOptions) -> int:
    """How many runs the cluster runs at once: worker threads, or GPU shares on GPU runs."""
    total = 0
    for worker in client.scheduler_info()["workers"].values():
        threads = worker.get("nthreads", 1)
        if options.gpus_per_run:
            gpu = worker.get("resources", {}).get("GPU", 0)
            threads = min(threads, math.floor(gpu / options.gpus_per_run + 1e-9))
        total += threads
    return max(total, 1)


def run_on_dask(plans: list, train_nb: Path, *, force: bool, options: DaskOptions,
                kernel_name: str | None = None, progress=None, dead_tokens=(),
                on_token: Callable[[str], Any] | None = None,
                token: str | None = None) -> list[tuple[Any, str | None]]:
    """Run ``plans`` on Dask; write each run's checkpoints and, at its end, its files.

    ``progress``: a ``SuiteProgress`` told when runs start and end;
    ``dead_tokens``: a dead driver's scratch, removed from every worker first;
    ``on_token`` gets this start's token (the suite's lock records it);
    ``token``: the driver's own, if any. Returns ``(plan, error)`` per run,
    ``error`` None on success.
    """
    from distributed import Queue, as_completed

    token = token or scratch.new_token()
    driver = scratch.this_driver()
    client, cluster = _cluster(options, scratch.mark(token, driver) / scratch.DASK_DIR)
    if on_token is not None:
        on_token(token)
    notebook = train_nb.read_bytes()
    # CPU runs see no GPU; on a local cluster worker i's runs see card i (looked up in the
    # task by the worker's name, which a restarted worker keeps); on a cluster of your own
    # each worker was started with its card and its runs keep it.
    gpus = (None if not options.gpus_per_run else _visible_gpus() if cluster is not None else [])
    by_name = {RunFolder(p.run_dir).name: p for p in plans}
    futures, outcomes, written, ended = {}, [], {}, set()
    try:
        _on_workers(client, scratch.clean_dead, list(dead_tokens))
        queue = Queue(queue_name(token), client=client)
        waiting = list(plans)
        pending = as_completed(loop=client.loop)

        def submit_while_free() -> None:
            free = slots(client, options) - (len(futures) - len(ended))
            while waiting and free > 0:
                plan = waiting.pop(0)
                folder = RunFolder(plan.run_dir)
                key = hashlib.sha256(f"{plan.run_dir}|{token}".encode()).hexdigest()[:16]
                resources = {"GPU": options.gpus_per_run} if options.gpus_per_run else None
                future = client.submit(
                    _task_on_worker, notebook, to_yaml(plan.config), folder.name,
                    _shipped(folder, force), token, key, driver, options.cpus_per_run, gpus,
                    kernel_name, resources=resources, retries=options.retries, pure=False,
                    key=f"run-{folder.name}-{key}")
                futures[future] = plan
                pending.add(future)
                free -= 1

        def drain() -> None:
            try:
                messages = queue.get(batch=True, timeout=5) if queue.qsize() else []
            except Exception:  # nothing there after all, or the scheduler is going
                messages = []
            for message in messages:
                plan = by_name.get(message.get("run"))
                if plan is None or message["run"] in ended:
                    continue  # a late message of a run already written back
                if message.get("event") == "start" and progress is not None:
                    progress.start(plan)
                elif message.get("event") == "checkpoint":
                    epoch = message.get("epoch") or 0
                    if epoch > written.get(message["run"], 0):
                        write_checkpoint(RunFolder(plan.run_dir), plan, message["files"])
                        written[message["run"]] = epoch

        submit_while_free()
        while not pending.is_empty():
            drain()
            if not pending.has_ready():
                time.sleep(0.5)
                continue
            for future in pending.next_batch(block=False):
                drain()  # what the task sent before it returned
                plan = futures[future]
                ended.add(RunFolder(plan.run_dir).name)
                try:
                    result = future.result()
                    error = result["error"]
                    _write_back(RunFolder(plan.run_dir), plan, result["files"])
                except Exception as exc:  # retries used up: KernelDied, KilledWorker
                    error = f"{type(exc).__name__}: {exc}"
                outcomes.append((plan, error))
                if progress is not None:
                    progress.finish(plan, ok=error is None)
            submit_while_free()
    finally:
        if cluster is None:  # workers of a cluster of your own remove their scratch
            _on_workers(client, scratch.remove, token)
        client.close()
        if cluster is not None:
            cluster.close()
        scratch.remove(token)  # this machine's: a local cluster's workers', once they stopped
    return outcomes


def _on_workers(client, function, *args) -> None:
    """Run a clean-up on every worker (best effort: a worker that is gone has nothing left)."""
    with contextlib.suppress(Exception):
        client.run(function, *args)


def _task_on_worker(notebook, config_yaml, run_name, shipped, token, key, driver, cpus, gpus,
                    kernel_name):
    from distributed import get_worker

    name = str(get_worker().name)
    if gpus is None:
        gpu = ""  # a CPU run
    elif gpus and name.isdigit():
        gpu = gpus[int(name) % len(gpus)]
    else:
        gpu = None  # keep the worker's own CUDA_VISIBLE_DEVICES
    return run_task(notebook, config_yaml, run_name, shipped, token, key, driver, cpus, gpu,
                    kernel_name)


def write_checkpoint(folder: RunFolder, plan, files: dict[str, bytes]) -> None:
    """Keep a running run's newest checkpoint (and history) in the driver's run folder,
    written as the run writes it, so the folder always holds one usable checkpoint."""
    if folder.complete:  # --force re-runs it: its old records go first, as train() does
        folder.clear()
    folder.path.mkdir(parents=True, exist_ok=True)
    if not (folder.path / CONFIG).is_file():
        atomic_write_bytes(folder.path / CONFIG, to_yaml(plan.config).encode())
    state = f"{CHECKPOINT}/state.json"
    # the records, the variables file, then state.json (the commit point)
    for rel in sorted(files, key=lambda r: (r.startswith(f"{CHECKPOINT}/"), r == state, r)):
        atomic_write_bytes(folder.path / rel, files[rel])
    keep = {rel.split("/", 1)[1] for rel in files if rel.startswith(f"{CHECKPOINT}/")}
    for old in folder.checkpoint.iterdir():
        if old.name not in keep and CHECKPOINT_FILE.fullmatch(old.name):
            old.unlink(missing_ok=True)


def _write_back(folder: RunFolder, plan, files: dict[str, bytes]) -> None:
    """Write a finished run's files under the driver's output folder, atomically, marker last."""
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.clear()  # the run's own records (and checkpoint) are replaced by what came back
    files = {**files, CONFIG: to_yaml(plan.config).encode()}  # the driver's paths
    for rel in sorted(files, key=lambda r: (r == METRICS, r)):  # metrics.json, the marker, last
        atomic_write_bytes(folder.path / rel, files[rel])
