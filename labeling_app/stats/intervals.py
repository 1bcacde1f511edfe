"""Wilson score intervals: the interval for a proportion that stays inside [0, 1] and behaves at
small n and near 0 or 1, where the normal approximation does not (Wilson 1927; Agresti & Coull 1998).
"""

from __future__ import annotations

import math

from scipy.stats import norm


def z_for(confidence: float) -> float:
    """The two-sided standard normal quantile: 1.96 for 0.95."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence!r}")
    return float(norm.ppf(0.5 + confidence / 2))


def wilson(successes: float, n: float, confidence: float = 0.95) -> tuple[float, float] | None:
    """The Wilson interval (low, high) for ``successes`` out of ``n``; None when n is 0.

    ``successes`` may be fractional (a tie counts half a win).

    >>> [round(x, 4) for x in wilson(8, 10)]
    [0.4902, 0.9433]
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return None
    z = z_for(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # The interval holds p exactly; at p = 0 or 1 rounding would otherwise leave it a hair off p.
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))
