"""Statistics helpers on data with a known answer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from satgate_monai.experiments.stats import (
    bootstrap_mean_difference,
    bootstrap_std_ratio,
    describe,
    holm,
    paired_comparison,
    pitman_morgan,
    wilcoxon_signed_rank,
)


def test_wilcoxon_known_example():
    # scipy's documented example (Cushny & Peebles style height differences): W = 24, exact two-sided p = 0.041259765625
    d = [6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75]
    res = wilcoxon_signed_rank(d, [0] * len(d))
    assert res["statistic"] == 24.0
    assert res["p"] == pytest.approx(0.041259765625)
    assert res["method"] == "exact" and res["note"] == ""


def test_wilcoxon_exact_small_sample_by_hand():
    # 5 positive differences: under H0 each of the 2**5 sign patterns is equally likely; W- = 0 is the most extreme,
    # so the exact two-sided p is 2 / 32 = 0.0625 and a note says p < 0.05 cannot be reached
    res = wilcoxon_signed_rank([1.0, 2.1, 3.2, 4.3, 5.4], [0.0] * 5)
    assert res["p"] == pytest.approx(2 / 32)
    assert "smallest attainable p is 0.0625" in res["note"]
    six = wilcoxon_signed_rank([1.0, 2.1, 3.2, 4.3, 5.4, 6.5], [0.0] * 6)
    assert six["p"] == pytest.approx(2 / 64) and six["note"] == ""


def test_wilcoxon_all_equal_and_zeros_dropped():
    res = wilcoxon_signed_rank([0.5, 0.7, 0.9], [0.5, 0.7, 0.9])
    assert res["p"] == 1.0 and res["n_nonzero"] == 0 and "zero" in res["note"]
    # zero differences are dropped before ranking: same answer as without them
    a = wilcoxon_signed_rank([1, 2, 3, 4, 5, 6, 9, 9], [0, 0, 0, 0, 0, 0, 9, 9])
    assert a["n_nonzero"] == 6 and a["p"] == pytest.approx(2 / 64)


def test_wilcoxon_bad_input():
    with pytest.raises(ValueError, match="same length"):
        wilcoxon_signed_rank([1, 2], [1])
    with pytest.raises(ValueError, match="NaN"):
        wilcoxon_signed_rank([1, float("nan")], [1, 2])


def test_describe_uses_sample_std():
    d = describe([1.0, 2.0, 3.0, 4.0, float("nan")])
    assert d == {"mean": 2.5, "std": pytest.approx(np.std([1, 2, 3, 4], ddof=1)), "n": 4}
    assert describe([0.3])["std"] is None and describe([])["mean"] is None


def test_holm_known_values():
    # sorted p: 0.01 (x3 -> 0.03), 0.03 (x2 -> 0.06), 0.04 (x1 -> 0.04, but monotone -> 0.06)
    assert holm([0.01, 0.04, None, 0.03]) == [pytest.approx(0.03), pytest.approx(0.06), None, pytest.approx(0.06)]


def test_std_ratio_exact_scaling():
    b = np.random.default_rng(0).normal(size=15)
    res = bootstrap_std_ratio(2.0 * b + 1.0, b, n_boot=500)
    # a = 2 b + 1 has exactly twice b's std in every resample
    assert res["ratio"] == pytest.approx(2.0)
    assert res["ci95"][0] == pytest.approx(2.0) and res["ci95"][1] == pytest.approx(2.0)
    assert res["p_ratio_ge_1"] == 1.0
    smaller = bootstrap_std_ratio(0.5 * b, b, n_boot=500)
    assert smaller["ratio"] == pytest.approx(0.5) and smaller["p_ratio_ge_1"] == 0.0


def test_std_ratio_degenerate():
    assert bootstrap_std_ratio([0.1, 0.2], [0.3, 0.5])["ratio"] is None  # n < 3
    assert bootstrap_std_ratio([0.1, 0.2, 0.3], [0.5, 0.5, 0.5])["ratio"] is None  # std(b) = 0


def test_pitman_morgan_equal_and_unequal_variances():
    b = np.random.default_rng(1).normal(size=30)
    # equal variances exactly (a is b reversed): cov(a + b, a - b) = var a - var b = 0 -> r = 0, p = 1
    eq = pitman_morgan(b[::-1], b)
    assert abs(eq["r"]) < 1e-12 and eq["p"] == pytest.approx(1.0)
    # a = 3 b: a + b = 4 b and a - b = 2 b are perfectly correlated
    assert pitman_morgan(3 * b, b)["p"] == 0.0
    noisy = pitman_morgan(3 * b + np.random.default_rng(2).normal(scale=0.1, size=30), b)
    assert noisy["p"] < 1e-6 and noisy["r"] > 0


def test_bootstrap_mean_difference_constant_shift():
    a = np.linspace(0, 1, 12)
    res = bootstrap_mean_difference(a + 0.1, a, n_boot=300)
    assert res["mean_difference"] == pytest.approx(0.1)
    assert res["ci95"] == [pytest.approx(0.1), pytest.approx(0.1)]


def test_paired_comparison_bundle():
    rng = np.random.default_rng(3)
    org = rng.uniform(0.4, 0.9, size=10)
    sat = org + 0.01 * np.arange(1, 11)
    res = paired_comparison(sat, org, n_boot=200)
    assert res["n"] == 10 and res["mean_difference"] == pytest.approx(0.055)
    assert res["wilcoxon"]["p"] == pytest.approx(2 / 2**10)  # all 10 distinct differences positive: exact test
    shifted = paired_comparison(org + 0.05, org, n_boot=200)
    assert math.isclose(shifted["consistency"]["bootstrap"]["ratio"], 1.0)
