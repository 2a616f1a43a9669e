"""The papermill batch runner and the report, end to end on tiny runs."""

import json

import pandas as pd
import pytest
import yaml

from conftest import TINY_DETERMINISTIC
from swin_gao_lib import cli
from swin_gao_lib.data.sources import load_raw
from swin_gao_lib.analysis.report import build_report
from swin_gao_lib.runs.runner import run_all

TINY = {**TINY_DETERMINISTIC, "dataset": "mnist", "max_train_samples": 64, "max_test_samples": 32,
        "batch_size": 32, "epochs": 1}


GRID_RUNS = ["grid-n1-s0", "grid-n1-s1", "grid-n2-s0", "grid-n2-s1"]


@pytest.mark.slow(75)
def test_run_all_runs_a_grid_keeps_going_past_a_failure_and_reports_the_seeds(tmp_path, capfd):
    # One suite for both (a kernel per run is most of the time): a grid file, 2 seeds x
    # N in {1, 2}, and a configuration that diverges while it trains.
    params, out = tmp_path / "params", tmp_path / "out"
    params.mkdir()
    (params / "grid.yaml").write_text(yaml.safe_dump({**TINY, "seeds": [0, 1],
                                                      "grid": {"accumulation_steps": [1, 2]}}))
    # a run that fails while it trains (bad data is found before any run starts): its loss
    # becomes NaN at its second step
    (params / "b-broken.yaml").write_text(yaml.safe_dump({**TINY, "learning_rate": 1e30,
                                                          "optimizer": "sgd", "momentum": 0.0}))
    code = cli.main(["run-all", str(params), "--output", str(out)])
    captured = capfd.readouterr()  # the kernels' output too
    # ipykernel's "Kernel is running over TCP without encryption" would break up the progress
    assert "without encryption" not in captured.err
    assert code == 1
    assert "ran 4, skipped 0 complete, failed 1" in captured.out
    assert "FAILED" in captured.err and "b-broken.yaml" in captured.err
    assert "RunError" in captured.err and "the loss became nan at epoch 1" in captured.err
    assert captured.err.count("FAILED") == 1  # listed once, at the end
    assert str(out / "b-broken" / "train.ipynb") in captured.err
    # the executed notebook of the failure shows the error
    failed_nb = json.loads((out / "b-broken" / "train.ipynb").read_text())
    assert any(o.get("ename") == "RunError" for c in failed_nb["cells"] for o in c.get("outputs", []))
    # the grid: one run per point, named by it, each with its executed notebook
    assert sorted(p.name for p in out.iterdir()) == sorted(GRID_RUNS + ["b-broken", "report"])
    for name in GRID_RUNS:
        cfg = yaml.safe_load((out / name / "config.yaml").read_text())
        assert (cfg["accumulation_steps"], cfg["seed"]) == (int(name[6]), int(name[-1]))
        assert (out / name / "metrics.json").is_file() and (out / name / "train.ipynb").is_file()
    assert json.loads((out / "grid-n2-s1" / "metrics.json").read_text())["accumulation_steps"] == 2
    # the report ran over the four complete runs
    assert (out / "report" / "summary.csv").is_file()
    assert len(pd.read_csv(out / "report" / "summary.csv")) == 4
    # ... and one self-contained page of it: figures embedded, no code cells
    page = (out / "report" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "build_report(" not in page
    assert "MNIST" in page and "Figs. 3–4" in page
    assert str(out / "report" / "report.html") in captured.out
    # ... grouping the grid's seeds: one configuration per N, paired over the seeds
    report = build_report(out)
    configs = report.study.configurations
    assert list(configs["seeds"]) == [2, 2] and list(configs["N"]) == [1, 2]
    comp = report.study.comparisons
    # the method the stated rule picks, seeds paired: t where it fits, else the sign-flip
    # permutation test (two seeds' t-interval, df = 1, easily leaves an accuracy's range)
    assert set(comp["n"]) == {2}
    for _, row in comp.iterrows():
        assert row["test"] in ("paired t", "sign-flip permutation"), row["test"]
        if row["metric"] == "test_accuracy":
            assert -1 <= row["ci_low"] <= row["ci_high"] <= 1  # never outside the range
        if row["test"] == "sign-flip permutation":
            # two pairs: an exact sign-flip test can give p = 2 / 2**2 at the least
            assert row["method_reason"] in ("some runs collapsed: two modes, t does not fit; "
                                            "smallest attainable p 0.5",
                                            "the t-interval left the range of an accuracy "
                                            "difference; smallest attainable p 0.5")
    assert (out / "report" / "findings.md").is_file()

    # A re-run skips complete records (seed by seed) and lists the diverged run again without
    # re-running it.
    before = (out / "grid-n1-s0" / "metrics.json").read_text()
    result = run_all(params, out, progress=False, report=False)
    assert [p.name for p in result.skipped] == ["grid-n1-s0", "grid-n2-s0", "grid-n1-s1",
                                                "grid-n2-s1"]
    assert [f.params.name for f in result.failed] == ["b-broken.yaml"]
    assert (out / "grid-n1-s0" / "metrics.json").read_text() == before
    # The grid file alone: everything complete, nothing failed -- exit 0.
    assert cli.main(["run-all", str(params / "grid.yaml"), "--output", str(out)]) == 0
    assert "ran 0, skipped 4 complete, failed 0" in capfd.readouterr().out
    assert (out / "grid-n1-s0" / "metrics.json").read_text() == before


def test_plans_count_images_times_epochs(tmp_path):
    """Each run's cost (what the progress counts) is its training images x epochs."""
    from swin_gao_lib.runs.runner import plan_suite

    (tmp_path / "small.yaml").write_text("dataset: mnist\nsource: sample\nmax_train_samples: 100\n"
                                         "batch_size: 50\nepochs: 2\n")
    (tmp_path / "big.yaml").write_text("dataset: cifar10\nsource: sample\nepochs: 3\n")
    plans = plan_suite(sorted(tmp_path.glob("*.yaml")), tmp_path / "out")
    costs = {p.run_dir.name: p.cost for p in plans}
    assert costs["small"] == 2 * 100
    n = len(load_raw("cifar10", "sample").y_train)
    assert costs["big"] == 3 * (n - round(0.1 * n))


def test_run_all_names_its_executor_and_dask_without_options_gets_the_defaults(tmp_path,
                                                                                monkeypatch):
    """A misspelt executor ran the notebooks one after another, and executor='dask' without
    options ran them sequentially under a lock that said Dask."""
    from swin_gao_lib.runs import runner
    from swin_gao_lib.runs.dask_runner import DaskOptions

    params = tmp_path / "a.yaml"
    params.write_text(yaml.safe_dump(TINY))
    for executor, dask in (("side_by_side", None), ("side-by-side", DaskOptions())):
        with pytest.raises(ValueError, match="name one of sequential, dask, side-by-side"):
            run_all(params, tmp_path / "out", executor=executor, dask=dask, progress=False)
    assert not (tmp_path / "out").exists()
    seen = []
    monkeypatch.setattr(runner, "_run_on_dask", lambda todo, *a, options, **k: seen.append(options))
    run_all(params, tmp_path / "out", executor="dask", progress=False, report=False)
    assert seen == [DaskOptions()]
