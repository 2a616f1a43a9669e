"""Bad input, as a new user types it: exit 2, one line naming the field or file, nothing written.

Each case runs ``cli.main`` in this process, in its own copy of a temp folder of good and bad
params files, data and earlier runs: exit status 2, exactly one line on stderr naming what is
wrong (no traceback), nothing on stdout, TensorFlow, Keras and JAX never imported, every file
of the tree as it was. Three also run the real CLI in a subprocess, for what only a process
shows: the ``swin-gao`` console script's exit status, for argparse's usage errors (a
``SystemExit``) and for the code ``main`` returns; ``python -m swin_gao_lib.cli``; and, with
TensorFlow's C++ log on, nothing on the stdout and stderr file descriptors but the one line
(TensorFlow writes to the descriptor, which capsys does not see).
"""

import gzip
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import yaml

from swin_gao_lib import cli
from swin_gao_lib.config import make_config, to_yaml

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


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bad")
    (root / "good.yaml").write_text(yaml.safe_dump(GOOD))
    (root / "nonutf8.yaml").write_bytes(b"dataset: mnist\nrun_name: caf\xe9\n")
    (root / "empty.yaml").write_bytes(b"")
    (root / "comments.yaml").write_text("# only a comment\n")
    (root / "dup.yaml").write_text("dataset: mnist\nepochs: 2\nepochs: 3\n")
    (root / "syntax.yaml").write_text("dataset: mnist\nepochs: [2\n")
    (root / "list.yaml").write_text("- dataset\n- mnist\n")
    (root / "inf.yaml").write_text("learning_rate: .inf\n")
    (root / "nan_wd.yaml").write_text("weight_decay: .nan\n")
    (root / "inf_wd.yaml").write_text("weight_decay: .inf\n")
    (root / "nul_name.yaml").write_text('run_name: "a\\0b"\n')
    (root / "grid.yaml").write_text(yaml.safe_dump({**GOOD, "grid": {"accumulation_steps": [1, 2]}}))
    (root / "grid_unknown.yaml").write_text(yaml.safe_dump({**GOOD, "grid": {"acumulation": [1]}}))
    (root / "grid_seeds.yaml").write_text(yaml.safe_dump({**GOOD, "seeds": [0, 0]}))
    (root / "a_folder.yaml").mkdir()
    (root / "afile").write_text("not a folder\n")
    suite = root / "suite_bad"
    suite.mkdir()
    (suite / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (suite / "z.yaml").write_text(yaml.safe_dump({**GOOD, "batch_sise": 8}))
    missing_data = root / "suite_missing_data"
    missing_data.mkdir()
    (missing_data / "a.yaml").write_text(yaml.safe_dump({**GOOD, "source": "dir:nowhere"}))
    (root / "suite_empty").mkdir()
    _idx_dir(root / "idx_empty", n_train=0)
    _idx_dir(root / "idx_trunc", n_train=8, truncate=True)
    cifar = root / "cifar_bad"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (cifar / name).write_bytes(b"garbage" * 10)
    # a complete earlier run, and a folder with somebody else's config.yaml
    done = root / "out" / "done"
    done.mkdir(parents=True)
    cfg = make_config({**GOOD, "run_name": "done"})
    (done / "config.yaml").write_text(to_yaml(cfg))
    (done / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    project = root / "out" / "project" / "checkpoint"  # somebody's own folder of that name
    project.mkdir(parents=True)
    (project / "my_model.keras").write_text("precious\n")
    changed = root / "suite_changed"
    changed.mkdir()
    (changed / "done.yaml").write_text(yaml.safe_dump({**GOOD, "learning_rate": 0.01}))
    # study blocks: a typo in a prediction; a design that changed since its runs
    study = {"margin": {"test_accuracy": 0.01, "reason": "a third of the error"},
             "comparisons": [{"arm": {"accumulation_steps": 2}, "versus": {"accumulation_steps": 1},
                              "role": "primary", "prediction": "equivalent", "why": "same gradient"}]}
    bad_study = root / "suite_bad_study"
    bad_study.mkdir()
    typo = {**study, "comparisons": [{**study["comparisons"][0], "prediction": "equivalnet"}]}
    (bad_study / "g.yaml").write_text(yaml.safe_dump({**GOOD, "grid": {"accumulation_steps": [1, 2]},
                                                      "study": typo}))
    moved = root / "suite_moved_study"
    moved.mkdir()
    (moved / "g.yaml").write_text(yaml.safe_dump({**GOOD, "grid": {"accumulation_steps": [1, 2]},
                                                  "study": study}))
    (root / "out" / "study-design.yaml").write_text(yaml.safe_dump(
        {"g.yaml": {"dataset": "mnist", "margin": {}, "reason": "", "comparisons": []}}))
    foreign = root / "out" / "foreign"
    foreign.mkdir()
    (foreign / "config.yaml").write_text("my_own_tool: {setting: 1}\n")
    # numbers written as text, in a params file and in a grid
    (root / "big_lr.yaml").write_text("dataset: mnist\nlearning_rate: 3e400\n")
    (root / "grid_inf.yaml").write_text(yaml.safe_dump(
        {**GOOD, "grid": {"learning_rate": [0.001, "inf"]}}))
    # the folder a run given learning_rate "inf" left before numbers had one parse
    failed = root / "out" / "failed_inf"
    failed.mkdir()
    (failed / "config.yaml").write_text(
        to_yaml(make_config({**GOOD, "run_name": "failed_inf"})).replace(
            "learning_rate: 0.001", "learning_rate: .inf"))
    (failed / "failure.json").write_text('{"diverged": true, "epoch": 1, "step": 2}')
    # suites whose data are corrupt, or which hold several problems at once
    corrupt = root / "suite_corrupt"
    corrupt.mkdir()
    (corrupt / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (corrupt / "b.yaml").write_text(yaml.safe_dump({**GOOD, "source": "dir:idx_trunc"}))
    tiny = root / "suite_tiny"
    tiny.mkdir()
    (tiny / "a.yaml").write_text(yaml.safe_dump({**GOOD, "validation_split": 0.9999}))
    return root


@pytest.fixture
def case_tree(tree, tmp_path, monkeypatch):
    """A fresh copy of the tree, the current folder: what a case writes or sets, no other sees."""
    copy = tmp_path / "tree"
    shutil.copytree(tree, copy, symlinks=True)
    monkeypatch.chdir(copy)
    with mock.patch.dict(os.environ):
        yield copy


CASES = [
    # (arguments, a fragment the one line must contain)
    (["train", "good.yaml", "--set", "seed=4294967296"], "seed: must be in [0, 2^32 - 1]"),
    (["train", "good.yaml", "--set", "seed=-1"], "seed: must be in"),
    (["train", "good.yaml", "--set", "lr_schedule=step"], "lr_step_updates: lr_schedule: step needs it"),
    (["train", "good.yaml", "--set", "validation_split=0.999999"], "validation_split: 0.999999 of"),
    (["train", "good.yaml", "--set", "source=dir:idx_empty"], "train-images-idx3-ubyte.gz: holds no images"),
    (["train", "good.yaml", "--set", "source=dir:idx_trunc"], "train-images-idx3-ubyte.gz: file truncated"),
    (["train", "good.yaml", "--set", "source=dir:nowhere"], "nowhere: folder not found"),
    (["train", "good.yaml", "--set", "dataset=cifar10", "--set", "source=dir:cifar_bad"],
     "data_batch_1: not a readable CIFAR-10 python batch"),
    (["train", "nonutf8.yaml"], "nonutf8.yaml is not UTF-8 text"),
    (["train", "good.yaml", "--set", "output_dir=/proc/swin-gao-test"], "output_dir: cannot create folders in /proc"),
    (["train", "good.yaml", "--set", "output_dir=afile/runs"], "is below afile, which is a file"),
    (["train", "good.yaml", "--set", "run_name=" + "r" * 300], "run_name: 'rrrr"),
    (["train", "nul_name.yaml"], "run_name: 'a\\x00b' is not a valid run name"),
    (["train", "good.yaml", "--set", "run_name=../../x"], "run_name: '../../x' is not a valid run name"),
    (["train", "good.yaml", "--set", "run_name=/tmp/abs"], "run_name: '/tmp/abs' is not a valid"),
    (["train", "good.yaml", "--set", "run_name=.."], "run_name: '..' is not a valid run name"),
    (["train", "good.yaml", "--set", "run_name=a/b"], "run_name: 'a/b' is not a valid run name"),
    (["train", "inf.yaml"], "learning_rate: must be a finite number, got inf"),
    (["train", "nan_wd.yaml"], "weight_decay: must be a finite number, got nan"),
    (["train", "inf_wd.yaml"], "weight_decay: must be a finite number, got inf"),
    (["train", "empty.yaml"], "empty.yaml holds no settings"),
    (["train", "comments.yaml"], "comments.yaml holds no settings"),
    (["train", "dup.yaml"], "dup.yaml:3:1: not valid YAML: key 'epochs' is given twice (lines 2 and 3)"),
    (["train", "syntax.yaml"], "syntax.yaml:3:1: not valid YAML"),
    (["train", "list.yaml"], "list.yaml must hold a mapping"),
    (["train", "a_folder.yaml"], "a_folder.yaml is a folder"),
    (["train", "missing.yaml"], "params file missing.yaml does not exist"),
    (["train", "good.yaml", "--set", "epochs=1000000000000"], "epochs: 1000000000000 is larger than 100,000"),
    (["train", "good.yaml", "--set", "source=dir:"], "source: 'dir:' needs a folder"),
    (["train", "good.yaml", "--set", "batch_size=12", "--set", "accumulation_steps=5"],
     "accumulation_steps: a batch of 12 in micro-batches of ceil(12/5) = 3 makes 4"),
    (["train", "good.yaml", "--set", "epoch=2"], "unknown config key 'epoch'; did you mean 'epochs'?"),
    (["train", "good.yaml", "--set", "dataset=mnst"], "dataset: 'mnst' is not one of"),
    (["train", "good.yaml", "--set", "optimizer=adam_w"], "optimizer: 'adam_w' is not one of"),
    (["train", "good.yaml", "--set", "batch_size=abc"], "batch_size: expected an integer"),
    (["train", "good.yaml", "--set", "depths=[2,0]", "--set", "num_heads=[2,2]"],
     "depths: every stage needs at least one block"),
    (["train", "good.yaml", "--set", "num_heads=[3]"], "num_heads: stage 1 has width 16"),
    (["train", "good.yaml", "--set", "window_size=3"], "window_size: 3 does not divide"),
    (["train", "good.yaml", "--set", "shift_size=2"], "shift_size: must be in [0, window_size)"),
    (["train", "good.yaml", "--set", "patch_size=3"], "patch_size: 3 does not divide"),
    (["train", "good.yaml", "--set", "dropout=1.5"], "dropout: must be in [0, 1)"),
    (["train", "good.yaml", "--set", "momentum=1.0"], "momentum: must be in [0, 1)"),
    (["train", "good.yaml", "--set", "learning_rate=-1"], "learning_rate: must be > 0"),
    (["train", "good.yaml", "--set", "max_train_samples=0"], "max_train_samples: must be >= 1"),
    (["train", "good.yaml", "--set", "accumulation_mode=optimizer", "--set", "reduction=sum"],
     "reduction: Keras's optimizer accumulation always averages"),
    (["train", "good.yaml", "--set", "accumulation_mode=optimizer", "--set", "batch_size=30",
      "--set", "accumulation_steps=4"], "batch_size: optimizer mode feeds batches"),
    (["train", "good.yaml", "--set", "dataset=cifar100"], "source: no sample of cifar100 ships"),
    (["train", "good.yaml", "--set", "epochs"], "--set 'epochs': expected key=value"),
    (["train", "good.yaml", "--set", "depths=[1"], "--set depths:1:3: not valid YAML"),
    (["train", "grid.yaml"], "grid.yaml is a grid of 2 runs varying accumulation_steps"),
    (["train", "grid_unknown.yaml"], "grid: unknown config key 'acumulation'"),
    (["train", "grid_seeds.yaml"], "seeds: [0, 0] repeats a seed"),
    (["train", "good.yaml", "--set", "run_name=done"], "out/done already holds a complete run"),
    (["train", "good.yaml", "--set", "run_name=foreign"], "is not a run config this kit wrote"),
    (["train", "good.yaml", "--set", "run_name=foreign", "--overwrite"], "is not a run config this kit wrote"),
    (["train"], "the following arguments are required: params"),
    (["train", "good.yaml", "--verbose", "5"], "argument --verbose: invalid choice"),
    (["run-all", "suite_missing", "--output", "o"], "suite_missing: no such params folder or file"),
    (["run-all", "suite_empty", "--output", "o"], "suite_empty: no *.yaml params files found"),
    (["run-all", "suite_bad", "--output", "o"], "z.yaml: unknown config key 'batch_sise'"),
    (["run-all", "suite_missing_data", "--output", "o"], "nowhere: folder not found"),
    (["run-all", "grid.yaml", "--output", "afile"], "--output afile is a file"),
    (["report", "nowhere"], "nowhere: no such suite folder"),
    (["train", "good.yaml", "--set", "run_name=project"], "out/project already holds checkpoint/my_model.keras, which the kit did not write"),
    (["train", "good.yaml", "--set", "run_name=report"], "run_name: 'report' is the name of a suite's report folder"),
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
    (["train", "good.yaml", "--set", "learning_rate=inf"],
     "learning_rate: must be a finite number, got inf; e.g. learning_rate: 0.001"),
    (["train", "good.yaml", "--set", "weight_decay=nan"], "weight_decay: must be a finite number, got nan"),
    (["train", "good.yaml", "--set", "learning_rate=1e400"],
     "learning_rate: must be a finite number, got 1e400 (too large for a float: it reads as inf)"),
    (["train", "big_lr.yaml"], "learning_rate: must be a finite number, got 3e400 (too large"),
    (["train", "good.yaml", "--set", 'learning_rate="0x10"'], "learning_rate: expected a number, got '0x10'"),
    (["train", "good.yaml", "--set", 'epochs="0x10"'], "epochs: expected an integer, got '0x10' (str)"),
    (["train", "good.yaml", "--set", "epochs=2.5"], "epochs: expected an integer, got 2.5 (float)"),
    (["run-all", "grid_inf.yaml", "--output", "o"], "grid_inf.yaml: learning_rate: must be a finite number, got inf"),
    (["train", "good.yaml", "--set", "run_name=failed_inf"],
     "out/failed_inf holds a run whose config.yaml this version of the kit refuses (learning_rate: "
     "must be a finite number, got inf"),
    # a training split smaller than one batch
    (["train", "good.yaml", "--set", "validation_split=0.9999"],
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


def _snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for path in sorted(root.rglob("*")):
        st = path.stat()
        out[str(path.relative_to(root))] = ("dir", st.st_mode) if path.is_dir() else (
            hashlib.sha256(path.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40
    assert len({tuple(a) for a, _ in CASES}) == len(CASES)


def _one_line(code, out: str, err: str, fragment: str):
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    assert lines[0].startswith("swin-gao") and fragment in lines[0], lines[0]
    assert out == "", out


def _refuses(root: Path, capsys, args, fragment):
    before, modules = _snapshot(root), set(sys.modules)
    try:
        code = cli.main(args)
    except SystemExit as exc:  # argparse's usage errors: the console script exits with it
        code = exc.code
    _one_line(code, *capsys.readouterr(), fragment)
    imported = {name.partition(".")[0] for name in set(sys.modules) - modules}
    assert not imported & {"tensorflow", "keras", "jax"}, "TensorFlow must not even start"
    assert _snapshot(root) == before, "bad input changed files"


@pytest.mark.parametrize("args,fragment", CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_line_and_exit_2(case_tree, capsys, args, fragment):
    _refuses(case_tree, capsys, args, fragment)


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
