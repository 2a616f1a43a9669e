"""Bad input, as a new user types it or as built to hurt: exit 2, one line naming the field or
file, nothing written. ``cli.main`` runs in this process, in a fresh copy of a tree of good and
bad files (no traceback, nothing on stdout, no TensorFlow, every file as it was); a few run the
real CLI, for the console script's exit status, TensorFlow's C++ log, a hang or a huge line."""

import gzip
import hashlib
import json
import os
import shutil
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml

from swin_gao_lib import cli
from swin_gao_lib.config import from_yaml, make_config, to_yaml, yaml_text
from swin_gao_lib.config.design import load_design
from swin_gao_lib.errors import ConfigError, InputError, shown

GOOD = dict(dataset="mnist", source="sample", max_train_samples=64, max_test_samples=32,
            embed_dim=16, num_heads=[2], mlp_dim=32, head_units=8, epochs=1, batch_size=16,
            output_dir="out")


def _idx(array: np.ndarray, magic_type=0x08) -> bytes:
    head = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(np.uint8).tobytes()


def _idx_dir(folder: Path, n_train: int, n_test: int = 4, truncate: bool = False):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem, n in (("train", n_train), ("t10k", n_test)):
        images = _idx(rng.integers(0, 256, (n, 28, 28)))
        if truncate:
            images = images[:-10]
        (folder / f"{stem}-images-idx3-ubyte.gz").write_bytes(gzip.compress(images))
        (folder / f"{stem}-labels-idx1-ubyte.gz").write_bytes(
            gzip.compress(_idx(rng.integers(0, 10, n))))


def _laughs(levels: int, key: str = "depths") -> str:
    """The "billion laughs": each level a list of nine aliases of the level below."""
    lines = ["dataset: mnist", "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines + [f"{key}: *l{levels}"]) + "\n"


def _flow_laughs(levels: int) -> str:
    """The same in one line, as a ``--set`` value."""
    parts = ["&a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    parts += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "[" + ", ".join(parts) + "]"


def _good(**values) -> str:
    return yaml.safe_dump({**GOOD, **values})


#: A study block of one comparison; TYPO misspells its prediction.
STUDY = {"margin": {"test_accuracy": 0.01, "reason": "a third of the error"},
         "comparisons": [{"arm": {"accumulation_steps": 2}, "versus": {"accumulation_steps": 1},
                          "role": "primary", "prediction": "equivalent", "why": "same gradient"}]}
TYPO = {**STUDY, "comparisons": [{**STUDY["comparisons"][0], "prediction": "equivalnet"}]}
N12 = {"accumulation_steps": [1, 2]}
# the folder a run given learning_rate "inf" left before numbers had one parse
FAILED_INF = to_yaml(make_config({**GOOD, "run_name": "failed_inf"})).replace(
    "learning_rate: 0.001", "learning_rate: .inf")
MERGES = "\n".join(["dataset: mnist", "m0: &m0 {a: 1, b: 2, c: 3, d: 4}"]  # 4^9 pairs, merged
                   + [f"m{i}: &m{i} {{<<: [{', '.join([f'*m{i - 1}'] * 4)}]}}" for i in range(1, 9)])
FILES = {
    "good.yaml": _good(), "nonutf8.yaml": b"dataset: mnist\nrun_name: caf\xe9\n",
    "empty.yaml": b"", "comments.yaml": "# only a comment\n",
    "dup.yaml": "dataset: mnist\nepochs: 2\nepochs: 3\n", "syntax.yaml": "dataset: mnist\nepochs: [2\n",
    "list.yaml": "- dataset\n- mnist\n", "inf.yaml": "learning_rate: .inf\n",
    "nul_name.yaml": 'run_name: "a\\0b"\n', "afile": "not a folder\n",
    "grid.yaml": _good(grid=N12), "grid_unknown.yaml": _good(grid={"acumulation": [1]}),
    "grid_seeds.yaml": _good(seeds=[0, 0]),
    "suite_bad/a.yaml": _good(), "suite_bad/z.yaml": _good(batch_sise=8),
    "suite_missing_data/a.yaml": _good(source="dir:nowhere"),
    # a complete earlier run, somebody's own folder, somebody else's config.yaml
    "out/done/config.yaml": to_yaml(make_config({**GOOD, "run_name": "done"})),
    "out/done/metrics.json": json.dumps({"test_accuracy": 0.5}),
    "out/unfinished/config.yaml": to_yaml(make_config({**GOOD, "run_name": "unfinished"})),
    "out/unfinished/history.csv": "epoch,loss\n1,2.0\n",
    "out/project/checkpoint/my_model.keras": "precious\n",
    "out/foreign/config.yaml": "my_own_tool: {setting: 1}\n",
    "out/failed_inf/config.yaml": FAILED_INF,
    "out/failed_inf/failure.json": '{"diverged": true, "epoch": 1, "step": 2}',
    "suite_changed/done.yaml": _good(learning_rate=0.01),
    # study blocks: a typo in a prediction; a design that changed since its runs
    "suite_bad_study/g.yaml": _good(grid=N12, study=TYPO),
    "suite_moved_study/g.yaml": _good(grid=N12, study=STUDY),
    "out/study-design.yaml": yaml.safe_dump(
        {"g.yaml": {"dataset": "mnist", "margin": {}, "reason": "", "comparisons": []}}),
    # numbers written as text, in a params file and in a grid
    "big_lr.yaml": "dataset: mnist\nlearning_rate: 3e400\n",
    "grid_inf.yaml": _good(grid={"learning_rate": [0.001, "inf"]}),
    # suites whose data are corrupt, or whose training split holds less than a batch
    "suite_corrupt/a.yaml": _good(), "suite_corrupt/b.yaml": _good(source="dir:idx_trunc"),
    "suite_tiny/a.yaml": _good(validation_split=0.9999),
    **{f"cifar_bad/{name}": b"garbage" * 10
       for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]},
    # hostile YAML: the billion laughs (8 levels, 9^9 values in 500 bytes) for the real CLI;
    # 5 levels here, past the bound, so that a regression fails on 4 MB, not gigabytes
    "laughs8.yaml": _laughs(8), "laughs.yaml": _laughs(5), "suite_laughs/a.yaml": _laughs(5),
    "laughs_name.yaml": _laughs(5, "run_name"), "merges.yaml": MERGES + "\n",
    "deep.yaml": "depths: " + "[" * 10_000 + "]" * 10_000 + "\n",
    "recursive.yaml": "dataset: mnist\ndepths: &d [2, *d]\n",
    "empty_out.yaml": _good(output_dir=""), "tab_out.yaml": _good(output_dir="out\tx"),
    "big_pad.yaml": _good(crop_padding=100_000), "suite_pad/a.yaml": _good(crop_padding=100_000),
    "suite_long/a.yaml": _good(source="dir:" + "d" * 300),
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    for name, content in FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    for folder in ("a_folder.yaml", "suite_empty"):
        (root / folder).mkdir()
    _idx_dir(root / "idx_empty", n_train=0)
    _idx_dir(root / "idx_trunc", n_train=8, truncate=True)
    (root / "loop.yaml").symlink_to("loop.yaml")
    (root / "dangling.yaml").symlink_to("nowhere.yaml")
    (root / "zero.yaml").symlink_to("/dev/zero")
    return root


@pytest.fixture
def case_tree(tree, tmp_path, monkeypatch):
    """A fresh copy of the tree, the current folder: what a case writes or sets, no other sees."""
    copy = tmp_path / "tree"
    shutil.copytree(tree, copy, symlinks=True)
    monkeypatch.chdir(copy)
    with mock.patch.dict(os.environ):
        yield copy


def _set(*assignments: str) -> list[str]:
    """``train good.yaml --set A --set B ...``."""
    return ["train", "good.yaml", *(arg for a in assignments for arg in ("--set", a))]


CASES = [
    # (arguments, a fragment the one line must contain)
    (_set("seed=4294967296"), "seed: must be in [0, 2^32 - 1]"),
    (_set("lr_schedule=step"), "lr_step_updates: lr_schedule: step needs it"),
    (_set("validation_split=0.999999"), "validation_split: 0.999999 of"),
    (_set("source=dir:idx_empty"), "train-images-idx3-ubyte.gz: holds no images"),
    (_set("source=dir:idx_trunc"), "train-images-idx3-ubyte.gz: file truncated"),
    (_set("source=dir:nowhere"), "nowhere: folder not found"),
    (_set("dataset=cifar10", "source=dir:cifar_bad"),
     "data_batch_1: not a readable CIFAR-10 python batch"),
    (["train", "nonutf8.yaml"], "nonutf8.yaml is not UTF-8 text"),
    (_set("output_dir=/proc/swin-gao-test"), "output_dir: cannot create folders in /proc"),
    (_set("output_dir=afile/runs"), "is below afile, which is a file"),
    (_set("run_name=" + "r" * 300), "run_name: 'rrrr"),
    (["train", "nul_name.yaml"], "run_name: 'a\\x00b' is not a valid run name"),
    (_set("run_name=../../x"), "run_name: '../../x' is not a valid run name"),
    (_set("run_name=/tmp/abs"), "run_name: '/tmp/abs' is not a valid"),
    (["train", "inf.yaml"], "learning_rate: must be a finite number, got inf"),
    (["train", "empty.yaml"], "empty.yaml holds no settings"),
    (["train", "comments.yaml"], "comments.yaml holds no settings"),
    (["train", "dup.yaml"], "dup.yaml:3:1: not valid YAML: key 'epochs' is given twice (lines 2 and 3)"),
    (["train", "syntax.yaml"], "syntax.yaml:3:1: not valid YAML"),
    (["train", "list.yaml"], "list.yaml must hold a mapping"),
    (["train", "a_folder.yaml"], "a_folder.yaml is a folder"),
    (["train", "missing.yaml"], "params file missing.yaml does not exist"),
    (_set("epochs=1000000000000"), "epochs: 1000000000000 is larger than 100,000"),
    (_set("source=dir:"), "source: 'dir:' needs a folder"),
    (_set("batch_size=12", "accumulation_steps=5"),
     "accumulation_steps: a batch of 12 in micro-batches of ceil(12/5) = 3 makes 4"),
    (_set("epoch=2"), "unknown config key 'epoch'; did you mean 'epochs'?"),
    (_set("dataset=mnst"), "dataset: 'mnst' is not one of"),
    (_set("optimizer=adam_w"), "optimizer: 'adam_w' is not one of"),
    (_set("batch_size=abc"), "batch_size: expected an integer"),
    (_set("depths=[2,0]", "num_heads=[2,2]"), "depths: every stage needs at least one block"),
    (_set("num_heads=[3]"), "num_heads: stage 1 has width 16"),
    (_set("window_size=3"),
     "window_size: 3 does not divide stage 1's 16x16 patch grid; use one of [1, 2, 4, 8, 16]"),
    (_set("shift_size=2"), "shift_size: must be in [0, window_size) = [0, 2), got 2"),
    (_set("patch_size=3"), "patch_size: 3 does not divide"),
    (_set("dropout=1.5"), "dropout: must be in [0, 1)"),
    (_set("momentum=1.0"), "momentum: must be in [0, 1)"),
    (_set("learning_rate=-1"), "learning_rate: must be > 0"),
    (_set("max_train_samples=0"), "max_train_samples: must be >= 1"),
    (_set("accumulation_mode=optimizer", "reduction=sum"),
     "reduction: Keras's optimizer accumulation always averages"),
    (_set("accumulation_mode=optimizer", "batch_size=30", "accumulation_steps=4"),
     "batch_size: optimizer mode feeds batches"),
    (_set("dataset=cifar100"), "source: no sample of cifar100 ships"),
    # one specific message per kind of mistake in a config value
    (_set("zzz=1"), "unknown config key 'zzz'; valid keys: "),
    (_set('augment="yes"'), "augment: expected true or false"),
    (_set("learning_rate=fast"), "learning_rate: expected a number"),
    (_set("dataset=cifar"), "dataset: 'cifar' is not one of"),
    (_set("source=web"), "source: 'web' is not valid; use 'keras' (download), 'sample'"),
    (_set("image_handling=native", "patch_size=3"),
     "patch_size: 3 does not divide the 28x28 input of mnist"),
    (_set("depths=[2,2]", "num_heads=[4]"), "num_heads: has 1 entries but depths has 2 stages"),
    (_set("accumulation_steps=0"), "accumulation_steps: must be >= 1, got 0"),
    (_set("batch_size=4", "accumulation_steps=8"), "batch_size: in in_step mode the batch (4)"),
    (_set("accumulation_mode=gao"), "accumulation_mode: 'gao' is not one of in_step, optimizer"),
    (_set("reduction=avg"), "reduction: 'avg' is not one of mean, sum"),
    (_set("lr_scaling=square"),
     "lr_scaling: 'square' is not one of none, sqrt, linear (did you mean 'sqrt'?)"),
    (_set("lr_base_batch=0"), "lr_base_batch: must be >= 1, got 0"),
    (_set("lr_schedule=cosin"),
     "lr_schedule: 'cosin' is not one of constant, cosine, step (did you mean 'cosine'?)"),
    (_set("warmup_updates=-1"), "warmup_updates: must be >= 0 (0: no warm-up), got -1"),
    (_set("lr_step_updates=10"),
     "lr_step_updates: only used with lr_schedule: step (got lr_schedule: constant)"),
    (_set("lr_schedule=step", "lr_step_updates=0"), "lr_step_updates: must be >= 1, got 0"),
    (_set("lr_schedule=step", "lr_step_updates=5", "lr_step_factor=2"),
     "lr_step_factor: must be in (0, 1], got 2.0"),
    (_set("validation_split=1.0"), "validation_split: must be in [0, 1)"),
    (_set("image_handling=native", "merge_after_last_stage=true", "depths=[2,2]", "num_heads=[8,8]", "window_size=7", "shift_size=3"),
     "depths: patch merging 2 halves a 7x7 token grid, which is odd"),
    (_set("backend=torch"), "backend: 'torch' is not one of tensorflow, jax"),
    (_set("precision=mixed_float16"),
     "precision: 'mixed_float16' is not one of float32, mixed_bfloat16"),
    (_set("epochs"), "--set 'epochs': expected key=value"),
    (_set("depths=[1"), "--set depths:1:3: not valid YAML"),
    (["train", "grid.yaml"], "grid.yaml is a grid of 2 runs varying accumulation_steps"),
    (["train", "grid_unknown.yaml"], "grid: unknown config key 'acumulation'"),
    (["train", "grid_seeds.yaml"], "seeds: [0, 0] repeats a seed"),
    (_set("run_name=done"), "out/done already holds a complete run"),
    (_set("run_name=foreign"), "is not a run config this kit wrote"),
    (["train", "good.yaml", "--set", "run_name=foreign", "--overwrite"], "is not a run config this kit wrote"),
    (["train"], "the following arguments are required: params"),
    (["train", "good.yaml", "--verbose", "5"], "argument --verbose: invalid choice"),
    (["run-all", "suite_missing", "--output", "o"], "suite_missing: no such params folder or file"),
    (["run-all", "suite_empty", "--output", "o"], "suite_empty: no *.yaml params files found"),
    (["run-all", "suite_bad", "--output", "o"], "z.yaml: unknown config key 'batch_sise'"),
    (["run-all", "suite_missing_data", "--output", "o"], "nowhere: folder not found"),
    (["run-all", "grid.yaml", "--output", "afile"], "--output afile is a file"),
    (["report", "nowhere"], "nowhere: no such suite folder"),
    (_set("run_name=project"),
     "out/project already holds checkpoint/my_model.keras, which the kit did not write"),
    (_set("run_name=report"), "run_name: 'report' is the name of a suite's report folder"),
    (_set("run_name=unfinished", "epochs=2"),
     "out/unfinished holds an unfinished run of a different config (it differs in epochs)"),
    (["run-all", "suite_changed", "--output", "out"],
     "holds a complete run of a different config (it differs in learning_rate)"),
    (["run-all", "grid.yaml", "--output", "o", "--workers", "2"], "--workers: only with --executor dask"),
    (["run-all", "suite_bad_study", "--output", "o"],
     "study.comparisons[1].prediction: 'equivalnet' is not one of equivalent, lower, higher"),
    (["run-all", "suite_moved_study", "--output", "out"],
     "holds a different study block for g.yaml than the params file has now"),
    (["bench", "--batch", "10", "--n", "3"], "--n: batch 10 is not divisible by N=3"),
    (["bench", "--repeats", "0"], "argument --repeats: must be >= 1, got 0"),
    (["run-all", "grid.yaml", "--output", "o", "--executor", "dask", "--gpus-per-run", "2"],
     "--gpus-per-run: must be in [1/64, 1], got 2.0"),
    (["run-all", "grid.yaml", "--output", "o", "--scheduler", "tcp://127.0.0.1:1"],
     "--scheduler: only with --executor dask"),
    (["run-all", "grid.yaml", "--output", "o", "--executor", "dask", "--workers", "0"],
     "argument --workers: must be >= 1, got 0"),
    (["run-all", "grid.yaml", "--output", "o", "--executor", "ray"], "argument --executor: invalid choice"),
    # numbers written as text meet the same rules, wherever they come from
    (_set("learning_rate=inf"),
     "learning_rate: must be a finite number, got inf; e.g. learning_rate: 0.001"),
    (_set("weight_decay=nan"), "weight_decay: must be a finite number, got nan"),
    (_set("learning_rate=1e400"),
     "learning_rate: must be a finite number, got 1e400 (too large for a float: it reads as inf)"),
    (["train", "big_lr.yaml"], "learning_rate: must be a finite number, got 3e400 (too large"),
    (_set('learning_rate="0x10"'), "learning_rate: expected a number, got '0x10'"),
    (_set('epochs="0x10"'), "epochs: expected an integer, got '0x10' (str)"),
    (_set("epochs=2.5"), "epochs: expected an integer, got 2.5 (float)"),
    (["run-all", "grid_inf.yaml", "--output", "o"], "grid_inf.yaml: learning_rate: must be a finite number, got inf"),
    (_set("run_name=failed_inf"),
     "out/failed_inf holds a run whose config.yaml this version of the kit refuses (learning_rate: "
     "must be a finite number, got inf"),
    # a training split smaller than one batch
    (_set("validation_split=0.9999"),
     "batch_size: the training split holds 2 images, fewer than one batch of 16"),
    (["run-all", "suite_tiny", "--output", "o"], "a.yaml: batch_size: the training split holds 2 images"),
    # corrupt data inside a suite: found before any kernel starts
    (["run-all", "suite_corrupt", "--output", "o"], "b.yaml: idx_trunc/train-images-idx3-ubyte.gz: file truncated"),
]

#: Cases that need a file system with almost no room: a tmpfs of 64 KiB, mounted where
#: mounting is allowed ("{small}" is its path).
SMALL_DISK_CASES = [
    (["train", "good.yaml", "--set", "output_dir={small}"],
     "output_dir: {small} has 64 KiB free, but this needs about"),
    (["run-all", "suite_bad/a.yaml", "--output", "{small}/suite"],
     "--output: {small}/suite has "),
]


LONG = "n" * 300  # one name past the file system's 255 bytes
DEEP = "/".join(["p" * 200] * 25)  # 5,024 bytes: a path past PATH_MAX, every name fine

TRAIN_CASES = [
    # YAML that aliases expand: refused while it is read, the value never shown whole
    (["laughs.yaml"], "laughs.yaml:7:10: aliases expand the YAML past 100,000 values"),
    (["laughs_name.yaml"], "aliases expand the YAML past 100,000 values"),
    (["merges.yaml"], "aliases expand the YAML past 100,000 values"),
    (["good.yaml", "--set", "depths=" + _flow_laughs(5)],
     "--set depths:1:"),
    (["deep.yaml"], "deep.yaml:1:40: values nested more than 32 levels deep"),
    (["recursive.yaml"], "the alias *d points into the collection that holds it"),
    (["good.yaml", "--set", "epochs=" + "9" * 5000], "an integer of 5,000 digits"),
    (["good.yaml", "--set", "run_name=" + "r" * 100_000], "(100,000 characters)"),
    (["good.yaml", "--set", "depths=[" + ", ".join(["[2]"] * 5000) + "]"],
     "depths: every entry must be an integer, got [2] in [[2], [2], [2]"),
    # sizes that fail only once the crop or the model is built
    (["big_pad.yaml"], "crop_padding: 100000 is more than 16, half the side of the 32x32"),
    (["good.yaml", "--set", "crop_padding=17"], "crop_padding: 17 is more than 16"),
    (["good.yaml", "--set", "image_handling=native", "--set", "patch_size=7",
      "--set", "crop_padding=15"], "crop_padding: 15 is more than 14, half the side of the 28x28"),
    (["good.yaml", "--set", "embed_dim=100000"], "embed_dim: 100000 is larger than 4,096"),
    (["good.yaml", "--set", "mlp_dim=1000000"], "mlp_dim: 1000000 is larger than 16,384"),
    (["good.yaml", "--set", "head_units=1000000"], "head_units: 1000000 is larger than 16,384"),
    (["good.yaml", "--set", "depths=[100000]"], "depths: 100000 is larger than 64"),
    (["good.yaml", "--set", "lr_schedule=step", "--set", "lr_step_updates=10000000000"],
     "lr_step_updates: 10000000000 is larger than 1,000,000,000"),
    # paths the file system refuses
    ([LONG + ".yaml"], "params file: " + "n" * 20),
    ([f"sub/{LONG}.yaml"], "holds a name, nnnnn"),
    (["good.yaml", "--set", f"output_dir={LONG}"], "output_dir: nnnnn"),
    (["good.yaml", "--set", f"output_dir={DEEP}"], "output_dir: pppp"),
    (["good.yaml", "--set", f"source=dir:{LONG}"], "source: nnnnn"),
    (["good.yaml", "--set", f"source=dir:{DEEP}"], "is 5,024 bytes long; a path may be at most"),
    # what a params file is, when it is not a file
    (["loop.yaml"], "params file loop.yaml is a symbolic link loop"),
    (["dangling.yaml"], "params file dangling.yaml is a symbolic link to nowhere.yaml, which "
                        "does not exist"),
    (["zero.yaml"], "params file zero.yaml is not a regular file (a character device)"),
    (["/dev/zero"], "params file /dev/zero is not a regular file (a character device)"),
    (["afile/x.yaml"], "params file afile/x.yaml is below a file, not a folder"),
    # empty paths (an unset shell variable) and control characters
    ([""], "params file: an empty value names no file"),
    (["empty_out.yaml"], "output_dir: an empty value names no folder"),
    (["good.yaml", "--set", "output_dir="], "output_dir: an empty value names no folder"),
    (["good.yaml", "--set", 'output_dir="out\\nx"'],
     "output_dir: 'out\\nx' is not a valid folder path: it holds a control character ('\\n')"),
    (["good.yaml", "--set", "output_dir=out\nx"],
     "--set output_dir: 'out\\nx' is not a valid value: it holds a control character"),
    (["tab_out.yaml"], "output_dir: 'out\\tx' is not a valid folder path"),
    (["good.yaml", "--set", 'source="dir:da\\x7fta"'], "source: 'da\\x7fta' is not a valid"),
]


RUN_ALL_CASES = [
    (["suite_laughs", "--output", "o"], "suite_laughs/a.yaml: params file "),
    (["suite_pad", "--output", "o"], "a.yaml: crop_padding: 100000 is more than 16"),
    (["suite_long", "--output", "o"], "a.yaml: source: ddddd"),
    (["good.yaml", "--output", ""], "--output: an empty value names no folder"),
    (["", "--output", "o"], "params: an empty value names no params folder or file"),
    (["good.yaml", "--output", LONG], "--output: nnnnn"),
    (["good.yaml", "--output", DEEP], "--output: pppp"),
    ([LONG, "--output", "o"], "params: nnnnn"),
    (["good.yaml", "--output", "o\nx"], "--output: 'o\\nx' is not a valid folder path"),
    (["loop.yaml", "--output", "o"], "params: loop.yaml is a symbolic link loop"),
    (["zero.yaml", "--output", "o"], "params: zero.yaml is not a regular file"),
    (["good.yaml", "--output", "loop.yaml"], "--output loop.yaml is a symbolic link loop"),
    (["good.yaml", "--output", "afile/o"], "--output afile/o is below a file, not a folder"),
    (["good.yaml", "--output", "o", "--notebooks", ""], "--notebooks: an empty value"),
]
OTHER_CASES = [
    (["report", ""], "suite_dir: an empty value names no folder"),
    (["report", "o", "--out", ""], "--out: an empty value names no folder"),
    (["linear", "laughs.yaml"], "aliases expand the YAML past 100,000 values"),
    (["bench", "--out", ""], "--out: an empty value names no folder"),
]
#: The executor is chosen after the input is checked: each one meets a few of the cases.
EXECUTORS = [["--executor", "dask"], ["--executor", "side-by-side"]]
EXECUTOR_CASES = [c for c in RUN_ALL_CASES if c[0][0] in ("suite_laughs", "suite_pad")
                  or c[0][1:] == ["--output", ""]]
#: A line of stderr a person can read: a value in it is cut to a few dozen characters.
SHORT = 400


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry below ``root``, links and special files looked at, never followed or read."""
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            out[str(path)] = ("link", os.readlink(path))
        elif stat.S_ISREG(st.st_mode):
            out[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest(), st.st_mtime_ns,
                              st.st_mode)
        else:
            out[str(path)] = (stat.S_IFMT(st.st_mode), st.st_mode)
    return out


def _one_line(code, out: str, err: str, fragment: str, short: bool = False):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err[:2000])
    assert lines[0].startswith("swin-gao") and fragment in lines[0], lines[0][:2000]
    assert out == "", out
    assert not short or len(lines[0]) < SHORT, lines[0][:2000]


def _refuses(root: Path, capsys, args, fragment, short: bool = False):
    before, modules = _snapshot(root), set(sys.modules)
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse's usage errors: the console script exits with it
        code = exc.code
    _one_line(code, *capsys.readouterr(), fragment, short)
    imported = {name.partition(".")[0] for name in set(sys.modules) - modules}
    assert not imported & {"tensorflow", "keras", "jax"}, "TensorFlow must not even start"
    assert _snapshot(root) == before, "bad input changed files"


@pytest.mark.parametrize("args,fragment", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(case_tree, capsys, args, fragment):
    _refuses(case_tree, capsys, args, fragment)


@pytest.mark.parametrize("args,fragment", TRAIN_CASES, ids=[" ".join(a)[:50] for a, _ in TRAIN_CASES])
def test_train_refuses_hostile_input_in_one_short_line(case_tree, capsys, args, fragment):
    _refuses(case_tree, capsys, ["train", *args], fragment, short=True)


@pytest.mark.parametrize("args,fragment", RUN_ALL_CASES + OTHER_CASES,
                         ids=[" ".join(a)[:40] for a, _ in RUN_ALL_CASES + OTHER_CASES])
def test_other_commands_refuse_hostile_input_in_one_short_line(case_tree, capsys, args, fragment):
    command = args if args[0] in ("report", "linear", "bench") else ["run-all", *args]
    _refuses(case_tree, capsys, command, fragment, short=True)


@pytest.mark.parametrize("executor", EXECUTORS, ids=["dask", "side-by-side"])
@pytest.mark.parametrize("args,fragment", EXECUTOR_CASES,
                         ids=[" ".join(a)[:40] for a, _ in EXECUTOR_CASES])
def test_every_executor_refuses_before_any_run(case_tree, capsys, args, fragment, executor):
    if executor[1] == "dask":
        pytest.importorskip("distributed")
    _refuses(case_tree, capsys, ["run-all", *args, *executor], fragment, short=True)


SCRIPT = [shutil.which("swin-gao", path=os.path.dirname(sys.executable)) or "swin-gao"]
REAL = [(SCRIPT, ["train"]), (SCRIPT, ["train", "good.yaml", "--set", "validation_split=0.9999"]),
        ([sys.executable, "-m", "swin_gao_lib.cli"], ["run-all", "suite_corrupt", "--output", "o"])]


@pytest.mark.parametrize("command,args", REAL, ids=[" ".join(a) for _, a in REAL])
def test_the_real_cli_exits_2_with_one_line(case_tree, command, args):
    before = _snapshot(case_tree)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0")  # TensorFlow must not even start
    proc = subprocess.run([*command, *args], cwd=case_tree, capture_output=True, text=True,
                          timeout=300, env=env)
    fragment = {tuple(a): f for a, f in CASES}[tuple(args)]
    _one_line(proc.returncode, proc.stdout, proc.stderr, fragment)
    assert proc.stderr.count("\n") == 1, proc.stderr  # not even an empty line
    assert _snapshot(case_tree) == before, "bad input changed files"


@pytest.fixture(scope="module")
def small_disk(tmp_path_factory):
    from test_faults import tmpfs

    with tmpfs(tmp_path_factory.mktemp("small") / "fs", "64k") as fs:
        yield fs


@pytest.mark.parametrize("args,fragment", SMALL_DISK_CASES,
                         ids=[" ".join(a)[:60] for a, _ in SMALL_DISK_CASES])
def test_a_disk_without_room_is_bad_input_too(case_tree, capsys, small_disk, args, fragment):
    args = [a.replace("{small}", str(small_disk)) for a in args]
    before = _snapshot(small_disk)
    _refuses(case_tree, capsys, args, fragment.replace("{small}", str(small_disk)))
    assert _snapshot(small_disk) == before


def test_a_suite_reports_every_problem_at_once(case_tree, capsys):
    """Several problems: one line each, all of them, before any kernel starts; exit 2."""
    suite = case_tree / "suite_many"
    suite.mkdir()
    (suite / "a.yaml").write_text(yaml.safe_dump({**GOOD, "source": "dir:idx_trunc"}))
    (suite / "b.yaml").write_text(yaml.safe_dump({**GOOD, "run_name": "done",
                                                  "learning_rate": 0.01}))
    (suite / "c.yaml").write_text(yaml.safe_dump({**GOOD, "validation_split": 0.9999}))
    (suite / "d.yaml").write_text(yaml.safe_dump(GOOD))
    before = _snapshot(case_tree)
    assert cli.main(["run-all", "suite_many", "--output", "out"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert lines[0] == ("swin-gao: error: 3 problems found before any run started; nothing "
                        "was run:")
    assert len(lines) == 4 and "Traceback" not in err
    problems = sorted(line.strip() for line in lines[1:])
    assert problems[0].startswith("suite_many/a.yaml: ") and \
        "idx_trunc/train-images-idx3-ubyte.gz: file truncated" in problems[0]
    assert problems[1].startswith("suite_many/b.yaml: output: ") and \
        "holds a complete run of a different config (it differs in learning_rate)" in problems[1]
    assert problems[2].startswith("suite_many/c.yaml: batch_size: the training split holds 2")
    assert _snapshot(case_tree) == before


def test_every_yaml_the_kit_reads_is_bounded(tmp_path):
    # a run's config.yaml read back, a suite's study design, the train notebook's config_yaml
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="aliases expand the YAML past 100,000 values"):
        from_yaml(_laughs(8), "config_yaml")
    (tmp_path / "study-design.yaml").write_text(_laughs(8))
    with pytest.raises(ConfigError, match="study design .*study-design.yaml:7:10: aliases"):
        load_design(tmp_path)
    assert time.perf_counter() - start < 10  # 9^9 values, had they been built


def test_the_bounds_on_size(monkeypatch):
    # many values, or much text, with no alias at all
    monkeypatch.setattr(yaml_text, "MAX_NODES", 1000)
    with pytest.raises(ConfigError, match=r"x:1:\d+: the YAML holds more than 1,000 values"):
        yaml_text.read_yaml("depths: [" + ", ".join(["1"] * 2000) + "]", "x")
    monkeypatch.setattr(yaml_text, "MAX_CHARS", 1000)
    with pytest.raises(ConfigError, match="x: holds 2,000 characters, more than the 1,000"):
        yaml_text.read_yaml("#" * 2000, "x")
    with pytest.raises(ConfigError, match=r"x:2:9: aliases expand the YAML past 1,000 char"):
        yaml_text.read_yaml("a: &s " + "t" * 400 + "\nb: [*s, *s, *s]\n", "x")
    # what the kit's own files hold stays far inside the bounds
    assert yaml_text.read_yaml("a: &s [1, 2]\nb: *s\nc: {<<: {k: 1}, j: 2}\n", "x") == \
        {"a": [1, 2], "b": [1, 2], "c": {"k": 1, "j": 2}}


def test_a_message_shows_a_value_in_a_few_dozen_characters():
    huge = yaml_text.read_yaml(_laughs(3), "x")["depths"]  # 6,561 values, built as shared lists
    for value in (huge, "x" * 10**6, 10**4000, {str(i): i for i in range(10**4)}):
        assert len(shown(value)) < 80, shown(value)
    assert shown("a\nb", quote=False) == "'a\\nb'"  # a control character keeps its quotes
    assert shown([2, 2]) == "[2, 2]" and shown("mnst") == "'mnst'"
    # and the backstop: no input error keeps a line of a megabyte, whoever made it
    assert len(str(InputError("x" * 10**6))) < 1100


def _at_most_2_gib() -> None:
    """In the child: a regression fails with a MemoryError, not with the machine's memory."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))


def _real_cli(root: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "swin_gao_lib.cli", *args], cwd=root,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=_at_most_2_gib)


def test_the_billion_laughs_is_refused_at_once_by_the_real_cli(case_tree):
    # 500 bytes that expand to 387 million values: once 13.7 s, 2.3 GiB and a line of 802 MB
    before = _snapshot(case_tree)
    start = time.perf_counter()
    proc = _real_cli(case_tree, "train", "laughs8.yaml")
    assert time.perf_counter() - start < 60
    assert proc.returncode == 2 and len(proc.stderr) < SHORT, proc.stderr[:2000]
    assert proc.stderr.count("\n") == 1 and "aliases expand the YAML" in proc.stderr
    assert _snapshot(case_tree) == before


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_as_params_file_is_named_and_never_read(case_tree):
    # opening a FIFO waits for a writer: the check must look, not read (in a process: a
    # regression times out instead of hanging the suite)
    os.mkfifo(case_tree / "fifo.yaml")
    for args in (["train", "fifo.yaml"], ["run-all", "fifo.yaml", "--output", "o"]):
        proc = _real_cli(case_tree, *args, timeout=60)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().endswith("fifo.yaml is not a regular file (a FIFO)"), \
            proc.stderr
