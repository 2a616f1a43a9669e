"""Statistics helpers against scipy's tests and published table values."""

import math

import numpy as np
import pytest
from scipy import stats as st

from swin_gao_lib.analysis.stats import (EQUIVALENT, HIGHER, INCONCLUSIVE, LOWER, UNTESTED, compare,
                                decide, holm, mean_std, minimum_detectable_effect,
                                paired_difference, t_test_power, t_quantile, tost,
                                welch_difference)

smw = pytest.importorskip("statsmodels.stats.weightstats")
smp = pytest.importorskip("statsmodels.stats.power")
smm = pytest.importorskip("statsmodels.stats.multitest")

A = [0.912, 0.905, 0.921, 0.899, 0.915]
B = [0.887, 0.894, 0.902, 0.881, 0.899]
C = [0.70, 0.74, 0.69]  # a different size and spread, for Welch


def test_t_quantiles_match_printed_tables():
    # Two-sided 95% critical values of Student's t (any statistics textbook's table).
    for df, value in [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)]:
        assert t_quantile(0.975, df) == pytest.approx(value, abs=5e-4)


def test_mean_std_uses_the_sample_standard_deviation():
    m, s, n = mean_std([1.0, 2.0, 3.0, 4.0])
    assert (m, n) == (2.5, 4) and s == pytest.approx(math.sqrt(5 / 3))
    assert math.isnan(mean_std([1.0])[1]) and mean_std([])[2] == 0


def test_paired_difference_matches_scipy_ttest_rel():
    got = paired_difference(A, B)
    ref = st.ttest_rel(A, B)
    ci = ref.confidence_interval(0.95)
    assert got.test == "paired t" and got.df == 4 and got.n_a == got.n_b == 5
    assert got.estimate == pytest.approx(np.mean(np.subtract(A, B)))
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.p_value == pytest.approx(ref.pvalue)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high))
    assert got.significant() == 1


def test_paired_difference_by_hand():
    # d = (1, 2, 3): mean 2, sd 1, se 1/sqrt(3), t = 2 sqrt(3), df = 2
    got = paired_difference([2.0, 4.0, 6.0], [1.0, 2.0, 3.0], confidence=0.9)
    assert got.statistic == pytest.approx(2 * math.sqrt(3))
    half = 2.919986 / math.sqrt(3)  # t_{0.95, 2} = 2.919986
    assert (got.ci_low, got.ci_high) == pytest.approx((2 - half, 2 + half), rel=1e-6)


@pytest.mark.parametrize("a,b", [(A, C), (C, B), (B, A)])
def test_welch_difference_matches_scipy_ttest_ind(a, b):
    got = welch_difference(a, b)
    ref = st.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert got.test == "Welch t"
    assert got.estimate == pytest.approx(np.mean(a) - np.mean(b))
    assert got.statistic == pytest.approx(ref.statistic)
    assert got.df == pytest.approx(ref.df)
    assert got.p_value == pytest.approx(ref.pvalue)
    assert (got.ci_low, got.ci_high) == pytest.approx((ci.low, ci.high))


def test_compare_pairs_on_the_common_seeds_when_one_side_ran_a_subset():
    """A 3-seed control against a 5-seed baseline: paired on the 3 shared seeds (scipy)."""
    a = dict(zip([0, 1, 2], A[:3]))
    b = dict(zip([0, 1, 2, 3, 4], B))
    got = compare(a, b)
    assert got.test == "paired t" and got.n_a == 3
    assert got.p_value == pytest.approx(st.ttest_rel(A[:3], B[:3]).pvalue)
    assert got.estimate == pytest.approx(np.mean(np.subtract(A[:3], B[:3])))
    assert compare(b, a).p_value == pytest.approx(got.p_value)
    # overlapping but neither inside the other: no pairing
    c = dict(zip([3, 4, 5], A[:3]))
    assert compare(c, dict(zip([0, 1, 2, 3, 4], B))).test == "Welch t"


def test_compare_pairs_only_when_the_seeds_match():
    a = dict(zip([0, 1, 2, 3, 4], A))
    b = dict(zip([0, 1, 2, 3, 4], B))
    assert compare(a, b).test == "paired t"
    assert compare(a, b).p_value == pytest.approx(st.ttest_rel(A, B).pvalue)
    b_other = dict(zip([5, 6, 7, 8, 9], B))
    assert compare(a, b_other).test == "Welch t"
    assert compare(a, b_other).p_value == pytest.approx(st.ttest_ind(A, B, equal_var=False).pvalue)


def test_one_seed_gives_an_estimate_without_a_test():
    d = compare({0: 0.9}, {0: 0.8})
    assert d.test == "none" and d.estimate == pytest.approx(0.1)
    assert math.isnan(d.ci_low) and math.isnan(d.p_value) and d.significant() == 0
    assert welch_difference([0.9, 0.8], [0.7]).test == "none"


def test_identical_differences_have_no_noise():
    d = paired_difference([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert (d.ci_low, d.ci_high) == (0.5, 0.5) and d.p_value == 0.0 and d.significant() == 1
    same = paired_difference([1.0, 2.0], [1.0, 2.0])
    assert same.p_value == 1.0 and same.significant() == 0


def test_paired_needs_equal_lengths():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])


def test_holm_adjustment_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([0.02, float("nan"), 0.01])  # NaN (an untested comparison) does not count
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)


# ---------------------------------------------------------------- equivalence, power, decisions
ACC_A = [0.771, 0.752, 0.779]  # three seeds of a configuration (accuracy)
ACC_B = [0.765, 0.760, 0.770]  # the baseline, same seeds


@pytest.mark.parametrize("a,b,margin", [(A, B, 0.02), (A, B, 0.01), (ACC_A, ACC_B, 0.02),
                                        (ACC_A, ACC_B, 0.05), (B, A, 0.03)])
def test_paired_tost_matches_statsmodels(a, b, margin):
    got = paired_difference(a, b).equivalence(margin)
    p, low, high = smw.ttost_paired(np.asarray(a), np.asarray(b), -margin, margin)
    assert got.p_value == pytest.approx(p)
    assert (got.t_low, got.p_low) == pytest.approx(low[:2])
    assert (got.t_high, got.p_high) == pytest.approx(high[:2])
    assert got.df == low[2] == len(a) - 1


@pytest.mark.parametrize("a,b,margin", [(A, C, 0.25), (C, B, 0.2), (B, A, 0.03)])
def test_welch_tost_matches_statsmodels(a, b, margin):
    got = welch_difference(a, b).equivalence(margin)
    p, low, high = smw.ttost_ind(np.asarray(a), np.asarray(b), -margin, margin, usevar="unequal")
    assert got.p_value == pytest.approx(p)
    assert (got.t_low, got.p_low) == pytest.approx(low[:2])
    assert (got.t_high, got.p_high) == pytest.approx(high[:2])
    assert got.df == pytest.approx(low[2])


def test_tost_rejects_exactly_when_the_90_percent_interval_is_inside_the_margin():
    d = paired_difference(ACC_A, ACC_B)
    ci90 = st.ttest_rel(ACC_A, ACC_B).confidence_interval(0.90)
    edge = max(-ci90.low, ci90.high)  # the smallest margin holding the 90% CI
    assert d.equivalence(edge * 1.001).p_value < 0.05 < d.equivalence(edge * 0.999).p_value
    assert d.equivalence(edge).p_value == pytest.approx(0.05)


def test_tost_edge_cases():
    assert tost(0.01, 0.0, 2, 0.02).p_value == 0.0  # no noise, inside
    assert tost(0.03, 0.0, 2, 0.02).p_value == 1.0  # no noise, outside
    assert math.isnan(tost(0.01, math.nan, math.nan, 0.02).p_value)  # one seed
    with pytest.raises(ValueError, match="margin"):
        tost(0.0, 1.0, 2, 0.0)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_power_matches_statsmodels_ttestpower(n):
    for effect in (0.5, 1.0, 2.5):
        ref = smp.TTestPower().power(effect_size=effect, nobs=n, alpha=0.05,
                                     alternative="two-sided")
        assert t_test_power(effect * math.sqrt(n), n - 1) == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("df", [1, 2, 5, 10])
def test_power_is_finite_and_monotone_far_in_the_tails(df):
    # scipy's nct.cdf is NaN far in the lower tail (df=1, nc=8; df=5, nc=16): a run-all
    # report on two seeds once stopped at "The function value at x=8.0 is NaN"
    nc = np.linspace(0, 40, 81)
    power = np.array([t_test_power(x, df) for x in nc])
    assert np.isfinite(power).all() and (np.diff(power) >= -1e-12).all()
    assert power[0] == pytest.approx(0.05, abs=1e-9) and power[-1] > 0.95
    # two seeds (df=1): the MDE is found, not an error
    assert math.isfinite(minimum_detectable_effect(0.01, 1))


@pytest.mark.parametrize("a,b", [(A, B), (ACC_A, ACC_B)])
def test_paired_mde_matches_statsmodels_solve_power(a, b):
    d = np.subtract(a, b)
    n, sd = d.size, d.std(ddof=1)
    effect = smp.TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8,
                                          alternative="two-sided")
    assert paired_difference(a, b).minimum_detectable_effect() == pytest.approx(effect * sd,
                                                                               rel=1e-6)


def test_mde_closed_form_and_monte_carlo_for_three_seeds():
    # df = 2: the noncentral t at lambda* has power 0.8 by scipy's nct directly, and
    # simulated paired experiments (n = 3 normal differences with true mean = MDE) reject
    # the two-sided t-test at 5% in 80% of 200,000 draws.
    sigma, n = 0.05, 3
    mde = minimum_detectable_effect(sigma / math.sqrt(n), n - 1)
    lam = mde / (sigma / math.sqrt(n))
    crit = st.t.ppf(0.975, n - 1)
    assert st.nct.sf(crit, n - 1, lam) + st.nct.cdf(-crit, n - 1, lam) == pytest.approx(0.8)
    rng = np.random.default_rng(11)
    d = rng.normal(mde, sigma, size=(200_000, n))
    t = d.mean(1) / (d.std(1, ddof=1) / math.sqrt(n))
    assert np.mean(np.abs(t) > crit) == pytest.approx(0.8, abs=0.005)
    assert lam > 5  # with 2 df the test needs about 5.7 standard errors to find an effect
    assert minimum_detectable_effect(0.0, 2) == 0.0 and math.isnan(minimum_detectable_effect(math.nan, 2))


def test_holm_matches_statsmodels_multipletests():
    p = [0.012, 0.2, 0.001, 0.049, 0.03, 0.6]
    assert holm(p) == pytest.approx(list(smm.multipletests(p, method="holm")[1]))


def test_decisions():
    assert decide(-0.05, 0.01, 0.9) == LOWER
    assert decide(+0.05, 0.01, 0.9) == HIGHER
    assert decide(+0.005, 0.01, 0.01) == HIGHER  # significant, and within the margin too
    assert decide(0.001, 0.8, 0.01) == EQUIVALENT
    assert decide(0.001, 0.8, 0.2) == INCONCLUSIVE  # neither: NOT "no effect"
    assert decide(0.001, 0.8, math.nan) == INCONCLUSIVE  # no margin: never equivalent
    assert decide(0.1, math.nan, math.nan) == UNTESTED
