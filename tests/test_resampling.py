"""Permutation tests, their inverted intervals, TOST and MDE, and collapses, against scipy and
brute force: bounded, bimodal outcomes get intervals that never leave an accuracy's range."""

import math
from itertools import combinations, product

import numpy as np
import pytest
from scipy import stats as st

from swin_gao_lib.analysis.resampling import (COLLAPSE_MARGIN, collapsed, fisher_collapse_p,
                                              label_permutation, sign_flip)
from swin_gao_lib.analysis.stats import minimum_detectable_effect, paired_difference

A = np.array([0.975, 0.971, 0.978, 0.969, 0.974, 0.976, 0.972, 0.977, 0.970, 0.973])
B = np.array([0.973, 0.972, 0.974, 0.968, 0.971, 0.975, 0.973, 0.974, 0.968, 0.970])
#: Six seeds learn, four stay at chance: the bimodal outcome of an arm that collapses.
BIMODAL = np.array([0.97, 0.96, 0.10, 0.97, 0.10, 0.95, 0.10, 0.97, 0.10, 0.96])


def _scipy_paired(d, alternative):
    return st.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf,
                               alternative=alternative).pvalue


def _brute_one_sided(d, delta, greater):
    """P over all 2^n sign patterns that the flipped mean of d - delta is >= (<=) the observed."""
    x = np.asarray(d) - delta
    flipped = np.array([np.mean(np.array(s) * x) for s in product((1, -1), repeat=x.size)])
    obs = x.mean()
    return np.mean(flipped >= obs - 1e-12) if greater else np.mean(flipped <= obs + 1e-12)


@pytest.mark.parametrize("a,b", [(A, B), (BIMODAL, B), (B, A)])
def test_sign_flip_p_values_match_scipy_exact_permutation_test(a, b):
    d = a - b
    got = sign_flip(a, b)
    assert got.exact and got.test == "sign-flip permutation" and got.n_a == 10
    assert got.p_greater() == pytest.approx(_scipy_paired(d, "greater"))
    assert got.p_less() == pytest.approx(_scipy_paired(d, "less"))
    assert got.p_value == pytest.approx(min(1, 2 * min(_scipy_paired(d, "greater"),
                                                      _scipy_paired(d, "less"))))


def test_label_permutation_matches_scipy_independent_exact():
    # continuous values: scipy counts ties within 1e-14 of the statistic, relative, so with
    # rounded accuracies it would miss ties that float rounding sets 1e-16 apart
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.974, 0.003, 6), rng.normal(0.972, 0.003, 10)
    got = label_permutation(a, b)
    for alt, mine in (("greater", got.p_greater()), ("less", got.p_less())):
        ref = st.permutation_test((a, b), lambda x, y: np.mean(x) - np.mean(y),
                                  permutation_type="independent", n_resamples=np.inf,
                                  alternative=alt).pvalue
        assert mine == pytest.approx(ref)
    # shifted nulls: the arm's values lowered by delta
    for delta in (-0.002, 0.001, 0.004):
        ref = st.permutation_test((a - delta, b), lambda x, y: np.mean(x) - np.mean(y),
                                  permutation_type="independent", n_resamples=np.inf,
                                  alternative="greater").pvalue
        assert got.p_greater(delta) == pytest.approx(ref)


@pytest.mark.parametrize("a,b", [(A[:6], B[:6]), (BIMODAL[:6], B[:6])])
def test_interval_is_the_set_of_shifts_no_one_sided_test_rejects(a, b):
    d = a - b
    got = sign_flip(a, b)
    low, high = got.interval(0.90)
    # brute force: scan shifts, keep those where neither one-sided p is <= 0.05
    grid = np.linspace(d.min() - 0.01, d.max() + 0.01, 801)
    kept = [x for x in grid if _brute_one_sided(d, x, True) > 0.05
            and _brute_one_sided(d, x, False) > 0.05]
    step = grid[1] - grid[0]
    assert low == pytest.approx(min(kept), abs=step) and high == pytest.approx(max(kept), abs=step)
    # the endpoints are means of subsets of the differences (Hartigan)
    means = {round(np.mean(d[list(s)]), 12) for r in range(1, d.size + 1)
             for s in combinations(range(d.size), r)}
    assert round(low, 12) in means and round(high, 12) in means


def test_no_interval_leaves_the_range_of_an_accuracy_difference():
    # Two modes, 10 seeds: the t-interval of the kind leaves [-1, 1]; the permutation
    # interval stays inside the data's range. With 3 seeds no one-sided test can reject at
    # 2.5% (the smallest p is 1/8): the interval is the whole range, and says so.
    base = np.full(10, 0.97)
    arm = np.array([0.97, 0.10, 0.97, 0.10, 0.10, 0.97, 0.10, 0.97, 0.10, 0.10])
    t = paired_difference(arm[:3], base[:3] + [0.001, -0.002, 0.001])
    assert t.ci_low < -1  # what the old report printed for such data
    for n in (3, 10):
        low, high = sign_flip(arm[:n], base[:n]).interval()
        assert -1 <= low <= high <= 1
    assert sign_flip(arm[:3], base[:3]).interval() == (-1.0, 1.0)
    low, high = sign_flip(arm, base).interval()
    assert (arm - base).min() <= low and high <= (arm - base).max()


@pytest.mark.parametrize("margin", [0.001, 0.003, 0.01])
def test_tost_rejects_exactly_when_the_90_percent_interval_is_inside_the_margin(margin):
    got = sign_flip(A, B)
    low, high = got.interval(0.90)
    inside = -margin < low and high < margin
    assert (got.tost_p(margin) <= 0.05) == inside
    d = A - B
    assert got.tost_p(margin) == pytest.approx(max(_brute_one_sided(d, -margin, True),
                                                   _brute_one_sided(d, margin, False)))
    with pytest.raises(ValueError, match="margin"):
        got.tost_p(0.0)


def test_mde_agrees_with_the_t_test_for_one_normal_mode():
    # Independent reference: for differences from one normal mode the sign-flip test is about
    # as powerful as the t-test, so its simulated MDE is close to the noncentral-t one.
    rng = np.random.default_rng(3)
    d = rng.normal(0.0, 0.004, 10)
    perm = sign_flip(d, np.zeros(10))
    t_mde = minimum_detectable_effect(d.std(ddof=1) / math.sqrt(10), 9)
    assert perm.minimum_detectable_effect() == pytest.approx(t_mde, rel=0.25)
    # two modes: the same test needs a far larger shift to be found
    assert sign_flip(BIMODAL, B).minimum_detectable_effect() > 20 * t_mde
    # four seeds can never reject at 5% two-sided (smallest p = 2/16)
    assert math.isinf(sign_flip(A[:4], B[:4]).minimum_detectable_effect())


def test_collapse_rule_and_fishers_exact_test():
    assert collapsed(0.1 + COLLAPSE_MARGIN - 1e-9, 10) and not collapsed(0.16, 10)
    assert collapsed(float("nan"), 10)  # a diverged run has nothing to score: collapsed
    # 10 of 10 against 0 of 10: two tables as extreme, each 1 / C(20, 10)
    assert fisher_collapse_p(10, 10, 0, 10) == pytest.approx(2 / math.comb(20, 10))
    assert fisher_collapse_p(2, 10, 2, 10) == 1.0
    assert math.isnan(fisher_collapse_p(0, 0, 1, 3))
