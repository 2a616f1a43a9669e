r"""Bounded, possibly bimodal outcomes: permutation tests, their inverted intervals, collapses.

Accuracies live in [0, 1], and a configuration that *collapses* on some seeds
(stays at chance) has two modes, where a t-interval can leave the range a
difference can take. *Paired*: the sign-flip test of ``mean(d)``, ``d = a - b``
over the ``2^n`` sign patterns (exact up to :data:`MAX_EXACT` seeds, Monte
Carlo beyond); *unpaired*: the label permutation test of the difference of
means (exact up to :data:`MAX_EXACT_SPLITS` relabellings).

For a shift ``delta`` (``H0: difference = delta``), every permutation ``pi``
gives ``T_pi - T_obs = c_pi + k_pi delta`` with ``k_pi >= 0`` (sign flips of the
set ``S``: ``c = -2 sum_S d / n``, ``k = 2 |S| / n``), so::

    p_greater(delta) = P_pi(c_pi + k_pi delta >= 0)   (rises with delta)
    p_less(delta)    = P_pi(c_pi + k_pi delta <= 0)   (falls with delta)

The interval is the set of shifts no one-sided test rejects at ``(1 - c) / 2``,
read exactly off the sorted breakpoints ``-c_pi / k_pi`` (Hartigan 1969), never
beyond ``[-1, +1]``. The two-sided p is ``min(1, 2 min(p_greater(0), p_less(0)))``;
the TOST at margin ``m`` is ``max(p_greater(-m), p_less(+m))``; the MDE is the
shift the two-sided test finds with the stated power when the observed
residuals, resampled (:data:`MDE_SIMULATIONS`, a fixed seed), are re-centred
there. ``scipy.stats.permutation_test`` gives neither the breakpoints nor the
shifted tests, so the tests are written out.

A run *collapsed* when its final validation accuracy is below chance +
:data:`COLLAPSE_MARGIN`, or it diverged; collapse counts are compared by
Fisher's exact test (``scipy.stats.fisher_exact``, two-sided).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations
from typing import Sequence

import numpy as np
from scipy import stats as _st

#: Paired tests enumerate all 2^n sign patterns up to this many seeds.
MAX_EXACT = 16
#: Unpaired tests enumerate every relabelling up to this many.
MAX_EXACT_SPLITS = 200_000
#: Monte Carlo size beyond the exact limits (a fixed seed: the report is reproducible).
MONTE_CARLO = 50_000
#: Draws of the power simulation behind the minimum detectable effect.
MDE_SIMULATIONS = 1000
#: A run has collapsed when its final validation accuracy is below chance + this.
COLLAPSE_MARGIN = 0.05
#: The range of a difference of two accuracies (fractions): no interval leaves it.
ACCURACY_RANGE = (-1.0, 1.0)
_SEED = 20230719
#: Relabellings per simulated unpaired experiment (the power simulation only).
_SIMULATED_RELABELLINGS = 999
_TOL = 1e-12


def collapsed(val_accuracy: float, num_classes: int, margin: float = COLLAPSE_MARGIN) -> bool:
    """Whether a run with this final validation accuracy stayed at chance (NaN: diverged)."""
    if val_accuracy is None or not math.isfinite(val_accuracy):
        return True
    return val_accuracy < 1.0 / num_classes + margin


def fisher_collapse_p(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Fisher's exact two-sided p-value for ``k_a`` of ``n_a`` collapses vs ``k_b`` of ``n_b``."""
    if min(n_a, n_b) < 1:
        return math.nan
    return float(_st.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue)


@dataclass(frozen=True)
class Permutation:
    """A permutation comparison: its estimate and every permutation's ``(c, k)`` (module doc);
    made by :func:`sign_flip` or :func:`label_permutation`."""

    estimate: float
    c: np.ndarray = field(repr=False)
    k: np.ndarray = field(repr=False)
    test: str
    n_a: int
    n_b: int
    exact: bool
    bounds: tuple[float, float] = ACCURACY_RANGE
    residuals: tuple[np.ndarray, ...] = field(default=(), repr=False)

    def p_greater(self, delta: float = 0.0) -> float:
        """One-sided p of ``H0: difference <= delta`` against *greater*."""
        return float(np.mean(self.c + self.k * delta >= -_TOL))

    def p_less(self, delta: float = 0.0) -> float:
        """One-sided p of ``H0: difference >= delta`` against *less*."""
        return float(np.mean(self.c + self.k * delta <= _TOL))

    @property
    def p_value(self) -> float:
        """Two-sided: twice the smaller one-sided p-value at 0, at most 1."""
        return min(1.0, 2 * min(self.p_greater(0.0), self.p_less(0.0)))

    def tost_p(self, margin: float) -> float:
        """The equivalence p-value at ``margin``: ``max(p_greater(-m), p_less(+m))``."""
        if not margin > 0:
            raise ValueError(f"an equivalence margin must be > 0, got {margin}")
        return max(self.p_greater(-margin), self.p_less(margin))

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """The shifts no one-sided test rejects at ``(1 - confidence) / 2``, within :attr:`bounds`."""
        tail = (1 - confidence) / 2
        return self._lower(tail), self._upper(tail)

    def _breakpoints(self) -> tuple[np.ndarray, int, int]:
        moving = self.k > _TOL
        points = np.sort(-self.c[moving] / self.k[moving])
        fixed_c = self.c[~moving]
        return points, int(np.sum(fixed_c >= -_TOL)), int(np.sum(fixed_c <= _TOL))

    def _lower(self, tail: float) -> float:
        points, base, _ = self._breakpoints()
        # p_greater(delta) = (base + #{points <= delta}) / N must exceed `tail`
        need = math.floor(tail * self.c.size - base) + 1
        value = -math.inf if need <= 0 else float(points[min(need, points.size) - 1])
        return max(value, self.bounds[0])

    def _upper(self, tail: float) -> float:
        points, _, base = self._breakpoints()
        need = math.floor(tail * self.c.size - base) + 1
        value = math.inf if need <= 0 else float(points[::-1][min(need, points.size) - 1])
        return min(value, self.bounds[1])

    def minimum_detectable_effect(self, alpha: float = 0.05, power: float = 0.8) -> float:
        """The shift the two-sided test at ``alpha`` finds with ``power`` (module docstring)."""
        if not self.residuals:
            return math.nan
        rng = np.random.default_rng(_SEED)
        draws = [r[rng.integers(0, r.size, size=(MDE_SIMULATIONS, r.size))] for r in self.residuals]

        def rejects(delta: float) -> float:
            return float(np.mean(_simulated_p(draws, delta, self.test) <= alpha))

        high = self.bounds[1] - self.bounds[0]
        if rejects(high) < power:
            return math.inf
        low = 0.0
        for _ in range(30):
            mid = (low + high) / 2
            low, high = (mid, high) if rejects(mid) < power else (low, mid)
            if high - low < 1e-4:
                break
        return high


def _subsets(n: int) -> np.ndarray:
    """Every subset of ``range(n)`` as a 0/1 row (``2^n x n``)."""
    return ((np.arange(2**n)[:, None] >> np.arange(n)) & 1).astype(np.float64)


def _sign_patterns(n: int) -> tuple[np.ndarray, bool]:
    if n <= MAX_EXACT:
        return _subsets(n), True
    rng = np.random.default_rng(_SEED)
    flips = rng.integers(0, 2, size=(MONTE_CARLO, n)).astype(np.float64)
    return np.vstack([np.zeros((1, n)), flips]), False  # the identity counts once


def sign_flip(a: Sequence[float], b: Sequence[float],
              bounds: tuple[float, float] = ACCURACY_RANGE) -> Permutation:
    """The paired sign-flip permutation comparison of ``mean(a - b)``."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = d.size
    if n < 1:
        raise ValueError("a sign-flip test needs at least one pair")
    flips, exact = _sign_patterns(n)
    c = -2.0 * (flips @ d) / n
    k = 2.0 * flips.sum(axis=1) / n
    return Permutation(float(d.mean()), c, k, "sign-flip permutation", n, n, exact, bounds,
                       (d - d.mean(),))


def label_permutation(a: Sequence[float], b: Sequence[float],
                      bounds: tuple[float, float] = ACCURACY_RANGE) -> Permutation:
    """The unpaired label-permutation comparison of ``mean(a) - mean(b)``."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    na, nb = a.size, b.size
    if na < 1 or nb < 1:
        raise ValueError("a permutation test needs values on both sides")
    members, exact = _relabellings(na, nb)
    pooled = np.concatenate([a, b])
    # A relabelling puts `members` (n_a of the pooled) in the arm; j of them are from a.
    in_arm = members.astype(bool)
    t_pi = (in_arm @ pooled) / na - ((~in_arm) @ pooled) / nb
    t_obs = a.mean() - b.mean()
    j = in_arm[:, :na].sum(axis=1)
    # the arm's values lowered by delta: T_pi - T_obs gains (n_a - j)(1/n_a + 1/n_b) delta
    k = (na - j) * (1.0 / na + 1.0 / nb)
    return Permutation(float(t_obs), t_pi - t_obs, k, "label permutation", na, nb, exact,
                       bounds, (a - a.mean(), b - b.mean()))


def _relabellings(na: int, nb: int) -> tuple[np.ndarray, bool]:
    n = na + nb
    if math.comb(n, na) <= MAX_EXACT_SPLITS:
        rows = np.zeros((math.comb(n, na), n), dtype=np.int8)
        for i, chosen in enumerate(combinations(range(n), na)):
            rows[i, list(chosen)] = 1
        return rows, True
    return _random_relabellings(na, nb, MONTE_CARLO), False


def _random_relabellings(na: int, nb: int, count: int) -> np.ndarray:
    """The observed labelling (counted once), then ``count`` random ones, as 0/1 rows."""
    rng = np.random.default_rng(_SEED)
    rows = np.zeros((count + 1, na + nb), dtype=np.int8)
    rows[0, :na] = 1
    for i in range(1, count + 1):
        rows[i, rng.permutation(na + nb)[:na]] = 1
    return rows


def _simulated_p(draws: list[np.ndarray], delta: float, test: str) -> np.ndarray:
    """Two-sided p-values of simulated experiments (rows of ``draws``) shifted by ``delta``."""
    if test == "sign-flip permutation":
        (d,) = draws
        d = d + delta
        n = d.shape[1]
        flips, _ = _sign_patterns(n)
        sums = flips @ d.T  # (patterns, simulations): sum over the flipped set
        greater = np.mean(sums <= _TOL, axis=0)  # T_S >= T_obs  <=>  sum_S d <= 0
        less = np.mean(sums >= -_TOL, axis=0)
        return np.minimum(1.0, 2 * np.minimum(greater, less))
    a, b = draws
    na, nb = a.shape[1], b.shape[1]
    # one fixed set of relabellings for every draw
    members = _random_relabellings(na, nb, _SIMULATED_RELABELLINGS).astype(np.float64)
    pooled = np.concatenate([a + delta, b], axis=1)  # (draws, n)
    t = (pooled @ members.T) / na - (pooled @ (1 - members).T) / nb  # (draws, relabellings)
    t_obs = t[:, :1]
    greater = np.mean(t >= t_obs - _TOL, axis=1)
    less = np.mean(t <= t_obs + _TOL, axis=1)
    return np.minimum(1.0, 2 * np.minimum(greater, less))


def smallest_p(n_a: int, n_b: int, paired: bool) -> float:
    """The smallest two-sided p of an exact permutation test: ``2 / 2**n`` (sign flips of n
    pairs), ``2 / C(n_a + n_b, n_a)`` (label permutation), at most 1."""
    return min(1.0, 2.0 / (2.0 ** n_a if paired else math.comb(n_a + n_b, n_a)))
