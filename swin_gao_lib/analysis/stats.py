r"""Statistics across seeds: mean ± std, differences with intervals, t-tests, TOST, MDE, Holm.

*Paired* (both sides ran the same seeds; per-seed differences ``d``)::

    estimate = mean(d),  se = sd(d) / sqrt(n),  df = n - 1

*Welch* (otherwise)::

    se^2 = s_a^2/n_a + s_b^2/n_b,   df = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))

Then ``t = estimate / se``, the two-sided p-value ``2 P(T_df > |t|)`` and the
interval ``estimate ± t_{(1+c)/2, df} se``. With fewer than two values on a
side there is no test (``"none"``).

*TOST* at margin ``m`` (Schuirmann 1987): ``p = max(P(T_df > (estimate + m)/se),
P(T_df < (estimate - m)/se))``; ``p < alpha`` exactly when the ``1 - 2 alpha``
interval lies inside ``(-m, +m)``. *MDE*: ``lambda* se``, where the two-sided
test at ``alpha`` has power ``power`` at noncentral-t noncentrality ``lambda*``.

Libraries, bit for bit: the paired se is ``scipy.stats.sem`` (``ttest_rel``'s
``sqrt(var / n)`` differs in the last bit for about half the committed
comparisons, and the reports are regenerated bit for bit); Welch's se and df
are statsmodels' ``CompareMeans``; p-values, quantiles and intervals are
``scipy.stats.t``'s. Kept here: Holm (:func:`holm` says why), the TOST from an
estimate, se and df (statsmodels' ``ttost_*`` need the samples, and
:func:`~swin_gao_lib.analysis.decisions.margin_needed` calls it for many margins)
and the MDE for any df (``TTestPower`` fixes ``df = n - 1``, and its power is
NaN far in the tail, e.g. ``df = 1``, ``lambda = 8``, where two seeds need one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
from scipy import optimize as _opt
from scipy import stats as _st
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

#: Decision classes of :func:`decide`.
LOWER, HIGHER, EQUIVALENT, INCONCLUSIVE, UNTESTED = (
    "lower", "higher", "equivalent", "inconclusive", "untestable")


@dataclass(frozen=True)
class Difference:
    """``mean(a) - mean(b)`` with its confidence interval and t-test."""

    estimate: float
    ci_low: float
    ci_high: float
    test: str  # "paired t", "Welch t" or "none"
    statistic: float
    df: float
    p_value: float
    n_a: int
    n_b: int
    confidence: float = 0.95
    se: float = math.nan  # standard error of the estimate (0: every seed agreed)

    @property
    def tested(self) -> bool:
        return self.test != "none"

    def equivalence(self, margin: float) -> "Equivalence":
        """TOST of ``|difference| < margin`` with this comparison's se and df."""
        return tost(self.estimate, self.se, self.df, margin)

    def minimum_detectable_effect(self, alpha: float = 0.05, power: float = 0.8) -> float:
        """The difference the two-sided t-test at ``alpha`` detects with ``power`` (NaN untested)."""
        if not self.tested:
            return math.nan
        return minimum_detectable_effect(self.se, self.df, alpha, power)

    def significant(self) -> int:
        """+1 or -1 when the interval excludes 0 on that side, else 0."""
        if not self.tested:
            return 0
        if self.ci_low > 0:
            return 1
        if self.ci_high < 0:
            return -1
        return 0


def mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample standard deviation (ddof=1; NaN for one value) and count."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, 0
    return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else math.nan, int(x.size)


def t_quantile(q: float, df: float) -> float:
    """The ``q`` quantile of Student's t with ``df`` degrees of freedom."""
    return float(_st.t.ppf(q, df))


def _t_difference(estimate: float, se: float, df: float, test: str, n_a: int, n_b: int,
                  confidence: float) -> Difference:
    """The t-test and interval of an ``estimate`` with standard error ``se`` on ``df``."""
    if se == 0:
        # Every seed gave the same difference: no noise to test against.
        t = math.copysign(math.inf, estimate) if estimate else math.nan
        p = 0.0 if estimate else 1.0
        return Difference(estimate, estimate, estimate, test, t, df, p, n_a, n_b, confidence,
                          0.0)
    t = estimate / se
    p = float(2 * _st.t.sf(abs(t), df))
    low, high = _st.t.interval(confidence, df, loc=estimate, scale=se)
    return Difference(estimate, float(low), float(high), test, t, df, p, n_a, n_b, confidence,
                      se)


def _untested(estimate: float, n_a: int, n_b: int, confidence: float) -> Difference:
    nan = math.nan
    return Difference(estimate, nan, nan, "none", nan, nan, nan, n_a, n_b, confidence)


def paired_difference(a: Sequence[float], b: Sequence[float],
                      confidence: float = 0.95) -> Difference:
    """Mean of ``a_i - b_i`` with a paired t-test (``ttest_rel``'s, se by ``scipy.stats.sem``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired samples need equal lengths, got {a.size} and {b.size}")
    d = a - b
    n = d.size
    if n < 2:
        return _untested(float(d.mean()) if n else math.nan, n, n, confidence)
    return _t_difference(float(d.mean()), float(_st.sem(d)), n - 1, "paired t", n, n,
                         confidence)


def welch_difference(a: Sequence[float], b: Sequence[float],
                     confidence: float = 0.95) -> Difference:
    """``mean(a) - mean(b)`` with Welch's t-test (``ttest_ind(equal_var=False)``'s; se, df by
    statsmodels' ``CompareMeans``)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    estimate = float(a.mean() - b.mean()) if a.size and b.size else math.nan
    if a.size < 2 or b.size < 2:
        return _untested(estimate, a.size, b.size, confidence)
    means = CompareMeans(DescrStatsW(a), DescrStatsW(b))
    se = float(means.std_meandiff_separatevar)
    df = float(means.dof_satt()) if se else a.size + b.size - 2  # no spread: df undefined
    return _t_difference(estimate, se, df, "Welch t", a.size, b.size, confidence)


def paired_seeds(a: Mapping[int, float], b: Mapping[int, float]) -> list[int] | None:
    """The seeds to pair two configurations on, or None: unpaired.

    Paired when the seeds of one are among the other's, at least two: a seed
    fixes both runs' initial weights and data order, and pairing removes that.
    """
    common = set(a) & set(b)
    return sorted(common) if len(common) >= 2 and common in (set(a), set(b)) else None


def compare(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> Difference:
    """Compare per-seed values ``{seed: value}``: paired t on :func:`paired_seeds`, else Welch."""
    seeds = paired_seeds(a, b)
    if seeds is not None:
        return paired_difference([a[s] for s in seeds], [b[s] for s in seeds], confidence)
    return welch_difference(list(a.values()), list(b.values()), confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and does not count).

    The k-th smallest of m (k = 0..m-1) times ``m - k``, kept in order by a
    running maximum, capped at 1. Not statsmodels' ``multipletests`` (the tests
    check they agree): it runs ``gc.collect()`` on every call, and the margin
    search calls Holm hundreds of times (33 of a small report's 41 seconds).
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if idx.size:
        order = idx[np.argsort(p[idx], kind="stable")]
        m = idx.size
        adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
        out[order] = adjusted
    return out.tolist()


@dataclass(frozen=True)
class Equivalence:
    """TOST of ``-margin < difference < +margin`` (see the module docstring)."""

    margin: float
    t_low: float  # (estimate + margin) / se, tests H0: difference <= -margin
    p_low: float
    t_high: float  # (estimate - margin) / se, tests H0: difference >= +margin
    p_high: float
    df: float

    @property
    def p_value(self) -> float:
        """The TOST p-value: the larger of the two one-sided p-values."""
        return max(self.p_low, self.p_high)


def tost(estimate: float, se: float, df: float, margin: float) -> Equivalence:
    """Two one-sided t-tests of ``|difference| < margin`` (as statsmodels' ``ttost_paired``);
    ``se == 0`` decides without noise (p 0 or 1 per side), NaN ``se`` gives NaN."""
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be > 0, got {margin}")
    nan = math.nan
    if math.isnan(se) or math.isnan(estimate):
        return Equivalence(margin, nan, nan, nan, nan, df)
    if se == 0:
        low, high = estimate + margin, estimate - margin
        return Equivalence(margin, math.copysign(math.inf, low) if low else nan,
                           0.0 if low > 0 else 1.0,
                           math.copysign(math.inf, high) if high else nan,
                           0.0 if high < 0 else 1.0, df)
    t_low, t_high = (estimate + margin) / se, (estimate - margin) / se
    return Equivalence(margin, t_low, float(_st.t.sf(t_low, df)), t_high,
                       float(_st.t.cdf(t_high, df)), df)


def t_test_power(noncentrality: float, df: float, alpha: float = 0.05) -> float:
    """Power of the two-sided t-test at ``alpha`` when ``T`` is noncentral t(df, noncentrality)."""
    crit = t_quantile(1 - alpha / 2, df)
    upper = _st.nct.sf(crit, df, noncentrality)
    lower = _st.nct.cdf(-crit, df, noncentrality)
    # scipy's noncentral t returns NaN far in a tail (e.g. cdf(-12.7; df=1, nc=8)); the
    # complement is accurate there, and the tail itself is ~0
    if not math.isfinite(upper):
        upper = 1.0 - _st.nct.cdf(crit, df, noncentrality)
    if not math.isfinite(lower):
        lower = 1.0 - _st.nct.sf(-crit, df, noncentrality)
    return float(min(max(upper, 0.0) + max(lower, 0.0), 1.0))


def minimum_detectable_effect(se: float, df: float, alpha: float = 0.05,
                              power: float = 0.8) -> float:
    """The true difference a two-sided t-test with this ``se`` and ``df`` finds with ``power``
    (module docstring): 0 when ``se`` is 0, NaN when unknown."""
    if math.isnan(se) or math.isnan(df) or df <= 0:
        return math.nan
    if se == 0:
        return 0.0
    if not alpha < power < 1:
        raise ValueError(f"power must be in (alpha, 1) = ({alpha}, 1), got {power}")
    upper = 1.0
    while t_test_power(upper, df, alpha) < power:
        upper *= 2
    lam = _opt.brentq(lambda nc: t_test_power(nc, df, alpha) - power, 0.0, upper, xtol=1e-12)
    return float(lam * se)


def decide(estimate: float, p_holm: float, tost_p_holm: float, alpha: float = 0.05) -> str:
    """The decision for one comparison from its Holm-adjusted p-values.

    :data:`LOWER` or :data:`HIGHER` when the difference test rejects, else
    :data:`EQUIVALENT` when the TOST rejects (never for a NaN ``tost_p_holm``: no
    margin), else :data:`INCONCLUSIVE`; :data:`UNTESTED` without a test (one seed).
    """
    if math.isnan(p_holm):
        return UNTESTED
    if p_holm < alpha and estimate != 0:
        return LOWER if estimate < 0 else HIGHER
    if not math.isnan(tost_p_holm) and tost_p_holm < alpha:
        return EQUIVALENT
    return INCONCLUSIVE
