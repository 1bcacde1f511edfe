"""The statistics against known answers: reference formulas, libraries, synthetic truths."""

import math

import krippendorff
import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from labeling_app.stats.agreement import cohen_kappa, krippendorff_alpha, percent_agreement
from labeling_app.stats.anomalies import vote_outlier_z
from labeling_app.stats.bradley_terry import PairOutcomes, bootstrap, fit, fit_many
from labeling_app.stats.intervals import wilson


def wilson_reference(k: float, n: int, z: float = 1.959963984540054):
    """Wilson (1927) as the roots of the quadratic (n + z^2) p^2 - (2k + z^2) p + k^2/n = 0."""
    a, b, c = n + z * z, -(2 * k + z * z), k * k / n
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


@pytest.mark.parametrize("k,n", [(0, 1), (1, 1), (0, 10), (3, 10), (8, 10), (10, 10), (50, 100), (1, 1000), (517, 1000)])
def test_wilson_equals_the_reference_formula_and_scipy(k, n):
    low, high = wilson(k, n)
    ref = wilson_reference(k, n)
    assert low == pytest.approx(ref[0], abs=1e-12) and high == pytest.approx(ref[1], abs=1e-12)
    scipy_ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert (low, high) == pytest.approx((scipy_ci.low, scipy_ci.high), abs=1e-9)


def test_wilson_always_holds_the_observed_rate():
    """At 0 or n successes rounding left the bound a hair past the rate for 3, 6, 7, 10, ... trials
    (5.6e-17 > 0): the interval must contain p exactly."""
    for n in range(1, 200):
        for k in (0, n / 2, n):
            low, high = wilson(k, n)
            assert low <= k / n <= high, (k, n)
        assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_wilson_with_half_ties_and_bad_input():
    low, high = wilson(7.5, 10)
    assert (low, high) == pytest.approx(wilson_reference(7.5, 10), abs=1e-12)
    assert wilson(0, 0) is None
    with pytest.raises(ValueError, match="successes <= n"):
        wilson(11, 10)


def simulate(true: np.ndarray, per_pair: int, rng) -> PairOutcomes:
    rows = []
    for i in range(len(true)):
        for j in range(i + 1, len(true)):
            wins = rng.binomial(per_pair, 1 / (1 + math.exp(true[j] - true[i])))
            rows.append((i, j, wins, per_pair - wins, 0))
    return PairOutcomes.from_rows(len(true), rows)


def test_bradley_terry_recovers_the_ranking_and_its_interval_covers_the_truth():
    true = np.array([0.9, 0.4, 0.0, -0.5, -0.8])
    true = true - true.mean()
    rng = np.random.default_rng(12)
    covered = total = 0
    for trial in range(60):
        ratings = bootstrap(simulate(true, per_pair=150, rng=rng), rounds=300, seed=trial)
        assert list(np.argsort(-ratings.beta)) == [0, 1, 2, 3, 4], (trial, ratings.beta)
        covered += int(((ratings.low <= true) & (true <= ratings.high)).sum())
        total += len(true)
    coverage = covered / total
    assert coverage >= 0.90, coverage
    assert coverage <= 0.995, coverage  # intervals that always cover are too wide to be useful


def test_the_batched_bootstrap_solver_equals_the_scikit_learn_fit():
    outcomes = PairOutcomes.from_rows(4, [(0, 1, 30, 10, 5), (1, 2, 20, 20, 3), (0, 2, 40, 2, 0), (2, 3, 9, 1, 0)])
    counts = np.stack([outcomes.wins, outcomes.losses, outcomes.ties], axis=1)[None]
    assert fit_many(outcomes, counts)[0] == pytest.approx(fit(outcomes), abs=1e-6)


def test_ties_count_half_a_win():
    with_ties = fit(PairOutcomes.from_rows(2, [(0, 1, 10, 0, 10)]))
    as_halves = fit(PairOutcomes.from_rows(2, [(0, 1, 15, 5, 0)]))
    assert with_ties == pytest.approx(as_halves, abs=1e-6)
    only_ties = fit(PairOutcomes.from_rows(2, [(0, 1, 0, 0, 12)]))
    assert only_ties == pytest.approx([0, 0], abs=1e-9)
    # A variant that won everything has a finite, clearly higher rating.
    sweep = fit(PairOutcomes.from_rows(2, [(0, 1, 40, 0, 0)]))
    assert np.isfinite(sweep).all() and sweep[0] - sweep[1] > 4


def test_cohen_kappa_equals_scikit_learn():
    rng = np.random.default_rng(3)
    for _ in range(20):
        first = rng.integers(0, 3, 80)
        second = np.where(rng.random(80) < 0.6, first, rng.integers(0, 3, 80))
        confusion = np.zeros((3, 3))
        np.add.at(confusion, (first, second), 1)
        assert cohen_kappa(confusion) == pytest.approx(cohen_kappa_score(first, second), abs=1e-12)
    assert cohen_kappa(np.zeros((3, 3))) is None
    assert cohen_kappa(np.diag([5.0, 0, 0])) is None  # both always said the same one thing


def test_krippendorff_alpha_equals_the_package_on_reliability_data():
    rng = np.random.default_rng(4)
    for _ in range(10):
        truth = rng.integers(0, 4, 60)
        data = np.where(rng.random((5, 60)) < 0.7, truth, rng.integers(0, 4, (5, 60))).astype(float)
        data[rng.random((5, 60)) < 0.3] = np.nan  # not everyone judged every item
        counts = np.stack([(data == v).sum(axis=0) for v in range(4)], axis=1)  # (items, values)
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal", value_domain=[0, 1, 2, 3])
        assert krippendorff_alpha(counts) == pytest.approx(expected, abs=1e-9)


def test_percent_agreement_counts_agreeing_pairs_of_votes():
    # item 1: 3 votes all "first" (6 ordered pairs agree of 6); item 2: first, second (0 of 2).
    counts = np.array([[3, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 0]])
    assert percent_agreement(counts) == pytest.approx(6 / 8)
    assert krippendorff_alpha(np.array([[1, 0, 0, 0]])) is None  # nobody shares an item


def test_the_vote_outlier_test_flags_a_random_clicker_not_a_typical_annotator():
    crowd = np.array([800, 150, 50])  # the crowd clearly prefers the first variant
    typical = np.array([40, 8, 2])
    random_clicker = np.array([17, 17, 16])
    reversed_reader = np.array([8, 40, 2])
    assert abs(vote_outlier_z(typical, crowd)) < 2
    assert vote_outlier_z(random_clicker, crowd) > 3.09
    assert vote_outlier_z(reversed_reader, crowd) > 3.09
    assert vote_outlier_z(np.zeros(3), crowd) is None
