"""The linear reference: exact gradient, the unpenalised fit against statsmodels' MNLogit,
an L2 chosen on validation only, the CLI's folder rules and the report's reference row."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.special import softmax

from swin_gao_lib.config import make_config
from swin_gao_lib.data.splits import Splits
from swin_gao_lib.training import linear
from swin_gao_lib.training.linear import (LinearReference, features, fit_reference, fit_softmax, loss_and_grad,
                                 reference_dir)
from swin_gao_lib.records import LINEAR_REFERENCE, load_suite
from swin_gao_lib.analysis.report import references_table
from test_study import write_run


def _problem(n=300, d=4, k=3, seed=0):
    """Labels drawn from a softmax model: overlapping classes, so the MLE exists."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    w = rng.normal(size=(d, k))
    y = np.array([rng.choice(k, p=p) for p in softmax(x @ w, axis=1)])
    return x, y


def test_gradient_matches_finite_differences():
    x, y = _problem(n=50, d=5, k=4)
    rng = np.random.default_rng(1)
    params = rng.normal(scale=0.3, size=5 * 4 + 4)
    _, grad = loss_and_grad(params, x, y, 4, 0.07)
    h = 1e-6
    numeric = np.array([
        (loss_and_grad(params + h * e, x, y, 4, 0.07)[0]
         - loss_and_grad(params - h * e, x, y, 4, 0.07)[0]) / (2 * h)
        for e in np.eye(params.size)])
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_unpenalised_fit_matches_statsmodels_mnlogit():
    sm = pytest.importorskip("statsmodels.api")
    x, y = _problem()
    model = fit_softmax(x, y, 3, l2=0.0, max_iter=2000, gtol=1e-10)
    ref = sm.MNLogit(y, sm.add_constant(x)).fit(method="newton", disp=False, maxiter=100)
    # softmax regression is over-parameterised (MNLogit pins class 0): compare what is
    # identified, the probabilities and the log-likelihood
    np.testing.assert_allclose(model.probabilities(x),
                               ref.predict(sm.add_constant(x)), atol=1e-5)
    loss, _ = loss_and_grad(np.concatenate([model.w.ravel(), model.b]), x, y, 3, 0.0)
    assert -len(y) * loss == pytest.approx(ref.llf, rel=1e-8)
    assert model.converged


def _splits(seed=0, n=240):
    """Images whose class sets the mean brightness of one quadrant, with noise."""
    rng = np.random.default_rng(seed)

    def images(m):
        y = rng.integers(0, 10, size=m)
        x = rng.integers(0, 120, size=(m, 8, 8, 1))
        for i, c in enumerate(y):
            x[i, (c % 4) // 2 * 4:(c % 4) // 2 * 4 + 4, c % 2 * 4:c % 2 * 4 + 4] += 10 * c
        return x.astype(np.uint8), y

    (xt, yt), (xv, yv), (xs, ys) = images(n), images(n // 2), images(n // 2)
    return Splits(xt, yt, xv, yv, xs, ys, "synthetic")


def test_l2_is_chosen_on_validation_never_on_test():
    cfg = make_config(dataset="mnist")
    splits = _splits()
    grid = (1e-3, 1e-2, 1e-1)  # strong enough to converge fast
    ref = fit_reference(cfg, grid=grid, splits=splits)
    assert ref.l2 in ref.l2_grid and ref.samples == {"train": 240, "validation": 120, "test": 120}
    assert set(grid) <= set(ref.l2_grid)  # the grid only grows (past an edge that won)
    best = max(ref.validation_accuracy_by_l2.values())
    # the chosen L2 is the strongest of those with the best validation accuracy
    assert ref.l2 == max(float(k) for k, v in ref.validation_accuracy_by_l2.items() if v == best)
    assert ref.validation_accuracy == best
    # shuffled (or inverted) test labels change the test score only, never the choice
    rng = np.random.default_rng(5)
    for y_test in (rng.permutation(splits.y_test), 9 - splits.y_test):
        shuffled = Splits(splits.x_train, splits.y_train, splits.x_val, splits.y_val,
                          splits.x_test, y_test, "x")
        other = fit_reference(cfg, grid=grid, splits=shuffled)
        assert other.l2 == ref.l2
        assert other.validation_accuracy_by_l2 == ref.validation_accuracy_by_l2
    assert features(splits.x_train).max() <= 1.0


class _Fake:
    """A fitted model whose validation accuracy peaks at ``peak`` (log scale)."""

    def __init__(self, l2, peak):
        self.l2, self.peak = l2, peak
        self.params = np.zeros(1)

    def accuracy(self, x, y):
        return 0.9 - 0.01 * abs(np.log10(self.l2) - np.log10(self.peak))


@pytest.mark.parametrize("peak,grid,chosen,choice", [
    (1e-3, (1e-4, 1e-3, 1e-2), 1e-3, "interior"),
    # the best at the strong end: the grid grows x10 until a stronger L2 does worse
    (1e-1, (1e-5, 1e-4, 1e-3), 1e-1, "interior"),
    (1e-6, (1e-4, 1e-3), 1e-6, "interior"),
    # ... but not past its limits: then the reference says its L2 may lie beyond
    (1e3, (1e-1, 1.0), 10.0, "the strongest L2 tried; the grid stops at 10, so the best L2 "
                             "may lie beyond it"),
])
def test_the_l2_grid_grows_until_its_choice_is_interior(monkeypatch, peak, grid, chosen, choice):
    fitted = []

    def fake_fit(x, y, k, l2, max_iter=0, start=None):
        fitted.append((l2, start is not None))
        return _Fake(l2, peak)

    monkeypatch.setattr(linear, "fit_softmax", fake_fit)
    model, scores, how = linear.select_l2(None, None, None, None, 10, grid)
    assert (model.l2, how) == (pytest.approx(chosen), choice)
    assert fitted[0] == (max(grid), False)  # strongest first, from zero
    assert all(warm for _, warm in fitted[1:])  # every later fit starts from a neighbour
    assert set(grid) <= set(scores)


def test_a_reference_says_when_its_number_is_only_a_bound():
    ref = LinearReference("cifar10", "CIFAR-10", 0, "m", 10.0, [1.0, 10.0], {}, "the strongest "
                          "L2 tried; the grid stops at 10, so the best L2 may lie beyond it",
                          0.3, 0.37, 0.36, {"train": 9, "validation": 1, "test": 1}, 2000, False,
                          3e-4, "d")
    assert ref.caveat.startswith("L2 at the strongest L2 tried") and "2000 iterations" in ref.caveat
    assert "before converging" in ref.summary()


def _cli(*args):
    """``swin-gao`` in a process with one BLAS thread (spinning threads make it ~50x slower)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "swin_gao_lib.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_cli_writes_one_reference_and_the_suite_lists_it(tmp_path):
    out = tmp_path / "suite"
    args = ["linear", "params/quick/mnist-baseline.yaml", "--set", f"output_dir={out}",
            "--set", "max_train_samples=400", "--set", "max_test_samples=300"]
    proc = _cli(*args)
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    assert "\n" not in line and "validation" in line and "L2" in line
    cfg = make_config(dataset="mnist", output_dir=str(out), run_name="mnist-baseline")
    path = reference_dir(cfg) / LINEAR_REFERENCE
    ref = json.loads(path.read_text())
    assert ref["samples"]["train"] == 400 and ref["samples"]["test"] == 300
    assert ref["test_accuracy"] > 0.5  # digits are linearly separable enough
    # never overwritten without being asked; a folder with foreign files is refused
    proc = _cli(*args)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and "\n" not in err
    assert "--overwrite" in err and "linear.json" in err
    (path.parent / "notes.txt").write_text("mine")
    proc = _cli(*args, "--overwrite")
    assert proc.returncode == 2 and "notes.txt" in proc.stderr
    (path.parent / "notes.txt").unlink()
    # no validation split, no L2 choice: bad input, one line naming the field
    proc = _cli(*args, "--set", "validation_split=0", "--set", "run_name=noval")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "validation_split" in proc.stderr and not (out / "noval-linear").exists()

    # a suite holding the reference: read as a reference, not an incomplete run
    # (build_report writes it as references.md: tests/test_study.py checks that)
    write_run(out, seed=0, acc=0.9)
    suite = load_suite(out)
    assert suite.incomplete == [] and [r["name"] for r in suite.references] == [path.parent.name]
    table = references_table(suite).iloc[0]
    assert table["model"] == "softmax regression on pixels" and table["dataset"] == "MNIST"
    assert table["test accuracy (%)"] == pytest.approx(100 * ref["test_accuracy"])
    assert table["L2"] == ref["l2"] and table["train images"] == 400
