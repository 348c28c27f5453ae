"""Uplift of a treated group over a holdout: difference of rates and of means, with intervals.

Pure functions (no Django): the campaign report passes counts and sums, an analyst may call
them from a notebook. Conversion uses Newcombe's hybrid score interval for a difference of
proportions (method 10 of Newcombe 1998: Wilson intervals of each rate combined), which keeps
its coverage for small groups and rates near 0 where the Wald interval does not. Revenue per
recipient uses Welch's t interval (unequal variances), the groups being of different sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist


@dataclass(frozen=True)
class Uplift:
    """Treated minus holdout, with the interval at the given confidence (None when undefined)."""

    treated: float | None  # rate or mean of the treated (sent) group
    holdout: float | None
    difference: float | None
    low: float | None
    high: float | None
    confidence: float = 0.95

    @property
    def is_significant(self) -> bool:
        """Return whether the interval excludes zero."""
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float | bool | None]:
        """Return the fields as a plain dict (JSON)."""
        return {
            "treated": self.treated,
            "holdout": self.holdout,
            "difference": self.difference,
            "low": self.low,
            "high": self.high,
            "confidence": self.confidence,
            "significant": self.is_significant,
        }


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Return the Wilson score interval of a proportion."""
    if n <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def proportion_uplift(
    treated_successes: int,
    treated_n: int,
    holdout_successes: int,
    holdout_n: int,
    confidence: float = 0.95,
) -> Uplift:
    """Return the difference of two proportions (treated - holdout) with Newcombe's interval."""
    p1 = treated_successes / treated_n if treated_n else None
    p0 = holdout_successes / holdout_n if holdout_n else None
    if p1 is None or p0 is None:
        return Uplift(p1, p0, None, None, None, confidence)
    l1, u1 = wilson_interval(treated_successes, treated_n, confidence)
    l0, u0 = wilson_interval(holdout_successes, holdout_n, confidence)
    difference = p1 - p0
    low = difference - math.sqrt((p1 - l1) ** 2 + (u0 - p0) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p0 - l0) ** 2)
    return Uplift(p1, p0, difference, low, high, confidence)


def student_t_quantile(probability: float, df: float) -> float:
    """Return the quantile of Student's t distribution (SciPy's, loaded on first use)."""
    from scipy.stats import t  # noqa: PLC0415 -- SciPy loads only when an interval is computed

    return float(t.ppf(probability, df))


def mean_uplift(
    treated_n: int,
    treated_sum: float,
    treated_sum_squares: float,
    holdout_n: int,
    holdout_sum: float,
    holdout_sum_squares: float,
    confidence: float = 0.95,
) -> Uplift:
    """Return the difference of two means (treated - holdout) with Welch's t interval.

    Each group is given by its size, sum and sum of squares (zeros included), so a report
    need not hold every value.
    """
    m1 = treated_sum / treated_n if treated_n else None
    m0 = holdout_sum / holdout_n if holdout_n else None
    if m1 is None or m0 is None:
        return Uplift(m1, m0, None, None, None, confidence)
    difference = m1 - m0
    if treated_n < 2 or holdout_n < 2:
        return Uplift(m1, m0, difference, None, None, confidence)
    v1 = max(0.0, (treated_sum_squares - treated_n * m1 * m1) / (treated_n - 1))
    v0 = max(0.0, (holdout_sum_squares - holdout_n * m0 * m0) / (holdout_n - 1))
    a, b = v1 / treated_n, v0 / holdout_n
    se = math.sqrt(a + b)
    if se == 0:
        return Uplift(m1, m0, difference, difference, difference, confidence)
    df = (a + b) ** 2 / (a * a / (treated_n - 1) + b * b / (holdout_n - 1))
    half = student_t_quantile(0.5 + confidence / 2, df) * se
    return Uplift(m1, m0, difference, difference - half, difference + half, confidence)
