"""Paired statistics for comparing two models case by case: bootstrap CI, Wilcoxon signed-rank, Holm correction."""
import warnings
from typing import Sequence, Tuple

import numpy as np

BOOTSTRAP_SAMPLES = 10000


def _paired(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired samples must be 1-D and of equal length, got {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError(f"need at least 2 paired cases, got {a.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("paired samples contain NaN or infinite values")
    return b - a


def bootstrap_ci(a: Sequence[float], b: Sequence[float], confidence: float = 0.95,
                 n_samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Tuple[float, float, float]:
    """Mean paired difference ``mean(b - a)`` and its percentile bootstrap confidence interval.

    Cases are resampled with replacement as pairs, so the case-to-case variation both models share cancels.
    Returns ``(mean, low, high)``. ``seed`` makes reports reproducible.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_samples < 100:
        raise ValueError(f"n_samples must be >= 100, got {n_samples}")
    diff = _paired(a, b)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(n_samples, diff.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return float(diff.mean()), float(low), float(high)


def wilcoxon_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the paired samples (``scipy.stats.wilcoxon``).

    All differences zero: the samples are identical and the p-value is 1 (SciPy would warn and divide 0 by 0).
    """
    from scipy.stats import wilcoxon

    diff = _paired(a, b)
    if np.all(diff == 0):
        return 1.0
    with warnings.catch_warnings():
        # few cases / ties: SciPy warns that it switches to the normal approximation; the p-value is still valid
        warnings.simplefilter("ignore", category=UserWarning)
        return float(wilcoxon(diff, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (family-wise error control), in the input order.

    Sorted ascending, the i-th p-value (0-based) is multiplied by (m - i), made monotone non-decreasing with a
    running maximum and capped at 1.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError(f"p-values must be a 1-D sequence in [0, 1], got {p_values}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.minimum(np.maximum.accumulate(p[order] * (m - np.arange(m))), 1.0)
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted
