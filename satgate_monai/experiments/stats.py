"""Statistics for the skip-gate comparisons: summaries, paired tests, and the consistency test.

Every comparison is paired by test case: the two variants were trained with the same recipe, split and seeds, and
each case's value is first averaged over the seeds, so one case contributes one pair. Tests:

* location: the Wilcoxon signed-rank test (:func:`wilcoxon_signed_rank`, scipy) on the per-case differences, with the
  mean difference and a paired bootstrap 95 % CI of it;
* consistency ("SAT has a smaller std than ORG"): a paired bootstrap of the std ratio (cases resampled with
  replacement, both variants on the same resample; percentile 95 % CI and the one-sided share of resamples with a
  ratio >= 1) and, as a parametric cross-check, the Pitman-Morgan test for equal variances of paired samples
  (``corr(a + b, a - b) = 0``). Levene/Brown-Forsythe tests are not used: they assume independent samples, and the two
  variants are measured on the same cases.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from satgate_monai.bundle.metrics import STD_DDOF, mean_std

__all__ = [
    "describe",
    "wilcoxon_signed_rank",
    "holm",
    "bootstrap_mean_difference",
    "bootstrap_std_ratio",
    "pitman_morgan",
    "paired_comparison",
]


def _as_array(values: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float).reshape(-1)
    if np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN: {arr.tolist()!r}.")
    return arr


def _paired(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a_arr, b_arr = _as_array(a, "a"), _as_array(b, "b")
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired samples must have the same length, got {a_arr.size} and {b_arr.size}.")
    return a_arr, b_arr


def describe(values: Sequence[float]) -> dict:
    """Mean, sample standard deviation (``ddof=1``) and count; NaN values are dropped.

    Returns:
        ``{"mean", "std", "n"}``; ``mean`` is ``None`` for no values, ``std`` is ``None`` for fewer than two.
    """
    mean, std, n = mean_std(np.asarray(values, dtype=float).reshape(-1).tolist())
    return {"mean": mean if n else None, "std": None if math.isnan(std) else std, "n": n}


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> dict:
    """Wilcoxon signed-rank test of the paired differences ``a - b`` (scipy, zero differences dropped).

    Edge cases are answered rather than raised: with every difference zero the test returns ``p = 1`` and says so;
    with fewer than 6 non-zero differences it still returns scipy's exact p-value but notes that a two-sided p below
    0.05 is unreachable (the smallest exact two-sided p is ``2 / 2**n``).

    Args:
        a, b: paired samples of equal length.
        alternative: ``"two-sided" | "greater" | "less"`` (for ``a - b``).

    Returns:
        ``{"statistic", "p", "n", "n_nonzero", "method", "note"}``.
    """
    from scipy import stats

    a_arr, b_arr = _paired(a, b)
    if alternative not in ("two-sided", "greater", "less"):
        raise ValueError(f"alternative must be 'two-sided', 'greater' or 'less', got {alternative!r}.")
    diff = a_arr - b_arr
    nonzero = int(np.count_nonzero(diff))
    out = {"statistic": None, "p": None, "n": int(diff.size), "n_nonzero": nonzero, "method": None, "note": ""}
    if nonzero == 0:
        out.update(statistic=0.0, p=1.0, method="none", note="all paired differences are zero")
        return out
    method = "exact" if nonzero <= 50 and np.unique(np.abs(diff[diff != 0])).size == nonzero else "asymptotic"
    res = stats.wilcoxon(diff[diff != 0], alternative=alternative, method=method)
    out.update(statistic=float(res.statistic), p=float(res.pvalue), method=method)
    if nonzero < 6:
        smallest = (2.0 if alternative == "two-sided" else 1.0) / 2**nonzero
        out["note"] = f"only {nonzero} non-zero differences: the smallest attainable p is {smallest:.4g}"
    return out


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (``None`` entries are kept and not counted)."""
    idx = [i for i, p in enumerate(pvalues) if p is not None]
    m = len(idx)
    order = sorted(idx, key=lambda i: pvalues[i])
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


def _bootstrap_indices(n: int, n_boot: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_mean_difference(a: Sequence[float], b: Sequence[float], n_boot: int = 10000, seed: int = 0) -> dict:
    """Mean of ``a - b`` and its paired percentile-bootstrap 95 % CI (cases resampled with replacement)."""
    a_arr, b_arr = _paired(a, b)
    diff = a_arr - b_arr
    if diff.size == 0:
        return {"mean_difference": None, "ci95": [None, None]}
    means = diff[_bootstrap_indices(diff.size, n_boot, seed)].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean_difference": float(diff.mean()), "ci95": [float(low), float(high)]}


def bootstrap_std_ratio(a: Sequence[float], b: Sequence[float], n_boot: int = 10000, seed: int = 0) -> dict:
    """Paired bootstrap of ``std(a) / std(b)`` (sample std, ``ddof=1``).

    Cases are resampled with replacement and both samples are taken on the same resample. Resamples where
    ``std(b) == 0`` are dropped (their count is returned).

    Returns:
        ``{"std_a", "std_b", "ratio", "ci95", "p_ratio_ge_1", "n_boot_used"}``: ``p_ratio_ge_1`` is the share of
        resamples whose ratio is >= 1, a one-sided bootstrap p-value for "``a`` is more consistent than ``b``".
        Values are ``None`` when there are fewer than 3 pairs or ``std(b) == 0``.
    """
    a_arr, b_arr = _paired(a, b)
    out = {"std_a": None, "std_b": None, "ratio": None, "ci95": [None, None], "p_ratio_ge_1": None, "n_boot_used": 0}
    if a_arr.size < 2:
        return out
    std_a, std_b = float(a_arr.std(ddof=STD_DDOF)), float(b_arr.std(ddof=STD_DDOF))
    out.update(std_a=std_a, std_b=std_b)
    if a_arr.size < 3 or std_b == 0.0:
        return out
    idx = _bootstrap_indices(a_arr.size, n_boot, seed)
    sa, sb = a_arr[idx].std(axis=1, ddof=STD_DDOF), b_arr[idx].std(axis=1, ddof=STD_DDOF)
    keep = sb > 0
    ratios = sa[keep] / sb[keep]
    out["ratio"] = std_a / std_b
    if ratios.size:
        low, high = np.percentile(ratios, [2.5, 97.5])
        out.update(ci95=[float(low), float(high)], p_ratio_ge_1=float((ratios >= 1.0).mean()),
                   n_boot_used=int(ratios.size))
    return out


def pitman_morgan(a: Sequence[float], b: Sequence[float]) -> dict:
    """Pitman-Morgan test of ``var(a) == var(b)`` for paired samples (two-sided).

    ``var(a) - var(b) = cov(a + b, a - b)``, so the test is the t test of ``r = corr(a + b, a - b) = 0``:
    ``t = r sqrt(n - 2) / sqrt(1 - r**2)`` with ``n - 2`` degrees of freedom (exact for bivariate normal data).

    Returns:
        ``{"r", "t", "p", "n"}``; ``None`` values when ``n < 3`` or a sum/difference is constant.
    """
    from scipy import stats

    a_arr, b_arr = _paired(a, b)
    n = int(a_arr.size)
    out = {"r": None, "t": None, "p": None, "n": n}
    s, d = a_arr + b_arr, a_arr - b_arr
    if n < 3 or s.std() == 0 or d.std() == 0:
        return out
    r = float(np.corrcoef(s, d)[0, 1])
    r = max(-1.0, min(1.0, r))
    if abs(r) == 1.0:
        out.update(r=r, t=math.copysign(math.inf, r), p=0.0)
        return out
    t = r * math.sqrt(n - 2) / math.sqrt(1.0 - r * r)
    out.update(r=r, t=t, p=float(2.0 * stats.t.sf(abs(t), df=n - 2)))
    return out


def paired_comparison(a: Sequence[float], b: Sequence[float], n_boot: int = 10000, seed: int = 0) -> dict:
    """Everything reported for one paired comparison ``a`` vs ``b`` (e.g. SAT vs ORG Dice per case).

    Returns:
        ``{"n", "mean_a", "mean_b", "mean_difference", "ci95", "wilcoxon": {...}, "consistency": {"bootstrap":
        {...}, "pitman_morgan": {...}}}``.
    """
    a_arr, b_arr = _paired(a, b)
    diff = bootstrap_mean_difference(a_arr, b_arr, n_boot=n_boot, seed=seed)
    return {
        "n": int(a_arr.size),
        "mean_a": float(a_arr.mean()) if a_arr.size else None,
        "mean_b": float(b_arr.mean()) if b_arr.size else None,
        "mean_difference": diff["mean_difference"],
        "ci95": diff["ci95"],
        "wilcoxon": wilcoxon_signed_rank(a_arr, b_arr),
        "consistency": {
            "bootstrap": bootstrap_std_ratio(a_arr, b_arr, n_boot=n_boot, seed=seed),
            "pitman_morgan": pitman_morgan(a_arr, b_arr),
        },
    }
