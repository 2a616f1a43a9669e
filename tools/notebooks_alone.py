"""Run the notebooks as Colab runs them: alone, with the kit installed from its wheel.

``tests/test_colab.py`` does this on every test run with the tested pins of
``requirements.txt``. This script does the same against the **newest** versions
on PyPI (TensorFlow and Keras first of all): a fresh virtual environment gets
the kit's wheel and whatever pip resolves for its declared dependency ranges,
each notebook is copied alone into an empty folder and executed there with
papermill, and the same checks run: the figures are made, and no start-up
noise (TensorFlow's C++ log lines, the kernel's shutdown-race line) appears in
the notebooks' stored outputs or on papermill's stderr.

Why not a CI test: it downloads TensorFlow (~600 MB) and builds an environment
on every run (minutes on 2 cores), and it would make CI depend on whatever
PyPI published that day. Run it when upgrading or before a release, and commit
its result::

    python tools/notebooks_alone.py --newest --json tools/results/notebooks_alone_newest.json
    python tools/notebooks_alone.py --constraints requirements.txt   # the pins, as the test

Exit status 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
#: What must not appear in a notebook's outputs or on papermill's stderr: TensorFlow's C++
#: log lines (absl's "I0000 00:00:..." and TensorFlow's own "... I tensorflow/..."), absl's
#: preamble, oneDNN's and CUDA's start-up notes, and the kernel's shutdown-race error.
NOISE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "
                   r"|absl::InitializeLog|oneDNN custom operations|Could not find cuda drivers"
                   r"|cuInit|KeyboardInterrupt caught in kernel", re.M)


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Run ``cmd``; raise with its output's tail if it fails."""
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def build_wheel(dest: Path, python: str = sys.executable) -> Path:
    """A wheel of the kit, built from a copy of what it is made of (no stale build/ leaks in)."""
    src = dest / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    # the package, and what setup.py copies into it: the example params and the notebooks
    for name in ("swin_gao_lib", "params", "notebooks"):
        shutil.copytree(ROOT / name, src / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "outputs",
                                                      ".ipynb_checkpoints", "example-report"))
    run([python, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
         "-w", dest / "dist", src])
    return next((dest / "dist").glob("swin_gao-*.whl"))


def make_env(root: Path, wheel: Path, constraints: Path | None) -> dict:
    """A fresh venv holding the kit from ``wheel`` and its declared dependencies.

    ``constraints``: a pip constraints file (the pins); ``None``: pip's newest.
    """
    env_dir = root / "env"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "TF_CPP_MIN_LOG_LEVEL")}
    env["JUPYTER_DATA_DIR"] = str(root / "jupyter")  # no user-level kernel spec can interfere
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    pin = ["-c", constraints] if constraints else []
    run([python, "-m", "pip", "install", "-q", "--no-compile", "--disable-pip-version-check",
         *pin, wheel], env=env)
    return {"python": python, "env": env, "root": root}


def versions(colab: dict) -> dict[str, str]:
    """The versions the environment ended up with."""
    code = ("import importlib.metadata as m, json, sys; print(json.dumps({p: m.version(p) for p in "
            "('tensorflow', 'keras', 'numpy', 'matplotlib', 'pandas', 'papermill', 'ipykernel', "
            "'jupyter_client', 'nbconvert')} | {'python': sys.version.split()[0]}))")
    return json.loads(run([colab["python"], "-c", code], env=colab["env"]).stdout)


def execute_alone(colab: dict, notebook: str, name: str,
                  parameters: dict | None = None) -> tuple[Path, dict, str]:
    """Copy one notebook into an empty folder, execute it there with papermill.

    ``parameters`` are injected as papermill injects them (none: the notebook's own
    values). Returns the folder, the executed notebook and papermill's stderr.
    """
    work = colab["root"] / name
    work.mkdir()
    shutil.copy2(NOTEBOOKS / notebook, work / notebook)
    inject = ["-y", json.dumps(parameters)] if parameters else []
    proc = run([colab["python"], "-m", "papermill", "--no-progress-bar", *inject, notebook,
                f"executed-{notebook}"], cwd=work, env=colab["env"])
    return work, json.loads((work / f"executed-{notebook}").read_text()), proc.stderr


def images(nb: dict) -> int:
    """How many PNG outputs the executed notebook holds."""
    return sum("image/png" in out.get("data", {}) for cell in nb["cells"]
               for out in cell.get("outputs", []))


def noise(nb: dict, stderr: str = "") -> list[str]:
    """The start-up noise lines in the notebook's outputs and in papermill's stderr."""
    texts = [stderr]
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            texts.append("".join(out.get("text", "")))
            texts.append("".join(out.get("data", {}).get("text/plain", "")))
    return [line for text in texts for line in text.splitlines() if NOISE.search(line)]


def check(colab: dict) -> dict:
    """Both notebooks alone: their figures and their quiet; a result per notebook."""
    result = {}
    for notebook, name, least in (("train.ipynb", "train", 1), ("report.ipynb", "report", 2)):
        start = time.monotonic()
        try:
            _, nb, stderr = execute_alone(colab, notebook, name)
        except RuntimeError as exc:
            result[notebook] = {"ok": False, "error": str(exc)[-2000:]}
            continue
        lines = noise(nb, stderr)
        result[notebook] = {"ok": images(nb) >= least and not lines, "images": images(nb),
                            "noise": lines[:20], "seconds": round(time.monotonic() - start, 1)}
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--newest", action="store_true", help="pip's newest versions")
    which.add_argument("--constraints", type=Path, help="a pip constraints file (the pins)")
    ap.add_argument("--json", type=Path, help="write the result here")
    ap.add_argument("--keep", type=Path, help="build in this folder and keep it")
    args = ap.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="notebooks-alone-"))
    root.mkdir(parents=True, exist_ok=True)
    # the tree the wheel is built from, before anything else runs
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--",
                            "swin_gao_lib", "notebooks", "pyproject.toml"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    try:
        start = time.monotonic()
        colab = make_env(root, build_wheel(root), args.constraints)
        installed = versions(colab)
        print("installed:", ", ".join(f"{k} {v}" for k, v in installed.items()), flush=True)
        result = check(colab)
        record = {"date": time.strftime("%Y-%m-%d"), "commit": commit + ("+dirty" if dirty else ""),
                  "command": "python tools/notebooks_alone.py " + " ".join(argv or sys.argv[1:]),
                  "versions": installed, "notebooks": result,
                  "minutes": round((time.monotonic() - start) / 60, 1)}
        for notebook, r in result.items():
            print(f"{notebook}: {'ok' if r['ok'] else 'FAILED'}"
                  + (f", {r['images']} figures, {r['seconds']} s" if "images" in r else "")
                  + (f"; noise: {r['noise']}" if r.get("noise") else "")
                  + (f"; {r['error']}" if "error" in r else ""))
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(record, indent=1) + "\n")
        return 0 if all(r["ok"] for r in result.values()) else 1
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
