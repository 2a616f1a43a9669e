r"""The linear reference: multinomial softmax regression on raw pixels, on a run's own split.

On the run's splits (:func:`swin_gao_lib.data.splits.load_splits`, no
TensorFlow), pixels scaled to [0, 1] and flattened, L-BFGS
(``scipy.optimize.minimize``) fits, with ``P`` the softmax probabilities and
``Y`` the one-hot labels (the bias is not penalised):

.. math::

    L(W, b) = -\frac{1}{n} \sum_i \log \operatorname{softmax}(x_i W + b)_{y_i}
              + \frac{\lambda}{2} \lVert W \rVert_2^2, \qquad
    \nabla_W L = \frac{1}{n} X^\top (P - Y) + \lambda W, \qquad
    \nabla_b L = \frac{1}{n} \mathbf{1}^\top (P - Y)

``lambda`` is chosen by validation accuracy alone (ties: the stronger) from
:data:`L2_GRID`, grown x10 past the end holding the best until the choice is
interior or reaches :data:`L2_LIMITS`; fits run strongest first, each
warm-started from its neighbour. ``choice`` and ``converged`` say when the
number is only a bound. Train split only; the test split is scored once, with
the chosen model. Written as ``<output_dir>/<run_name>-linear/linear.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from scipy import optimize as _opt
from scipy.special import log_softmax

from swin_gao_lib.config import datasets
from swin_gao_lib.config import RunConfig
from swin_gao_lib.data.splits import Splits, load_splits
from swin_gao_lib.errors import ConfigError
from swin_gao_lib.files import write_json
from swin_gao_lib.records import LINEAR_REFERENCE, run_dir_of

#: The L2 strengths tried first, weakest first; the validation split picks one.
L2_GRID: tuple[float, ...] = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
#: How far the grid may grow (x10 at a time) while its best value sits at an end.
L2_LIMITS: tuple[float, float] = (1e-8, 10.0)
#: L-BFGS stops after this many iterations (or when the projected gradient is below GTOL).
MAX_ITER = 2000
GTOL = 1e-6
INTERIOR = "interior"
#: What the reference is, as tables name it.
MODEL = "softmax regression on pixels"


def features(x: np.ndarray) -> np.ndarray:
    """uint8 images ``(n, h, w, c)`` as float64 rows in [0, 1]: ``(n, h*w*c)``."""
    return np.asarray(x, dtype=np.float64).reshape(len(x), -1) / 255.0


def loss_and_grad(params: np.ndarray, x: np.ndarray, y: np.ndarray, num_classes: int,
                  l2: float) -> tuple[float, np.ndarray]:
    """The penalised mean cross-entropy and its exact gradient (module docstring).

    ``params`` is ``W`` (``d x K``) then ``b`` (``K``), flattened; ``y`` holds
    integer labels.
    """
    n, d = x.shape
    w = params[: d * num_classes].reshape(d, num_classes)
    b = params[d * num_classes:]
    logp = log_softmax(x @ w + b, axis=1)
    loss = -float(logp[np.arange(n), y].mean()) + 0.5 * l2 * float(np.sum(w * w))
    residual = np.exp(logp)
    residual[np.arange(n), y] -= 1.0
    residual /= n
    grad_w = x.T @ residual + l2 * w
    return loss, np.concatenate([grad_w.ravel(), residual.sum(axis=0)])


@dataclass
class SoftmaxModel:
    """Fitted weights ``w`` (``d x K``) and bias ``b`` (``K``), and how the fit ended."""

    w: np.ndarray
    b: np.ndarray
    l2: float
    iterations: int
    converged: bool
    gradient_norm: float = float("nan")  # of the penalised loss, at the end

    @property
    def params(self) -> np.ndarray:
        return np.concatenate([self.w.ravel(), self.b])

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities of the rows of ``x`` (features, not images)."""
        return np.exp(log_softmax(x @ self.w + self.b, axis=1))

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.argmax(x @ self.w + self.b, axis=1)

    def accuracy(self, x: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(self.predict(x) == y))


def fit_softmax(x: np.ndarray, y: np.ndarray, num_classes: int, l2: float,
                max_iter: int = MAX_ITER, gtol: float = GTOL,
                start: np.ndarray | None = None) -> SoftmaxModel:
    """Fit the penalised softmax regression by L-BFGS, from zero weights or from ``start``."""
    if l2 < 0:
        raise ValueError(f"l2 must be >= 0, got {l2}")
    d = x.shape[1]
    if start is None:
        start = np.zeros(d * num_classes + num_classes)
    args = (x, np.asarray(y, dtype=np.int64), num_classes, l2)
    res = _opt.minimize(loss_and_grad, start, args=args, jac=True, method="L-BFGS-B",
                        options={"maxiter": max_iter, "gtol": gtol, "maxcor": 20})
    grad = loss_and_grad(res.x, *args)[1]
    return SoftmaxModel(res.x[: d * num_classes].reshape(d, num_classes).copy(),
                        res.x[d * num_classes:].copy(), l2, int(res.nit), bool(res.success),
                        float(np.max(np.abs(grad))))


def select_l2(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
              num_classes: int, grid: Sequence[float] = L2_GRID, max_iter: int = MAX_ITER,
              limits: tuple[float, float] = L2_LIMITS
              ) -> tuple[SoftmaxModel, dict[float, float], str]:
    """Fit every L2 of ``grid`` on train; keep the best on validation (ties: stronger L2).

    The grid grows x10 past the end holding the best, up to ``limits``. Returns
    the chosen model, each L2's validation accuracy and how the choice came out
    (``interior``, or the edge and why). The test split cannot inform the choice.
    """
    if not grid:
        raise ValueError("the L2 grid is empty")
    scores: dict[float, float] = {}
    models: dict[float, SoftmaxModel] = {}

    def fit(l2: float, near: float | None) -> None:
        start = models[near].params if near is not None else None
        models[l2] = fit_softmax(x_train, y_train, num_classes, l2, max_iter, start=start)
        scores[l2] = models[l2].accuracy(x_val, y_val)

    previous = None
    for l2 in sorted(grid, reverse=True):  # strongest first: each warm-starts the next
        fit(l2, previous)
        previous = l2

    def best() -> float:
        top = max(scores.values())
        return max(l2 for l2, v in scores.items() if v == top)  # ties: the stronger penalty

    while True:
        chosen, tried = best(), sorted(scores)
        if tried[0] < chosen < tried[-1]:
            return models[chosen], scores, INTERIOR
        weaker = chosen == tried[0]
        step = chosen / 10 if weaker else chosen * 10
        if not limits[0] <= step <= limits[1]:
            where = "weakest" if weaker else "strongest"
            return models[chosen], scores, (
                f"the {where} L2 tried; the grid stops at {limits[0 if weaker else 1]:g}, so "
                f"the best L2 may lie beyond it")
        fit(step, chosen)


@dataclass
class LinearReference:
    """What ``linear.json`` holds: the reference's accuracies, its L2 and its data."""

    dataset: str
    dataset_title: str
    seed: int
    model: str
    l2: float
    l2_grid: list[float]
    validation_accuracy_by_l2: dict[str, float]
    choice: str
    train_accuracy: float
    validation_accuracy: float
    test_accuracy: float
    samples: dict[str, int]
    iterations: int
    converged: bool
    gradient_norm: float
    data: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def caveat(self) -> str:
        """Why the number may be only a bound (an L2 at the grid's edge, no convergence), or ""."""
        parts = [] if self.choice == INTERIOR else [f"L2 at {self.choice}"]
        if not self.converged:
            parts.append(f"the fit stopped after {self.iterations} iterations, before "
                         f"converging (largest gradient component {self.gradient_norm:.1e})")
        return "; ".join(parts)

    def summary(self) -> str:
        """One line: data set, validation and test accuracy, the chosen L2, the sizes."""
        s = self.samples
        how = self.caveat or "interior, converged"
        return (f"linear reference ({self.model}) on {self.dataset_title}, seed {self.seed}: "
                f"validation {100 * self.validation_accuracy:.1f}%, test "
                f"{100 * self.test_accuracy:.1f}% (L2 {self.l2:g}: {how}; chosen on validation "
                f"from {', '.join(f'{v:g}' for v in self.l2_grid)}; {s['train']:,} train / "
                f"{s['validation']:,} validation / {s['test']:,} test images)")


def fit_reference(cfg: RunConfig, grid: Sequence[float] = L2_GRID, splits: Splits | None = None,
                  max_iter: int = MAX_ITER) -> LinearReference:
    """The linear reference on the split of ``cfg`` (``splits`` if already loaded)."""
    splits = load_splits(cfg) if splits is None else splits
    if not len(splits.y_val):
        raise ConfigError("validation_split: the linear reference chooses its L2 on the "
                          "validation split, which is empty; set validation_split > 0")
    num_classes = cfg.num_classes
    x_train, x_val, x_test = (features(splits.x_train), features(splits.x_val),
                              features(splits.x_test))
    y_train, y_val, y_test = (np.asarray(v, dtype=np.int64).ravel()
                              for v in (splits.y_train, splits.y_val, splits.y_test))
    model, scores, choice = select_l2(x_train, y_train, x_val, y_val, num_classes, grid,
                                      max_iter)
    keep = ("dataset", "source", "seed", "validation_split", "max_train_samples",
            "max_test_samples", "image_handling")
    return LinearReference(
        dataset=cfg.dataset, dataset_title=datasets.title(cfg.dataset), seed=cfg.seed,
        model=MODEL, l2=model.l2, l2_grid=sorted(float(v) for v in scores),
        validation_accuracy_by_l2={f"{k:g}": scores[k] for k in sorted(scores)},
        choice=choice,
        train_accuracy=model.accuracy(x_train, y_train),
        validation_accuracy=model.accuracy(x_val, y_val),
        test_accuracy=model.accuracy(x_test, y_test), samples=splits.sizes(),
        iterations=model.iterations, converged=model.converged,
        gradient_norm=model.gradient_norm, data=splits.description,
        config={k: getattr(cfg, k) for k in keep if hasattr(cfg, k)})


def reference_dir(cfg: RunConfig) -> Path:
    """Where the reference of ``cfg`` goes: ``<output_dir>/<run_name>-linear``."""
    run_dir = run_dir_of(cfg)
    return run_dir.with_name(run_dir.name + "-linear")


def check_reference_dir(path: Path, overwrite: bool = False) -> None:
    """Refuse, writing nothing, a folder that holds anything but an earlier reference.

    Raises:
        ConfigError: the folder is a file, holds files the kit did not write,
            or already holds a reference and ``overwrite`` is not set.
    """
    if path.exists() and not path.is_dir():
        raise ConfigError(f"output: {path} is a file, not a folder; choose another run_name or "
                          "output_dir")
    if not path.is_dir():
        return
    foreign = sorted(p.name for p in path.iterdir() if p.name != LINEAR_REFERENCE)
    if foreign:
        raise ConfigError(f"output: {path} already holds {', '.join(foreign[:3])}, which the kit "
                          "did not write; choose another run_name or output_dir")
    if (path / LINEAR_REFERENCE).exists() and not overwrite:
        raise ConfigError(f"output: {path / LINEAR_REFERENCE} already exists; choose another "
                          "run_name or output_dir, or pass --overwrite to replace it")


def write_reference(ref: LinearReference, path: str | os.PathLike) -> Path:
    """Write ``linear.json`` into the folder ``path`` (atomically)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return write_json(path / LINEAR_REFERENCE, asdict(ref))

