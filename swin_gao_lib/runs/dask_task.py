"""The worker's side of ``run-all --executor dask``: one run as one Dask task.

:func:`run_task` executes ``notebooks/train.ipynb`` through papermill in a
helper process (``python -m swin_gao_lib.runs.dask_task``) in a scratch folder
of its worker (:mod:`swin_gao_lib.runs.scratch`), sends the driver each new
checkpoint while the run goes on, and returns the run folder's files when it
ends. The driver's side is :mod:`swin_gao_lib.runs.dask_runner`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from swin_gao_lib.config import to_yaml
from swin_gao_lib.records import CHECKPOINT, CONFIG, HISTORY, LEARNING_RATES, LOCK, NOTEBOOK
from swin_gao_lib.runs import scratch
from swin_gao_lib.runs.execute import error_text, execute_notebook
from swin_gao_lib.runtime.machine import (DIE_WITH_PARENT, die_with_parent, quiet_tensorflow,
                                          thread_environment)

#: Exit status of the execute helper when the kernel died: the run may be retried.
KERNEL_DIED = 3
ERROR_FILE = "error.txt"  # the helper's one-line error, beside the task's scratch run folder


class KernelDied(RuntimeError):
    """The run's kernel (or the process running it) died: a fault of the machine, not the run."""


def read_tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def run_task(notebook: bytes, config_yaml: str, run_name: str, shipped: dict[str, bytes],
             token: str, run_key: str, driver: dict[str, Any], cpus: int, gpu: str | None,
             kernel_name: str | None) -> dict[str, Any]:
    """Execute one run on a worker; return its run folder's files (the Dask task).

    ``shipped``: the files of an unfinished run the driver holds, to resume
    from (a retry on the same machine resumes from the try before's scratch
    instead). Each new checkpoint is sent to the driver. ``gpu``: the kernel's
    ``CUDA_VISIBLE_DEVICES`` ("" for none; None keeps the worker's).

    Raises:
        KernelDied: the kernel died; Dask tries the task again (``retries``).
    """
    from swin_gao_lib.config import from_yaml

    root = scratch.mark(token, driver) / run_key
    out = root / "runs"
    run_dir = out / run_name
    if not scratch.stop_holder(run_dir):
        raise KernelDied(f"{run_name}: an earlier try still holds {run_dir / LOCK}")
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
    (root / ERROR_FILE).unlink(missing_ok=True)  # a try before this one may have left its own
    quiet_tensorflow()
    env = dict(os.environ, **thread_environment(cpus), TF_FORCE_GPU_ALLOW_GROWTH="true",
               XLA_PYTHON_CLIENT_PREALLOCATE="false", **{DIE_WITH_PARENT: "1"})
    if gpu is not None:  # None: keep the worker's own (a worker started per card)
        env["CUDA_VISIBLE_DEVICES"] = gpu
    request = json.dumps({"source": str(source), "target": str(run_dir / NOTEBOOK),
                          "cwd": str(root), "kernel_name": kernel_name, "scratch": str(root),
                          "parameters": {"config_yaml": local_yaml, "overwrite": False},
                          "parent": os.getpid(), "error_file": str(root / ERROR_FILE)})
    _send(token, {"run": run_name, "event": "start"})
    # The helper dies with this worker, and its kernel with the helper (DIE_WITH_PARENT).
    with open(root / "helper.log", "w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "swin_gao_lib.runs.dask_task", request],
                                env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        sent = None
        while proc.poll() is None:
            time.sleep(1.0)
            sent = _send_checkpoint(token, run_name, run_dir, sent)
        _send_checkpoint(token, run_name, run_dir, sent)
        log.seek(0)
        stderr = log.read()
    if proc.returncode == KERNEL_DIED or proc.returncode < 0:
        raise KernelDied(f"{run_name}: the kernel died (exit {proc.returncode}); "
                         f"{failure_line(root, stderr, proc.returncode)}")
    # A failed run keeps its checkpoint (a later start resumes from it); a complete one has none.
    files = read_tree(run_dir)
    files.pop(LOCK, None)
    error = failure_line(root, stderr, proc.returncode) if proc.returncode else None
    shutil.rmtree(root, ignore_errors=True)
    return {"ok": proc.returncode == 0, "error": error, "files": files}


def failure_line(root: Path, stderr: str, returncode: int) -> str:
    """The one line that says why the helper failed: the error it wrote to
    ``root/ERROR_FILE`` (libraries may still log to stderr as the interpreter shuts
    down), else stderr's last line."""
    try:
        written = (root / ERROR_FILE).read_text().strip()
    except OSError:
        written = ""
    if written:
        return written
    lines = stderr.strip().splitlines()
    return lines[-1] if lines else f"exit {returncode}"


def queue_name(token: str) -> str:
    return f"swin-gao-{token}"


def _send(token: str, message: dict[str, Any]) -> None:
    """Tell the driver (best effort: a lost message costs only a finer progress or resume)."""
    try:
        from distributed import Queue

        Queue(queue_name(token)).put(message)
    except Exception:
        pass


def _send_checkpoint(token: str, run_name: str, run_dir: Path, sent: tuple | None) -> tuple | None:
    """Send the run's newest checkpoint, history and learning rates if changed since ``sent``.

    ``state.json`` (the commit point) is read first, then the file it names; one
    superseded while it is read is skipped (the next look sends the newer one).
    """
    state_path = run_dir / CHECKPOINT / "state.json"
    try:
        st = state_path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if stamp == sent:
            return sent
        state_bytes = state_path.read_bytes()
        state = json.loads(state_bytes)
        names = [state["variables"]] if "variables" in state else [state["weights"], state["rng"]]
        files = {f"{CHECKPOINT}/{n}": (run_dir / CHECKPOINT / n).read_bytes() for n in names}
        files[f"{CHECKPOINT}/state.json"] = state_bytes
        for name in (HISTORY, LEARNING_RATES):
            if (run_dir / name).is_file():
                files[name] = (run_dir / name).read_bytes()
    except (OSError, ValueError, KeyError, TypeError):
        return sent
    _send(token, {"run": run_name, "event": "checkpoint", "epoch": state.get("epoch"),
                  "files": files})
    return stamp


def _execute(request: dict[str, Any]) -> int:
    """Run one notebook with papermill (in the task's subprocess, with its environment)."""
    die_with_parent()  # armed in the child itself (preexec_fn is unsafe in a threaded worker)
    if os.getppid() != request["parent"]:  # the worker died before that: nothing to do
        return KERNEL_DIED
    from nbclient.exceptions import DeadKernelError

    try:
        execute_notebook(request["source"], request["target"], cwd=request["cwd"],
                         parameters=request["parameters"], kernel_name=request["kernel_name"],
                         scratch=request.get("scratch"))
    except DeadKernelError as exc:
        _record_error(request, error_text(exc))
        return KERNEL_DIED
    except Exception as exc:  # the notebook's own error (papermill re-raises it)
        _record_error(request, error_text(exc))
        return 1
    return 0


def _record_error(request: dict[str, Any], line: str) -> None:
    """Print the error and keep it in the request's error file (see :func:`failure_line`)."""
    print(line, file=sys.stderr, flush=True)
    if request.get("error_file"):
        Path(request["error_file"]).write_text(line + "\n")


if __name__ == "__main__":
    sys.exit(_execute(json.loads(sys.argv[1])))
