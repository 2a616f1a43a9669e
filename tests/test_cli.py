"""The command line as a user meets it: --version, --help, an uneven N, report, examples."""

from __future__ import annotations

import shutil
import subprocess
import sys
import types
from importlib.metadata import version
from pathlib import Path

import pytest

from swin_gao_lib import cli
from swin_gao_lib.analysis.page import external_urls
from swin_gao_lib.config import examples, make_config
from swin_gao_lib.config.checks import uneven_split_note
from swin_gao_lib.runs import execute
from swin_gao_lib.runs.scratch import root
from test_report_display import fake_suite

REPO = Path(__file__).resolve().parents[1]


def test_version_names_the_release_and_the_commit_in_a_clone(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--version"])
    assert stop.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"swin-gao {version('swin-gao')}")
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip()
    if sha:  # run from a clone: the commit it runs
        assert f"(commit {sha[:12]}" in out


@pytest.mark.parametrize("command,examples,also", [
    ("train", None, "docs/configuration.md"),
    ("run-all", ["swin-gao run-all params/quick",
                 "swin-gao run-all params/study-quick --executor dask --workers 2"],
     "swin-gao examples params"),  # the way out without a clone
])
def test_help_shows_two_examples_that_parse_and_name_shipped_params(capsys, command, examples,
                                                                   also):
    with pytest.raises(SystemExit) as stop:
        cli.main([command, "--help"])
    out = capsys.readouterr().out
    assert stop.value.code == 0 and also in out
    shown = [line.strip() for line in out.splitlines()
             if line.strip().startswith(f"swin-gao {command} params/")]
    assert len(shown) == 2 and shown == (examples or shown)
    for example in shown:
        args = vars(cli.build_parser().parse_args(example.split()[1:]))
        assert (REPO / args.get("params", args.get("params_dir"))).exists()


def test_an_uneven_split_is_named_in_one_line():
    note = uneven_split_note(make_config(batch_size=32, accumulation_steps=5))
    assert note is not None and "\n" not in note
    assert "micro-batches of 7+7+7+7+4" in note and "N that divide 32: 2, 4, 8, 16, 32" in note
    assert uneven_split_note(make_config(batch_size=32, accumulation_steps=4)) is None
    assert uneven_split_note(make_config(batch_size=32, accumulation_steps=1)) is None


def test_train_prints_the_note_before_training(monkeypatch, capsys, tmp_path):
    calls = []
    fake = types.ModuleType("swin_gao_lib.training.train")
    fake.train = lambda cfg, **kw: calls.append(cfg)  # no TensorFlow: the CLI's output is the test
    monkeypatch.setitem(sys.modules, "swin_gao_lib.training.train", fake)
    monkeypatch.setattr("swin_gao_lib.runtime.backend.use_backend", lambda name: "tensorflow")
    code = cli.main(["train", str(REPO / "params" / "examples" / "mnist-sample.yaml"),
                     "--set", "batch_size=32", "--set", "accumulation_steps=5",
                     "--set", f"output_dir={tmp_path}"])
    assert code == 0 and calls and calls[0].accumulation_steps == 5
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "7+7+7+7+4" in notes[0]


def test_report_writes_the_one_page_report_through_the_notebook(monkeypatch, capsys, tmp_path):
    fake_suite(tmp_path / "suite")
    executed = []

    scratches = []

    def execute(source, target, *, cwd, parameters, kernel_name=None, scratch=None):
        # the notebook as a kernel would leave it: its stored outputs stand in for a new run
        executed.append((Path(source).name, parameters))
        scratches.append(scratch)
        shutil.copy(REPO / "notebooks" / "report.ipynb", target)

    monkeypatch.setattr("swin_gao_lib.runs.execute.execute_notebook", execute)
    assert cli.main(["report", str(tmp_path / "suite")]) == 0
    page = tmp_path / "suite" / "report" / "report.html"
    assert executed == [("report.ipynb", {"suite_dir": str((tmp_path / "suite").resolve()),
                                          "out_dir": str(page.parent)})]
    assert f"all of it on one page: {page}" in capsys.readouterr().out
    # the kernel's files in a scratch folder of this command, gone when it ends
    assert scratches[0].parent == root() and not scratches[0].exists()
    assert page.is_file() and not external_urls(page.read_text())
    # --no-html: the figures and tables alone, no kernel
    assert cli.main(["report", str(tmp_path / "suite"), "--no-html", "--out",
                     str(tmp_path / "plain")]) == 0
    assert len(executed) == 1 and (tmp_path / "plain" / "summary.csv").is_file()


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_examples_copies_the_params_folders_and_never_over_anything(tmp_path, capsys):
    target = tmp_path / "params"
    assert cli.main(["examples", str(target)]) == 0
    assert _files(target) == _files(REPO / "params")  # every shipped folder, as in the clone
    out = capsys.readouterr().out
    assert f"into {target}: " in out and "quick/, " in out
    (target / "quick" / "mnist-gao.yaml").write_text("epochs: 1\n")  # the user's own edit
    before = _files(target)
    assert cli.main(["examples", str(target)]) == 2  # not empty: refused, one line
    err = capsys.readouterr().err.strip()
    assert err == (f"swin-gao: error: DIR: {target} already exists and is not empty; give a new "
                   "or empty folder (nothing in it is overwritten)")
    assert _files(target) == before
    (tmp_path / "a-file").write_text("x")
    assert cli.main(["examples", str(tmp_path / "a-file")]) == 2
    assert "is a file" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()  # an empty folder is fine
    assert cli.main(["examples", str(tmp_path / "empty")]) == 0


def test_examples_reads_the_copy_a_wheel_ships(tmp_path, monkeypatch):
    # inside an installed wheel there is no clone: setup.py put params/ into the package
    packaged = tmp_path / "site-packages" / "swin_gao_lib" / "example_params"
    (packaged / "quick").mkdir(parents=True)
    (packaged / "quick" / "a.yaml").write_text("epochs: 1\n")
    monkeypatch.setattr(examples, "PACKAGED", packaged)
    assert examples.example_params_dir() == packaged
    examples.copy_examples(tmp_path / "out")
    assert _files(tmp_path / "out") == {"quick/a.yaml": b"epochs: 1\n"}
    # the notebooks run-all executes come from there too
    notebooks = tmp_path / "site-packages" / "swin_gao_lib" / "notebooks"
    notebooks.mkdir()
    (notebooks / "train.ipynb").write_text("{}")
    monkeypatch.setattr(execute, "REPO_ROOT", tmp_path / "no-clone")
    monkeypatch.setattr(execute, "PACKAGED_NOTEBOOKS", notebooks)
    monkeypatch.chdir(tmp_path)
    assert execute.find_notebook("train.ipynb") == notebooks / "train.ipynb"


def test_a_missing_params_folder_names_the_examples_command(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # as after pip install: no params/ here
    assert cli.main(["run-all", "params/quick"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("swin-gao: error: params/quick: no such params folder or file; ")
    assert "`swin-gao examples params` copies" in err and "\n" not in err
    assert cli.main(["train", "params/quick/mnist-gao.yaml"]) == 2
    assert "`swin-gao examples params` copies" in capsys.readouterr().err
    (tmp_path / "params").mkdir()  # a folder of the user's own: a typo is only a typo
    assert cli.main(["run-all", "params/quik"]) == 2
    assert "swin-gao examples" not in capsys.readouterr().err
