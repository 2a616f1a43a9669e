"""Shared test setup: quiet TensorFlow, tiny configs, what is built once per session
(docs/testing.md, "Shared fixtures"), and the order the two xdist workers take modules in."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "datasets"
FASHION = Path("/usr/share/datasets/fashion-mnist")

#: A small model with every stochastic part off (two runs see the same function), validating
#: on 150 images of the MNIST sample: a tiny run's time went mostly into validating.
TINY_DETERMINISTIC = dict(
    embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8, dropout=0.0,
    attention_dropout=0.0, drop_path_rate=0.0, label_smoothing=0.1, validation_split=0.01,
)

#: The session's tiny run: 96 MNIST sample images, batches of 32 as 4 in-step micro-batches
#: of 8, 2 epochs (6 updates, 6 micro-steps), tested on 64 images.
TINY_RUN = {**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 96,
            "max_test_samples": 64, "batch_size": 32, "epochs": 2, "accumulation_steps": 4,
            "run_name": "tiny"}


def quick_xla_compile(env: dict[str, str]) -> dict[str, str]:
    """``env`` with XLA's CPU backend at LLVM optimization level 0, for a process that mostly
    compiles programs it runs a few steps (2/3 of the time; rounding moves by ~1e-7)."""
    flags = f"{env.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
    return {**env, "XLA_FLAGS": flags}


@pytest.fixture
def shared_datasets() -> Path:
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"real data subsets not present at {SHARED}")
    return SHARED


@dataclass(frozen=True)
class TinyRun:
    """A complete run: its folder (``dir``, named ``tiny``) and what ``train()`` returned."""

    dir: Path
    result: Any  # swin_gao_lib.training.train.TrainResult

    @property
    def config(self):
        return self.result.config

    def copy_to(self, output_dir: Path) -> Path:
        """Copy the run folder into ``output_dir`` (as ``output_dir/tiny``), to change it there."""
        target = Path(output_dir) / self.dir.name
        shutil.copytree(self.dir, target)
        return target


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """:data:`TINY_RUN` trained once per session, in this process (read it, do not write)."""
    from swin_gao_lib.config import make_config
    from swin_gao_lib.training.train import train

    out = tmp_path_factory.mktemp("tiny-run")
    result = train(make_config({**TINY_RUN, "output_dir": str(out)}), verbose=0,
                   log=lambda *a: None)
    return TinyRun(out / TINY_RUN["run_name"], result)


@pytest.fixture(scope="session")
def kit_wheel(tmp_path_factory) -> Path:
    """The kit's wheel, built once per session from a clean copy, as ``pip install git+...``."""
    sys.path.insert(0, str(REPO / "tools"))
    import notebooks_alone  # the one builder: tools/notebooks_alone.py builds the same wheel

    return notebooks_alone.build_wheel(tmp_path_factory.mktemp("wheel"))


# ---------------------------------------------------------------- scheduling
#: nbval's cells carry no marks: each notebook's rough time, all cells together
#: (train.ipynb trains the default model on 1,000 images).
NOTEBOOK_SECONDS = {"train.ipynb": 35.0, "report.ipynb": 12.0}
#: An unmarked test: most take well under a second.
QUICK_SECONDS = 0.5


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow(seconds): trains, starts kernels or processes, or builds an "
                   "environment; the rough seconds it takes alone on 2 quiet cores (orders "
                   "the suite; nothing is timed or asserted with it)")


def _unit(item: pytest.Item) -> str:
    """What xdist's ``--dist loadscope`` hands to one worker: a module, a class, a notebook."""
    return item.nodeid.rsplit("::", 1)[0]


def _cost(unit: list[pytest.Item]) -> float:
    if unit[0].path.suffix == ".ipynb":
        return NOTEBOOK_SECONDS.get(unit[0].path.name, 10.0)
    marks = (item.get_closest_marker("slow") for item in unit)
    return sum((float(m.args[0]) if m.args else 10.0) if m else QUICK_SECONDS for m in marks)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest modules and notebooks first, each whole (xdist hands them out in this order:
    the quick modules fill the end); ``trylast``, after pytest's own reordering."""
    units: dict[str, list[pytest.Item]] = {}
    for item in items:
        units.setdefault(_unit(item), []).append(item)
    ordered = sorted(units.values(), key=lambda unit: -_cost(unit))  # stable: ties keep order
    items[:] = [item for unit in ordered for item in unit]
