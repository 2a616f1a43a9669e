"""tools/check_citations.py: params headers quote only numbers their trials' records show."""

import json
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from check_citations import check, citations, study_params  # noqa: E402


def _run(folder: Path, val, test=0.9713):
    folder.mkdir(parents=True)
    pd.DataFrame({"epoch": range(1, len(val) + 1), "accuracy": val, "val_loss": [0.5] * len(val),
                  "val_accuracy": val}).to_csv(folder / "history.csv", index=False)
    (folder / "metrics.json").write_text(json.dumps({"test_accuracy": test,
                                                     "train_eval_accuracy": 0.99}))


@pytest.fixture
def examples(tmp_path):
    trials = tmp_path / "examples" / "study-tuning" / "trial"
    _run(trials / "trial-lr0.002-s0", [0.95, 0.97, 0.975, 0.976])
    _run(trials / "trial-lr0.004-s0", [0.96, 0.965, 0.97, 0.972])
    _run(trials / "trial-lr0.004-s1", [0.96, 0.965, 0.97, 0.974])
    cost = tmp_path / "examples" / "study-tuning" / "cost" / "quick"
    cost.mkdir(parents=True)
    (cost / "cost.json").write_text(json.dumps({"estimated_wall_s": 2.41 * 3600 + 10}))
    return tmp_path / "examples"


def _params(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text("".join(f"# {line}\n" for line in text.splitlines()) + "epochs: 4\n# 12%\n")
    return path


def test_citations_that_agree_with_the_records_pass(tmp_path, examples):
    path = _params(tmp_path, "AdamW 2e-3 [trial lr0.002: val 97.6% @4] beat 4e-3\n"
                             "[trial lr0.004 s1: val\n 97.4% @4] (the citation may wrap); test\n"
                             "[trial lr0.002: test 97.13%], slope [trial lr0.002: val-slope "
                             "+0.30 pp/epoch @4]; target >= 97% test; [cost quick: 2.41 h];\n"
                             "seeds 0-1: [trial lr0.004: mean-val 97.3% @4], over epochs 3-4:\n"
                             "[trial lr0.002: val 97.55% @3-4], their spread [trial lr0.004: "
                             "sd-test 0.0%]; a 95% interval is a confidence level")
    found, bare = citations(path)
    assert len(found) == 8 and bare == []  # the % after the header is not the header's
    assert check([path], examples) == []


@pytest.mark.parametrize("text,problem", [
    ("[trial lr0.002: val 97.7% @4]", "the record shows 97.6000"),
    ("[trial lr0.004: val 97.2% @4]", "pick 2 runs of trial, not one"),
    ("[trial lr0.002: val 97.6%]", "name an epoch the run recorded"),
    ("[nosuch lr0.002: val 97.6% @4]", "no records of suite 'nosuch'"),
    ("[trial lr0.002: test 97.2%]", "the record shows 97.1300"),
    ("validation 97.6% after 4 epochs", "'97.6%' is quoted without a citation"),
    ("[cost quick: 2.5 h]", "the record shows 2.4128"),
])
def test_a_header_quoting_what_no_record_shows_fails(tmp_path, examples, text, problem):
    problems = check([_params(tmp_path, text)], examples)
    assert len(problems) == 1 and problem in problems[0], problems


def test_the_study_params_headers_cite_their_records():
    files = study_params()
    assert any("study-quick" in str(p) for p in files) and any("study-tuning" in str(p) for p in files)
    assert check(files) == []


def test_the_tuning_records_are_the_trial_grids_run_from_clean_commits():
    """Every trial the headers may cite is committed: the grid of its params file, run whole."""
    from swin_gao_lib.config import from_yaml
    from swin_gao_lib.config.params import resolve

    suites = [p for p in (ROOT / "examples" / "study-tuning").iterdir()
              if p.is_dir() and p.name != "cost"]
    assert suites
    for suite in suites:
        planned = {r.name: r.config for r in resolve(ROOT / "params" / "study-tuning"
                                                      / f"{suite.name}.yaml")}
        runs = {p.name: p for p in suite.iterdir() if p.is_dir()}
        assert set(runs) == set(planned), suite.name
        for name, run in runs.items():
            recorded = from_yaml((run / "config.yaml").read_text(), str(run))
            assert recorded.to_dict() | {"output_dir": ""} == (
                planned[name].to_dict() | {"output_dir": ""}), name
            metrics = json.loads((run / "metrics.json").read_text())
            commit = metrics["environment"]["git_commit"]
            assert len(commit) == 40 and "dirty" not in commit, name
