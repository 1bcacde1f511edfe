"""Campaign reports from the database against counts and libraries computed from the truth."""

import random
from collections import Counter
from datetime import timedelta

import krippendorff
import numpy as np
import pytest
from django.utils import timezone
from sklearn.metrics import cohen_kappa_score

from labeling_app.models import Scenario
from labeling_app.stats.campaign import campaign_report, overall_report
from tests.labeling_app.conftest import make_campaign, make_user
from tests.labeling_app.votes import Vote, write_votes

pytestmark = pytest.mark.django_db


def test_win_rates_position_bias_and_annotators_match_the_votes_written():
    campaign = make_campaign(scenarios=40)
    scenarios = list(campaign.scenarios.all())
    people = [make_user(name=f"ann{i}") for i in range(3)]
    rng = random.Random(5)
    votes = []
    for person in people:
        for scenario in scenarios:
            votes.append(Vote(person, scenario, overall=rng.choice(["A", "A", "B", "tie"]), a_on_left=rng.random() < 0.5,
                              dimensions={"speaking": rng.choice(["A", "B", "tie", "both_bad", "na"])},
                              time_ms=rng.randint(3000, 40000)))
    write_votes(campaign, votes)
    report = campaign_report(campaign, bootstrap_rounds=50)

    overall = Counter(v.overall for v in votes)
    assert report["comparisons"] == len(votes)
    w = report["win_rates"]["overall"]
    assert (w["first"], w["second"], w["ties"]) == (overall["A"], overall["B"], overall["tie"])
    assert w["rate"] == pytest.approx((overall["A"] + overall["tie"] / 2) / len(votes))
    speaking = Counter(v.dimensions["speaking"] for v in votes)
    s = report["win_rates"]["speaking"]
    assert (s["first"], s["second"], s["ties"]) == (speaking["A"], speaking["B"], speaking["tie"] + speaking["both_bad"])
    assert s["n"] == len(votes) - speaking["na"]  # not applicable is no judgment
    # Position bias counts sides as shown, not variants.
    left = sum(1 for v in votes if (v.overall == "A") == v.a_on_left and v.overall != "tie")
    right = sum(1 for v in votes if v.overall != "tie") - left
    assert (report["position_bias"]["overall"]["left"], report["position_bias"]["overall"]["right"]) == (left, right)
    assert report["ratings"]["overall"][0]["rating"] > report["ratings"]["overall"][1]["rating"]  # A won more
    rows = {row["username"]: row for row in report["annotators"]}
    for person in people:
        own = [v for v in votes if v.annotator == person]
        assert rows[person.username]["n"] == len(own)
        assert rows[person.username]["fast"] == sum(1 for v in own if v.time_ms < 5000)
        assert rows[person.username]["mean_ms"] == pytest.approx(np.mean([v.time_ms for v in own]))


def test_agreement_on_shared_scenarios_equals_krippendorff_and_scikit_learn():
    campaign = make_campaign(scenarios=30, overlap=4)
    scenarios = list(campaign.scenarios.all())
    people = [make_user(name=f"rater{i}") for i in range(4)]
    rng = random.Random(8)
    truth = {s.pk: rng.choice(["A", "B", "tie"]) for s in scenarios}
    votes = [Vote(p, s, overall=truth[s.pk] if rng.random() < 0.7 else rng.choice(["A", "B", "tie"]),
                  a_on_left=rng.random() < 0.5)
             for p in people for s in scenarios if rng.random() < 0.85]
    write_votes(campaign, votes)
    report = campaign_report(campaign, bootstrap_rounds=0)

    code = {"A": 0, "B": 1, "tie": 2}
    data = np.full((len(people), len(scenarios)), np.nan)
    for v in votes:
        data[people.index(v.annotator), scenarios.index(v.scenario)] = code[v.overall]
    expected_alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal", value_domain=[0, 1, 2, 3])
    section = report["agreement"]["scenario"]
    assert section["fields"]["overall"]["alpha"] == pytest.approx(expected_alpha, abs=1e-9)
    assert report["agreement"]["clip"]["fields"]["overall"]["alpha"] is None  # no identical clips yet
    assert len(section["pairs"]) == 6
    for pair in section["pairs"]:
        i, j = (next(k for k, p in enumerate(people) if p.pk == a) for a in pair["annotators"])
        both = ~np.isnan(data[i]) & ~np.isnan(data[j])
        assert pair["items"] == both.sum()
        assert pair["kappa"] == pytest.approx(cohen_kappa_score(data[i][both], data[j][both]), abs=1e-9)
    assert section["weekly"] and section["weekly"][0]["items"] > 0


def test_flags_point_at_the_annotators_who_earn_them():
    campaign = make_campaign(scenarios=60, overlap=6)
    scenarios = list(campaign.scenarios.all())
    careful = [make_user(name=f"careful{i}") for i in range(3)]
    lefty, hasty, random_clicker = make_user(name="lefty"), make_user(name="hasty"), make_user(name="coin")
    rng = random.Random(2)
    votes = []
    for s in scenarios:
        truth = "A" if rng.random() < 0.85 else "B"  # A is clearly better, not on every scenario
        for p in careful:
            seen = truth if rng.random() < 0.95 else {"A": "B", "B": "A"}[truth]
            votes.append(Vote(p, s, overall=seen, a_on_left=rng.random() < 0.5))
        on_left = rng.random() < 0.5
        votes.append(Vote(lefty, s, overall="A" if on_left else "B", a_on_left=on_left))  # always the left clip
        votes.append(Vote(hasty, s, overall="A", a_on_left=rng.random() < 0.5, time_ms=1200))
        votes.append(Vote(random_clicker, s, overall=rng.choice(["A", "B"]), a_on_left=rng.random() < 0.5))
    write_votes(campaign, votes)
    flags = {row["username"]: set(row["flags"]) for row in campaign_report(campaign, bootstrap_rounds=0)["annotators"]}
    assert "one_side" in flags["lefty"]
    assert "too_fast" in flags["hasty"]
    assert {"vote_outlier", "low_agreement"} <= flags["coin"]
    assert all(not flags[p.username] for p in careful), flags


def test_the_report_costs_a_fixed_number_of_queries(django_assert_max_num_queries):
    campaign = make_campaign(scenarios=5, overlap=3)
    people = [make_user() for _ in range(3)]
    write_votes(campaign, [Vote(p, s, overall="A") for p in people for s in campaign.scenarios.all()])
    with django_assert_max_num_queries(10):  # GROUP BY statements (gold included), whatever the number of rows
        campaign_report(campaign, bootstrap_rounds=10)


def test_the_overall_report_fits_every_variant_of_every_campaign():
    first = make_campaign(scenarios=20)
    second = make_campaign(scenarios=20)
    # Make the second campaign compare the first's variant B with a new variant.
    second.variant_a = first.variant_b
    second.save()
    person = make_user()
    write_votes(first, [Vote(person, s, overall="A") for s in first.scenarios.all()])
    write_votes(second, [Vote(person, s, overall="A" if i % 4 else "B") for i, s in enumerate(second.scenarios.all())])
    report = overall_report([campaign_report(c, bootstrap_rounds=50) for c in (first, second)], bootstrap_rounds=50)
    names = [r["name"] for r in report["ratings"]["overall"]]
    assert names == [first.variant_a.name, first.variant_b.name, second.variant_b.name]
    cells = {(c["row"], c["column"]): c for c in report["win_matrix"]["overall"]}
    assert cells[(first.variant_a_id, first.variant_b_id)]["rate"] == 1.0
    assert cells[(second.variant_b_id, second.variant_a_id)]["rate"] == pytest.approx(5 / 20)
    assert (first.variant_a_id, second.variant_b_id) not in cells  # never compared directly


def test_volume_per_day_follows_submission_days():
    campaign = make_campaign(scenarios=6)
    person = make_user()
    today = timezone.now().replace(hour=12)
    write_votes(campaign, [Vote(person, s, overall="A", submitted_at=today - timedelta(days=i % 2))
                           for i, s in enumerate(Scenario.objects.filter(campaign=campaign))])
    days = campaign_report(campaign, bootstrap_rounds=0)["throughput"]["per_day"]
    assert [d["n"] for d in days] == [3, 3]
    assert days[1]["day"] == today.date().isoformat()
