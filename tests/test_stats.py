"""Statistics helpers against closed forms, published values (printed t tables, R's ``t.test``
on Student's sleep data), brute-force definitions and simulations, and against the scipy and
statsmodels routines the module does not call itself."""

import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats import power as smp
from statsmodels.stats import weightstats as smw

from swin_gao_lib.analysis.stats import (EQUIVALENT, HIGHER, INCONCLUSIVE, LOWER, UNTESTED, compare,
                                decide, holm, mean_std, minimum_detectable_effect,
                                paired_difference, t_test_power, t_quantile, tost,
                                welch_difference)

A = [0.912, 0.905, 0.921, 0.899, 0.915]
B = [0.887, 0.894, 0.902, 0.881, 0.899]
C = [0.70, 0.74, 0.69]  # a different size and spread, for Welch
#: Student's sleep data (Cushny and Peebles 1905; R's ``sleep``): extra hours of sleep of ten
#: patients under each of two drugs.
SLEEP_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
SLEEP_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def _t2_sf(t):
    """P(T > t) for Student's t with 2 df, in closed form: (1 - t / sqrt(2 + t^2)) / 2."""
    return (1 - t / math.sqrt(2 + t * t)) / 2


def _t2_quantile(q):
    """The q quantile of Student's t with 2 df, in closed form."""
    return (2 * q - 1) / math.sqrt(2 * q * (1 - q))


def test_t_quantiles_match_printed_tables():
    # Two-sided 95% critical values of Student's t (any statistics textbook's table).
    for df, value in [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)]:
        assert t_quantile(0.975, df) == pytest.approx(value, abs=5e-4)
    # closed forms: df = 1 is Cauchy's, tan(pi (q - 1/2)); df = 2 as in _t2_quantile
    for q in (0.6, 0.9, 0.975, 0.995):
        assert t_quantile(q, 1) == pytest.approx(math.tan(math.pi * (q - 0.5)), rel=1e-12)
        assert t_quantile(q, 2) == pytest.approx(_t2_quantile(q), rel=1e-12)


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
    assert got.se == pytest.approx(1 / math.sqrt(3), rel=1e-15) and got.df == 2
    half = 2.919986 / math.sqrt(3)  # t_{0.95, 2} = 2.919986
    assert (got.ci_low, got.ci_high) == pytest.approx((2 - half, 2 + half), rel=1e-6)
    half = _t2_quantile(0.95) / math.sqrt(3)
    assert (got.ci_low, got.ci_high) == pytest.approx((2 - half, 2 + half), rel=1e-12)
    # two-sided p = 1 - t / sqrt(2 + t^2) = 1 - sqrt(12 / 14)
    assert got.p_value == pytest.approx(1 - math.sqrt(12 / 14), rel=1e-12)


def test_paired_difference_matches_r_on_students_sleep_data():
    # R: t.test(extra ~ group, data = sleep, paired = TRUE) prints t = -4.0621, df = 9,
    # p-value = 0.002833, 95 percent confidence interval -2.4598858 -0.7001142,
    # mean difference -1.58
    got = paired_difference(SLEEP_1, SLEEP_2)
    assert got.test == "paired t" and got.df == 9
    assert got.estimate == pytest.approx(-1.58, abs=1e-12)
    assert got.statistic == pytest.approx(-4.0621, abs=5e-5)
    assert got.p_value == pytest.approx(0.002833, abs=5e-7)
    assert (got.ci_low, got.ci_high) == pytest.approx((-2.4598858, -0.7001142), abs=5e-8)


def test_welch_difference_by_hand():
    # a = (1, 3), b = (0, 2): s_a^2/n_a = s_b^2/n_b = 1, se = sqrt(2), df = 2^2 / (1 + 1) = 2,
    # t = 1 / sqrt(2), so p = 1 - t / sqrt(2 + t^2) = 1 - 1 / sqrt(5)
    got = welch_difference([1.0, 3.0], [0.0, 2.0])
    assert got.test == "Welch t" and got.estimate == 1.0
    assert got.se == pytest.approx(math.sqrt(2), rel=1e-15)
    assert got.df == pytest.approx(2, rel=1e-15)
    assert got.statistic == pytest.approx(1 / math.sqrt(2), rel=1e-15)
    assert got.p_value == pytest.approx(1 - 1 / math.sqrt(5), rel=1e-12)
    half = _t2_quantile(0.975) * math.sqrt(2)
    assert (got.ci_low, got.ci_high) == pytest.approx((1 - half, 1 + half), rel=1e-12)
    # unequal sizes: a = (1, 2, 3), b = (1, 5): 1/3 and 8/2 = 4, se^2 = 13/3,
    # df = (13/3)^2 / ((1/3)^2 / 2 + 4^2 / 1) = 338/289
    got = welch_difference([1.0, 2.0, 3.0], [1.0, 5.0])
    assert got.estimate == -1.0 and got.se == pytest.approx(math.sqrt(13 / 3), rel=1e-15)
    assert got.df == pytest.approx(338 / 289, rel=1e-14)
    assert (got.n_a, got.n_b) == (3, 2)


def test_welch_difference_matches_r_on_students_sleep_data():
    # R: t.test(extra ~ group, data = sleep) (Welch) prints t = -1.8608, df = 17.776,
    # p-value = 0.07939, 95 percent confidence interval -3.3654832 0.2054832
    got = welch_difference(SLEEP_1, SLEEP_2)
    assert got.test == "Welch t" and got.estimate == pytest.approx(-1.58, abs=1e-12)
    assert got.statistic == pytest.approx(-1.8608, abs=5e-5)
    assert got.df == pytest.approx(17.776, abs=5e-4)
    assert got.p_value == pytest.approx(0.07939, abs=5e-6)
    assert (got.ci_low, got.ci_high) == pytest.approx((-3.3654832, 0.2054832), abs=5e-8)


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


def test_compare_pairs_on_the_seeds_both_sides_ran():
    base = dict(zip(range(5), B))
    assert compare(dict(zip(range(5), A)), base).p_value == pytest.approx(st.ttest_rel(A, B).pvalue)
    # a 3-seed control against a 5-seed baseline: paired on the 3 shared seeds
    got = compare(dict(zip(range(3), A[:3])), base)
    assert got.test == "paired t" and got.n_a == 3
    assert got.p_value == pytest.approx(st.ttest_rel(A[:3], B[:3]).pvalue)
    assert got.estimate == pytest.approx(np.mean(np.subtract(A[:3], B[:3])))
    assert compare(base, dict(zip(range(3), A[:3]))).p_value == pytest.approx(got.p_value)
    # other seeds, or overlapping with neither inside the other: no pairing
    other = compare(dict(zip(range(5, 10), A)), base)
    assert other.test == "Welch t"
    assert other.p_value == pytest.approx(st.ttest_ind(A, B, equal_var=False).pvalue)
    assert compare(dict(zip([3, 4, 5], A[:3])), base).test == "Welch t"


def test_one_seed_no_noise_and_unequal_lengths():
    d = compare({0: 0.9}, {0: 0.8})  # an estimate without a test
    assert d.test == "none" and d.estimate == pytest.approx(0.1)
    assert math.isnan(d.ci_low) and math.isnan(d.p_value) and d.significant() == 0
    assert welch_difference([0.9, 0.8], [0.7]).test == "none"
    d = paired_difference([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])  # identical differences
    assert (d.ci_low, d.ci_high) == (0.5, 0.5) and d.p_value == 0.0 and d.significant() == 1
    same = paired_difference([1.0, 2.0], [1.0, 2.0])
    assert same.p_value == 1.0 and same.significant() == 0
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1.0, 2.0], [1.0])


def test_holm_adjustment_by_hand():
    # sorted: 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04 -> running max 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    got = holm([0.02, float("nan"), 0.01])  # NaN (an untested comparison) does not count
    assert got[0] == pytest.approx(0.02) and math.isnan(got[1]) and got[2] == pytest.approx(0.02)
    # ties: both 0.01 get 0.01 x 3 (the first of the tie's multiplier), whatever their order
    assert holm([0.01, 0.2, 0.01]) == pytest.approx([0.03, 0.2, 0.03])
    assert holm([]) == [] and all(math.isnan(x) for x in holm([float("nan")] * 2))


def _holm_by_definition(p):
    """Holm (1979) from its definition: test i's adjusted p is min(1, max over p_j <= p_i of
    (m - #{l: p_l < p_j}) p_j), m the tests not NaN."""
    kept = [x for x in p if not math.isnan(x)]
    m = len(kept)
    return [math.nan if math.isnan(x) else
            min(1.0, max((m - sum(q < y for q in kept)) * y for y in kept if y <= x))
            for x in p]


def test_holm_matches_its_definition_and_statsmodels_and_keeps_the_order():
    # the kit writes Holm out (statsmodels' function runs gc.collect() on every call)
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(5)
    for size in (1, 2, 5, 12, 40):
        p = rng.uniform(0, 0.2, size).round(3)  # rounded: ties happen
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-15)
        p[rng.uniform(size=size) < 0.2] = np.nan
        got = holm(list(p))
        assert got == pytest.approx(_holm_by_definition(list(p)), nan_ok=True)
        kept = ~np.isnan(p)
        order = np.argsort(p[kept], kind="stable")
        assert (np.diff(np.asarray(got)[kept][order]) >= 0).all()  # the raw order is kept
        assert (np.asarray(got)[kept] >= p[kept]).all()


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


def test_tost_by_hand():
    # d = (1, 2, 3): estimate 2, se 1/sqrt(3), df 2; margin 3:
    # t_low = 5 sqrt(3), p_low = P(T > t_low); t_high = -sqrt(3), p_high = P(T < -sqrt(3))
    got = paired_difference([2.0, 4.0, 6.0], [1.0, 2.0, 3.0]).equivalence(3.0)
    assert got.t_low == pytest.approx(5 * math.sqrt(3)) and got.t_high == pytest.approx(-math.sqrt(3))
    assert got.p_low == pytest.approx(_t2_sf(5 * math.sqrt(3)), rel=1e-10)
    assert got.p_high == pytest.approx(_t2_sf(math.sqrt(3)), rel=1e-12)
    assert got.p_value == got.p_high and got.df == 2
    # Welch, a = (1, 3), b = (0, 2): estimate 1, se sqrt(2), df 2; margin 4
    got = welch_difference([1.0, 3.0], [0.0, 2.0]).equivalence(4.0)
    assert got.p_low == pytest.approx(_t2_sf(5 / math.sqrt(2)), rel=1e-10)
    assert got.p_high == pytest.approx(_t2_sf(3 / math.sqrt(2)), rel=1e-10)
    assert got.p_value == got.p_high


@pytest.mark.parametrize("a,b,margin", [(A, C, 0.25), (C, B, 0.2), (B, A, 0.03)])
def test_welch_tost_is_scipys_two_one_sided_welch_tests(a, b, margin):
    # H0: diff <= -m is Welch's one-sided test of a + m against b (greater); H0: diff >= +m
    # that of a - m against b (less)
    got = welch_difference(a, b).equivalence(margin)
    low = st.ttest_ind(np.add(a, margin), b, equal_var=False, alternative="greater")
    high = st.ttest_ind(np.subtract(a, margin), b, equal_var=False, alternative="less")
    assert got.p_value == pytest.approx(max(low.pvalue, high.pvalue))
    assert (got.t_low, got.p_low) == pytest.approx((low.statistic, low.pvalue))
    assert (got.t_high, got.p_high) == pytest.approx((high.statistic, high.pvalue))
    assert got.df == pytest.approx(low.df)


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


@pytest.mark.parametrize("df,nc", [(2, 3.0), (4, 2.0), (9, 1.0)])
def test_power_matches_a_simulated_noncentral_t(df, nc):
    # T' = (Z + nc) / sqrt(V / df), Z standard normal, V chi-square(df): 400,000 draws,
    # a fixed seed; the rejection rate of |T'| > t_{0.975, df} is the power (se ~ 0.0008)
    rng = np.random.default_rng(7)
    t = (rng.standard_normal(400_000) + nc) / np.sqrt(rng.chisquare(df, 400_000) / df)
    simulated = np.mean(np.abs(t) > t_quantile(0.975, df))
    assert t_test_power(nc, df) == pytest.approx(simulated, abs=0.004)


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


def test_decisions():
    assert decide(-0.05, 0.01, 0.9) == LOWER
    assert decide(+0.05, 0.01, 0.9) == HIGHER
    assert decide(+0.005, 0.01, 0.01) == HIGHER  # significant, and within the margin too
    assert decide(0.001, 0.8, 0.01) == EQUIVALENT
    assert decide(0.001, 0.8, 0.2) == INCONCLUSIVE  # neither: NOT "no effect"
    assert decide(0.001, 0.8, math.nan) == INCONCLUSIVE  # no margin: never equivalent
    assert decide(0.1, math.nan, math.nan) == UNTESTED
