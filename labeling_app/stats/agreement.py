"""Agreement between annotators who judged the same item, from aggregated counts.

Every function takes counts, not votes, so the database can do the grouping:

- ``value_counts``: (items, categories) matrix, how many annotators put item i in category c;
  what Krippendorff's alpha and overall percent agreement need.
- ``confusion``: (categories, categories) matrix for one pair of annotators, how often the first
  said r while the second said c on the same item; what Cohen's kappa needs.

Categories are nominal. Items with fewer than two votes carry no information about agreement
and are ignored by both alpha and percent agreement.
"""

from __future__ import annotations

import krippendorff
import numpy as np


def krippendorff_alpha(value_counts: np.ndarray) -> float | None:
    """Nominal Krippendorff's alpha (the ``krippendorff`` package); None without two votes on
    any item or without any disagreement possible (a single category in use)."""
    counts = np.atleast_2d(np.asarray(value_counts, dtype=float))
    counts = counts[counts.sum(axis=1) >= 2]
    if len(counts) == 0 or (counts.sum(axis=0) > 0).sum() < 2:
        return None
    return float(krippendorff.alpha(value_counts=counts, level_of_measurement="nominal"))


def percent_agreement(value_counts: np.ndarray) -> float | None:
    """Share of agreeing ordered pairs of votes on the same item, over all such pairs."""
    counts = np.atleast_2d(np.asarray(value_counts, dtype=float))
    per_item = counts.sum(axis=1)
    pairs = (per_item * (per_item - 1)).sum()
    if pairs == 0:
        return None
    return float((counts * (counts - 1)).sum() / pairs)


def cohen_kappa(confusion: np.ndarray) -> float | None:
    """Cohen's kappa of one annotator pair from their confusion matrix; None when undefined
    (no shared items, or chance agreement is 1 because both used one and the same category)."""
    matrix = np.asarray(confusion, dtype=float)
    n = matrix.sum()
    if n == 0:
        return None
    observed = np.trace(matrix) / n
    expected = float((matrix.sum(axis=1) * matrix.sum(axis=0)).sum() / (n * n))
    if expected >= 1:
        return None
    return float((observed - expected) / (1 - expected))
