"""Bradley-Terry ratings with bootstrap confidence intervals, fitted on aggregated counts.

The model: P(i beats j) = sigmoid(beta_i - beta_j). It is the logistic regression of the outcome
on the design row e_i - e_j (the formulation Chatbot Arena uses), so scikit-learn does the fitting.
The fit never sees single comparisons: each variant pair contributes two weighted rows (i won:
wins + ties/2; j won: losses + ties/2), so its cost depends on the number of pairs, not votes.

The bootstrap resamples outcome counts, not rows: for every pair, a multinomial draw of the same
number of comparisons with the observed win / loss / tie shares. That is the ordinary bootstrap
stratified by pair (each pair keeps its sample size), and it stays fast at millions of votes.

Ratings are reported on the Elo scale Arena uses (400 points per factor of 10 in odds), centred
so the mean variant sits at 1000; ``beta`` is the same on the natural-log scale, mean 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.linear_model import LogisticRegression

ELO_SCALE = 400 / math.log(10)
ELO_CENTRE = 1000.0
# A little L2 keeps a variant that won (or lost) every comparison at a finite rating; against
# thousands of votes its pull is negligible (its effect is that of 1/C pseudo-observations).
REGULARISATION_C = 1e4


@dataclass(frozen=True)
class PairOutcomes:
    """Aggregated outcomes: for pair k, variant ``first[k]`` against ``second[k]`` (indices into
    the variant list) won ``wins[k]``, lost ``losses[k]`` and tied ``ties[k]`` times."""

    n_variants: int
    first: np.ndarray
    second: np.ndarray
    wins: np.ndarray
    losses: np.ndarray
    ties: np.ndarray

    @classmethod
    def from_rows(cls, n_variants: int, rows: list[tuple[int, int, float, float, float]]) -> PairOutcomes:
        array = np.asarray(rows, dtype=float).reshape(-1, 5)
        if len(array) and (array[:, 0] == array[:, 1]).any():
            raise ValueError("a variant cannot be compared with itself")
        return cls(n_variants, array[:, 0].astype(int), array[:, 1].astype(int), array[:, 2], array[:, 3], array[:, 4])

    @property
    def totals(self) -> np.ndarray:
        return self.wins + self.losses + self.ties

    def with_counts(self, counts: np.ndarray) -> PairOutcomes:
        """The same pairs with (P, 3) win / loss / tie counts replaced."""
        return PairOutcomes(self.n_variants, self.first, self.second, counts[:, 0], counts[:, 1], counts[:, 2])


@dataclass(frozen=True)
class Ratings:
    """Fitted strengths (log scale, mean 0) and their bootstrap percentile intervals."""

    beta: np.ndarray
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    confidence: float = 0.95
    rounds: int = 0

    def elo(self) -> list[dict]:
        """Per variant: rating and interval on the Elo scale (JSON-ready)."""
        out = []
        for k, value in enumerate(self.beta):
            entry = {"rating": ELO_CENTRE + ELO_SCALE * float(value)}
            if self.low is not None:
                entry["low"] = ELO_CENTRE + ELO_SCALE * float(self.low[k])
                entry["high"] = ELO_CENTRE + ELO_SCALE * float(self.high[k])
            out.append(entry)
        return out


def fit(outcomes: PairOutcomes) -> np.ndarray:
    """Maximum-likelihood strengths (L2-regularised, see REGULARISATION_C), centred to mean 0."""
    k = outcomes.n_variants
    beta = np.zeros(k)
    if k < 2 or outcomes.totals.sum() == 0:
        return beta
    pairs = len(outcomes.first)
    design = np.zeros((pairs, k))  # (P, K): +1 for the first variant, -1 for the second
    design[np.arange(pairs), outcomes.first] = 1.0
    design[np.arange(pairs), outcomes.second] = -1.0
    x = np.vstack([design, design])  # (2P, K)
    y = np.concatenate([np.ones(pairs), np.zeros(pairs)])
    weight = np.concatenate([outcomes.wins + outcomes.ties / 2, outcomes.losses + outcomes.ties / 2])
    keep = weight > 0
    if len(np.unique(y[keep])) < 2:
        # Every comparison went one way: add the mirrored rows with no weight, so both classes
        # exist and the regularisation alone bounds the strengths.
        keep = np.ones_like(keep)
    model = LogisticRegression(C=REGULARISATION_C, fit_intercept=False, solver="newton-cholesky", max_iter=200, tol=1e-10)
    model.fit(x[keep], y[keep], sample_weight=weight[keep])
    beta = model.coef_[0]
    return beta - beta.mean()


def bootstrap(outcomes: PairOutcomes, rounds: int = 200, confidence: float = 0.95, seed: int = 0) -> Ratings:
    """The fit plus percentile intervals from ``rounds`` multinomial resamples of the counts."""
    beta = fit(outcomes)
    totals = outcomes.totals
    if rounds <= 0 or totals.sum() == 0 or outcomes.n_variants < 2:
        return Ratings(beta, confidence=confidence)
    rng = np.random.default_rng(seed)
    shares = np.stack([outcomes.wins, outcomes.losses, outcomes.ties], axis=1)  # (P, 3)
    shares = shares / np.maximum(totals, 1)[:, None]
    shares[totals == 0] = [1.0, 0.0, 0.0]  # a pair without votes draws zero comparisons anyway
    n = np.rint(totals).astype(np.int64)
    counts = rng.multinomial(n, shares, size=(rounds, len(n))).astype(float)  # (B, P, 3)
    samples = fit_many(outcomes, counts)  # (B, K)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail], axis=0)
    return Ratings(beta, low, high, confidence, rounds)


def fit_many(outcomes: PairOutcomes, counts: np.ndarray, iterations: int = 50) -> np.ndarray:
    """The same penalised fit as ``fit`` for B count tables at once: (B, P, 3) -> (B, K).

    One scikit-learn fit costs milliseconds; a bootstrap needs hundreds, so the replicates are
    solved together by Newton's method in numpy (the objective is that of ``fit``; a test checks
    both agree). Steps are clipped so a near-separable replicate cannot overshoot.
    """
    k = outcomes.n_variants
    pairs = len(outcomes.first)
    design = np.zeros((pairs, k))  # (P, K)
    design[np.arange(pairs), outcomes.first] = 1.0
    design[np.arange(pairs), outcomes.second] = -1.0
    won = counts[..., 0] + counts[..., 2] / 2  # (B, P)
    total = counts.sum(axis=-1)  # (B, P)
    beta = np.zeros((counts.shape[0], k))  # (B, K)
    ridge = np.eye(k) / REGULARISATION_C
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-(beta @ design.T)))  # (B, P): P(first wins)
        gradient = (total * p - won) @ design + beta / REGULARISATION_C  # (B, K)
        curvature = total * p * (1 - p)  # (B, P)
        hessian = np.einsum("bp,pk,pl->bkl", curvature, design, design) + ridge  # (B, K, K)
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        step = np.clip(step, -2.0, 2.0)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta - beta.mean(axis=1, keepdims=True)


def win_probability(beta_i: float, beta_j: float) -> float:
    """P(i beats j) under the model."""
    return 1 / (1 + math.exp(beta_j - beta_i))
