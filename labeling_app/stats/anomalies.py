"""Flags on annotators whose votes a lead should look at before trusting them.

Each flag is a plain rule on aggregated numbers with its threshold in ``AnomalyConfig``; the
page shows the number behind every flag, and a lead decides. The vote-outlier test follows
Chatbot Arena's idea (Chiang et al. 2024, sec. 5): how unlikely are this annotator's votes
under the outcome distribution everyone else produced on the same pair?
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm


@dataclass(frozen=True)
class AnomalyConfig:
    # "Always one side": at least this share of decided (non-tie) overall votes on one side...
    one_side_share: float = 0.9
    # ...out of at least this many decided votes (fewer is too little evidence).
    min_decided: int = 10
    # "Too fast": mean time below this fraction of the median annotator's mean time...
    too_fast_ratio: float = 1 / 3
    # ...or at least this share of comparisons faster than queries.Thresholds.fast_ms.
    too_fast_share: float = 0.5
    # "Low agreement": mean Cohen's kappa with the others below this ("slight" on Landis & Koch)...
    low_kappa: float = 0.2
    # ...over at least this many shared items.
    min_shared_items: int = 10
    # "Low gold accuracy": below this share correct over at least min_gold answers.
    low_gold_accuracy: float = 0.6
    min_gold: int = 5
    # Vote outliers: one-sided z above this (p < 0.001) over at least min_decided votes.
    outlier_z: float = 3.09


def vote_outlier_z(own: np.ndarray, others: np.ndarray) -> float | None:
    """z-score of the surprise of one annotator's outcome counts under the others' distribution.

    ``own`` and ``others`` are counts per outcome (e.g. first / second / tie). The surprise of a
    vote is -log p(outcome); under the null (the annotator votes like everyone else) the total
    surprise of n votes has mean n*H and variance n*Var[-log p]. A large positive z means votes
    systematically less likely than the crowd's: random clicking on a clear pair, or a reversed
    reading of the sides. Laplace smoothing keeps an outcome nobody else chose finite.
    """
    own = np.asarray(own, dtype=float)
    n = own.sum()
    if n == 0:
        return None
    p = (np.asarray(others, dtype=float) + 1) / (np.sum(others) + len(own))
    surprise = -np.log(p)
    mean = (p * surprise).sum()
    variance = (p * surprise**2).sum() - mean**2
    if variance <= 1e-12:
        return None
    return float((own @ surprise - n * mean) / math.sqrt(n * variance))


def z_to_p(z: float | None) -> float | None:
    return None if z is None else float(norm.sf(z))


def flags_for(row: dict, median_mean_ms: float | None, config: AnomalyConfig = AnomalyConfig()) -> list[str]:
    """The flags of one annotator row of the report (see campaign.annotator_rows for its keys)."""
    flags = []
    decided = row["left"] + row["right"]
    if decided >= config.min_decided and max(row["left"], row["right"]) >= config.one_side_share * decided:
        flags.append("one_side")
    far_below_median = median_mean_ms and row["mean_ms"] is not None and row["mean_ms"] < config.too_fast_ratio * median_mean_ms
    if row["n"] and (far_below_median or row["fast"] / row["n"] >= config.too_fast_share):
        flags.append("too_fast")
    if row.get("kappa") is not None and row["shared_items"] >= config.min_shared_items and row["kappa"] < config.low_kappa:
        flags.append("low_agreement")
    if row.get("gold_accuracy") is not None and row["gold_n"] >= config.min_gold and row["gold_accuracy"] < config.low_gold_accuracy:
        flags.append("low_gold_accuracy")
    if row.get("outlier_z") is not None and decided >= config.min_decided and row["outlier_z"] > config.outlier_z:
        flags.append("vote_outlier")
    return flags


FLAG_LABELS = {
    "one_side": "Always one side",
    "too_fast": "Too fast",
    "low_agreement": "Low agreement",
    "low_gold_accuracy": "Low gold accuracy",
    "vote_outlier": "Outlier votes",
}
