r"""Statistics across seeds: mean +- std, differences of means with confidence intervals, t-tests.

A study runs every configuration with several seeds. Comparing a
configuration ``a`` with its baseline ``b`` asks how large ``mean(a) - mean(b)``
is and how sure we are of its sign.

*Paired* (when both ran with the same seeds): seed ``s`` fixes the initial
weights and the data order of both runs, so the per-seed differences
``d_s = a_s - b_s`` remove the noise the two share::

    d_bar = mean(d),  se = sd(d) / sqrt(n),  t = d_bar / se,  df = n - 1

*Welch* (otherwise): unequal variances, Welch–Satterthwaite degrees of freedom::

    se^2 = s_a^2/n_a + s_b^2/n_b
    df   = se^4 / ((s_a^2/n_a)^2/(n_a-1) + (s_b^2/n_b)^2/(n_b-1))

In both, the two-sided p-value is ``2 * P(T_df > |t|)`` and the confidence
interval is ``estimate +- t_{(1+c)/2, df} * se``. With fewer than two values
on a side there is no spread to estimate: the estimate stands alone and the
test is ``"none"``.

*Equivalence* (TOST, two one-sided tests, Schuirmann 1987) asks the other
question: is the difference inside a stated margin ``(-m, +m)``? With the same
``se`` and ``df``::

    t_low  = (d_bar + m) / se,   p_low  = P(T_df > t_low)     H0: diff <= -m
    t_high = (d_bar - m) / se,   p_high = P(T_df < t_high)    H0: diff >= +m
    p_TOST = max(p_low, p_high)

``p_TOST < alpha`` exactly when the ``1 - 2 alpha`` (90%) confidence interval
lies inside the margin.

*Minimum detectable effect* (MDE): the true difference that the two-sided
t-test at level ``alpha`` finds with probability ``power``, for this
comparison's ``se`` and ``df``. The test statistic then follows a noncentral t
with noncentrality ``delta / se``; the MDE is ``lambda* * se`` where
``lambda*`` solves::

    P(T'_{df, lambda} > t_{1-alpha/2, df}) + P(T'_{df, lambda} < -t_{1-alpha/2, df}) = power

For a paired test this is statsmodels' ``TTestPower`` with effect size
``delta / sd(d)`` and ``nobs = n`` (``lambda = effect * sqrt(n)``); for Welch it
uses the Welch ``se`` and ``df`` (an approximation, as Welch's df is estimated).

*Decision* (:func:`decide`), for one comparison within a family whose p-values
were Holm-adjusted (:func:`holm`) — the difference tests and the TOST p-values
each across the family: *lower* / *higher* when the Holm-adjusted difference
test rejects; else *equivalent* when the Holm-adjusted TOST rejects; else
*inconclusive*: the data show neither a difference nor that it is smaller
than the margin (the interval is wider than the margin allows). A
significant difference may also lie inside the margin (both tests reject);
``within_margin`` says so.

*Libraries.* The standard error of the paired differences is
``scipy.stats.sem``; Welch's standard error and degrees of freedom are
statsmodels' ``CompareMeans`` (``std_meandiff_separatevar``, ``dof_satt``); the
p-values, quantiles and intervals are ``scipy.stats.t``'s; Holm's adjustment is
written out (:func:`holm` says why). ``scipy.stats.ttest_rel`` is not called: it
computes the standard error as ``sqrt(var / n)``, which differs from
``sd / sqrt(n)`` in the last bit for about half of the committed comparisons,
and the committed reports are regenerated bit for bit. What the libraries lack
is kept here: the TOST from an estimate, its ``se`` and ``df`` (statsmodels'
``ttost_paired`` / ``ttost_ind`` need the samples; the margin search of
:func:`swin_gao_lib.analysis.decisions.margin_needed` calls it for many
margins), and the MDE for a given ``df`` (statsmodels' ``TTestPower`` fixes
``df = nobs - 1``, so it has no Welch MDE, and its power is NaN far in the
noncentral t's tail, e.g. ``df = 1``, ``lambda = 8``, where two seeds need an MDE).
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


def compare(a: Mapping[int, float], b: Mapping[int, float], confidence: float = 0.95) -> Difference:
    """Compare two configurations' per-seed values ``{seed: value}``.

    Paired by seed when the seeds of one are among the other's (at least two in
    common): a control run with seeds 0-2 against a baseline run with seeds 0-9
    is paired on seeds 0-2, since a seed fixes the initial weights and the data
    order of both runs and pairing removes that shared variation. Welch's
    unpaired test otherwise.
    """
    common = set(a) & set(b)
    if len(common) >= 2 and common in (set(a), set(b)):
        seeds = sorted(common)
        return paired_difference([a[s] for s in seeds], [b[s] for s in seeds], confidence)
    return welch_difference(list(a.values()), list(b.values()), confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values (NaN stays NaN and does not count).

    With m tests sorted by p, the k-th smallest (k = 0..m-1) is multiplied by
    ``m - k``, a running maximum keeps the adjusted values in order, and each
    is capped at 1. Rejecting where the adjusted p < alpha controls the chance
    of any false positive among the m at alpha. Written out rather than
    statsmodels' ``multipletests(method="holm")`` (the tests check the two
    agree): that function runs ``gc.collect()`` on every call, 0.1 s each, and a
    report calls Holm hundreds of times while it searches each comparison's
    smallest equivalence margin -- 33 of a small report's 41 seconds.
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


# ---------------------------------------------------------------- equivalence and power
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
    """Two one-sided t-tests of ``|difference| < margin`` (as statsmodels' ``ttost_paired``).

    ``se == 0`` (every seed gave the same difference) decides without noise:
    p = 0 on the side the estimate is on, 1 otherwise. NaN ``se`` (one seed)
    gives NaN p-values.
    """
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
    """The true difference a two-sided t-test with this ``se`` and ``df`` finds with ``power``.

    ``lambda* * se``, where the noncentral-t power at noncentrality ``lambda*``
    equals ``power`` (module docstring). 0 when ``se`` is 0, NaN when unknown.
    """
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
    """The decision for one comparison from its Holm-adjusted p-values (module docstring).

    Returns :data:`LOWER` or :data:`HIGHER` (the difference test rejects),
    :data:`EQUIVALENT` (only the TOST rejects), :data:`INCONCLUSIVE` (neither)
    or :data:`UNTESTED` (no test: one seed). A NaN ``tost_p_holm`` (no margin
    stated) never gives *equivalent*.
    """
    if math.isnan(p_holm):
        return UNTESTED
    if p_holm < alpha and estimate != 0:
        return LOWER if estimate < 0 else HIGHER
    if not math.isnan(tost_p_holm) and tost_p_holm < alpha:
        return EQUIVALENT
    return INCONCLUSIVE
