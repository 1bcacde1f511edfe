"""Review items: one recorded pair judged by several annotators, each once, through the same
claim, page and playback evidence; alpha from their votes; gold answers and gold accuracy."""

from __future__ import annotations

import re
from datetime import timedelta

import krippendorff
import numpy as np
import pytest
from django.utils import timezone

from labeling_app.actions import Refused
from labeling_app.actions.reviews import do_create_reviews, do_mark_gold
from labeling_app.models import Assignment, Candidate, Comparison, ReviewItem
from labeling_app.stats.campaign import campaign_report
from labeling_app.stats.refresh import compute_and_store
from tests.labeling_app.conftest import make_campaign, make_ready_round, make_user, vote_data

pytestmark = pytest.mark.django_db

VIDEO = re.compile(r'<video id="video-(left|right)"[^>]*src="([^"]+)"')


def claim(client) -> dict | None:
    return client.post("/label/next/", HTTP_ACCEPT="application/json").json()["item"]


def judge_next(client, prefer: dict) -> tuple[int, Comparison] | None:
    """What a reviewer's browser does: claim the next item, open it, play both clips, vote for
    the variant ``prefer[round id]`` names ("A", "B" or "tie"). None when no item is offered."""
    item = claim(client)
    if item is None:
        return None
    opened = client.get(item["url"])
    assert opened.status_code == 302 and "/label/review/" in opened.url, "a review item opens its comparison page"
    html = client.get(opened.url).content.decode()
    assert "upload" not in re.sub(r"<script.*?</script>", "", html, flags=re.S).lower()  # nothing to record
    sides = {}
    for side, url in VIDEO.findall(html):
        b"".join(client.get(url).streaming_content)  # served to this reviewer: playback evidence
        sides[side] = Candidate.objects.get(public_id=url.rstrip("/").rsplit("/", 1)[1])
    assignment = Assignment.objects.get(pk=item["assignment"])
    Assignment.objects.filter(pk=assignment.pk).update(compare_served_at=timezone.now() - timedelta(minutes=1))
    campaign = sides["left"].round.scenario.campaign
    wanted = prefer[sides["left"].round_id]
    if wanted == "tie":
        side = "tie"
    else:
        variant = campaign.variant_a_id if wanted == "A" else campaign.variant_b_id
        side = "a" if sides["left"].variant_id == variant else "b"
    vote_url = re.search(r'data-vote-url="([^"]+)"', html).group(1)
    response = client.post(vote_url, vote_data(overall=side, strength="1" if side == "tie" else "2"),
                           HTTP_ACCEPT="application/json")
    assert response.status_code == 201, response.content
    comparison = Comparison.objects.get(public_id=response.json()["comparison"])
    assert (comparison.candidate_a, comparison.candidate_b) == (sides["left"], sides["right"])
    return assignment.review_id, comparison


def test_three_annotators_judge_the_same_recorded_pair_once_each_and_alpha_comes_from_their_votes(
        client, media_root, lead):
    campaign = make_campaign(scenarios=3)
    authors = [make_user(name=f"author{i}") for i in range(3)]
    rounds = [make_ready_round(s, a, variant_a_on_left=i % 2 == 0)
              for i, (s, a) in enumerate(zip(campaign.scenarios.all(), authors))]
    reviews = do_create_reviews(campaign, count=10, reviewers=3, by=lead)
    assert sorted(r.round_id for r in reviews) == sorted(r.pk for r in rounds)
    reviewers = [make_user(name=f"reviewer{i}") for i in range(3)]
    # What each reviewer prefers on each round: agreement on the first, a split on the others.
    prefer = {rounds[0].pk: ["A", "A", "A"], rounds[1].pk: ["A", "B", "A"], rounds[2].pk: ["B", "tie", "B"]}
    seen = {}
    for index, person in enumerate(reviewers):
        client.force_login(person)
        seen[person.pk] = []
        while (judged := judge_next(client, {k: v[index] for k, v in prefer.items()})) is not None:
            seen[person.pk].append(judged[0])
    # Each reviewer saw each pair exactly once, and nothing was left to record.
    assert {p: sorted(v) for p, v in seen.items()} == {p.pk: sorted(r.pk for r in reviews) for p in reviewers}
    assert not Comparison.objects.filter(review__isnull=True).exists()
    # Slots are full: a fourth reviewer gets nothing; an author is never sent their own round.
    client.force_login(make_user(name="latecomer"))
    assert claim(client) is None
    for review in ReviewItem.objects.all():
        assert review.round.annotator_id not in set(review.assignments.values_list("annotator_id", flat=True))

    code = {"A": 0, "B": 1, "tie": 2}
    data = np.array([[code[prefer[r.pk][i]] for r in rounds] for i in range(3)], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal", value_domain=[0, 1, 2, 3])
    clip = campaign_report(campaign, bootstrap_rounds=0)["agreement"]["clip"]
    assert clip["fields"]["overall"]["items"] == 3
    assert clip["fields"]["overall"]["alpha"] == pytest.approx(expected, abs=1e-9)
    assert len(clip["pairs"]) == 3  # every reviewer pair shared all three pairs
    client.force_login(lead)  # scripts tell review votes apart and group them by clip
    listed = client.get(f"/api/comparisons/?campaign={campaign.pk}&page_size=100").json()["results"]
    assert sorted((row["review"], row["clip"]) for row in listed) == sorted(
        (review.pk, review.round_id) for review in reviews for _ in range(3))


def test_an_author_is_not_offered_their_own_round_for_review(client, media_root):
    campaign = make_campaign(scenarios=1)
    author = make_user(name="solo")
    make_ready_round(campaign.scenarios.get(), author)
    do_create_reviews(campaign, 1, 2)
    Assignment.objects.filter(annotator=author).update(status=Assignment.Status.COMPLETED)
    client.force_login(author)
    assert claim(client) is None
    client.force_login(make_user(name="other"))
    assert claim(client)["url"]


def test_a_reviewer_must_play_both_clips_before_the_vote_counts(client, media_root):
    campaign = make_campaign()
    make_ready_round(campaign.scenarios.get(), make_user(name="author"))  # the author's evidence only
    do_create_reviews(campaign, 1, 1)
    client.force_login(make_user(name="reviewer"))
    item = claim(client)
    html = client.get(client.get(item["url"]).url).content.decode()
    vote_url = re.search(r'data-vote-url="([^"]+)"', html).group(1)
    response = client.post(vote_url, vote_data(), HTTP_ACCEPT="application/json")
    assert response.status_code == 409
    assert "was not played" in response.json()["error"]
    assert not Comparison.objects.exists()
    other = make_user(name="intruder")
    client.force_login(other)
    assert client.post(vote_url, vote_data(), HTTP_ACCEPT="application/json").status_code == 404
    assert client.get(VIDEO.findall(html)[0][1]).status_code == 404  # not theirs to watch


def test_gold_accuracy_per_annotator_appears_in_the_report_and_on_the_lead_page(client, media_root, lead):
    campaign = make_campaign(scenarios=2)
    rounds = [make_ready_round(s, make_user(name=f"author{i}"), variant_a_on_left=i == 0)
              for i, s in enumerate(campaign.scenarios.all())]
    reviews = do_create_reviews(campaign, 2, 2, by=lead)
    for review in reviews:
        do_mark_gold(review, {"overall": "first", "speaking": "second"}, by=lead)
    careful, careless = make_user(name="careful"), make_user(name="careless")
    # careful: right on everything; careless: right on overall, wrong on speaking (4 answers each).
    answers = {careful.pk: {"overall": "A", "speaking": "B"}, careless.pk: {"overall": "A", "speaking": "A"}}
    for person in (careful, careless):
        client.force_login(person)
        prefer = {r.pk: answers[person.pk]["overall"] for r in rounds}
        for _ in reviews:
            judged = judge_next_with_dimensions(client, prefer, answers[person.pk]["speaking"])
            assert judged is not None
    report = campaign_report(campaign, bootstrap_rounds=0)
    rows = {row["username"]: row for row in report["annotators"]}
    assert (rows["careful"]["gold_accuracy"], rows["careful"]["gold_n"]) == (1.0, 4)
    assert (rows["careless"]["gold_accuracy"], rows["careless"]["gold_n"]) == (0.5, 4)
    assert report["gold"]["fields"]["speaking"]["rate"] == 0.5
    assert report["gold"]["fields"]["overall"]["rate"] == 1.0

    compute_and_store(campaign.pk)
    client.force_login(lead)
    page = client.get(f"/lead/campaigns/{campaign.pk}/").content.decode()
    assert "1.00 of 4" in page and "0.50 of 4" in page
    drill = client.get(f"/lead/campaigns/{campaign.pk}/annotators/{careless.pk}/").content.decode()
    assert "gold 0.50 of 4" in drill


def judge_next_with_dimensions(client, prefer: dict, speaking: str):
    """judge_next, with the speaking dimension answered for variant ``speaking``."""
    item = claim(client)
    if item is None:
        return None
    html = client.get(client.get(item["url"]).url).content.decode()
    sides = {}
    for side, url in VIDEO.findall(html):
        b"".join(client.get(url).streaming_content)
        sides[side] = Candidate.objects.get(public_id=url.rstrip("/").rsplit("/", 1)[1])
    Assignment.objects.filter(pk=item["assignment"]).update(compare_served_at=timezone.now() - timedelta(minutes=1))
    campaign = sides["left"].round.scenario.campaign

    def side_of(variant_letter: str) -> str:
        variant = campaign.variant_a_id if variant_letter == "A" else campaign.variant_b_id
        return "a" if sides["left"].variant_id == variant else "b"

    vote_url = re.search(r'data-vote-url="([^"]+)"', html).group(1)
    data = vote_data(overall=side_of(prefer[sides["left"].round_id]), speaking=side_of(speaking))
    response = client.post(vote_url, data, HTTP_ACCEPT="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def test_gold_answers_and_reviews_refuse_bad_input(media_root):
    campaign = make_campaign(dimensions=["speaking"])
    make_ready_round(campaign.scenarios.get(), make_user())
    (review,) = do_create_reviews(campaign, 1, 2)
    with pytest.raises(Refused) as refused:
        do_mark_gold(review, {"overall": "both_bad", "listening": "first", "speaking": "left"})
    message = refused.value.message
    assert refused.value.status == 400
    assert "'listening' is not judged" in message and "'left' is not one of" in message and "both_bad" in message
    with pytest.raises(Refused, match="between 1 and 20"):
        do_create_reviews(campaign, 1, 0)
    assert do_create_reviews(campaign, 1, 2) == []  # the only finished round is already under review
    gold = do_mark_gold(review, {"overall": "tie"})
    assert gold.answers() == {"overall": "tie"}


def test_a_lead_sends_finished_rounds_to_review_from_the_campaign_page(client, media_root, lead):
    campaign = make_campaign(scenarios=3)
    for scenario in campaign.scenarios.all()[:2]:
        make_ready_round(scenario, make_user())
    client.force_login(lead)
    url = f"/lead/campaigns/{campaign.pk}/reviews/"
    assert 'id="send-to-review"' in client.get(url).content.decode()
    bad = client.post(url, {"count": "many", "reviewers": "3"})
    assert bad.status_code == 400 and "whole numbers" in bad.content.decode()
    too_many = client.post(url, {"count": "1", "reviewers": "21"})
    assert too_many.status_code == 400 and "between 1 and 20" in too_many.content.decode()
    made = client.post(url, {"count": "5", "reviewers": "4"})
    assert made.status_code == 302
    assert sorted(ReviewItem.objects.values_list("reviewers", "created_by")) == [(4, lead.pk)] * 2
    page = client.get(made.url).content.decode()
    assert "2 review items made" in page and page.count("<tr><td><a href=") == 2


def test_leads_see_review_items_and_their_gold_answers_in_the_admin_and_the_audit_trail(client, media_root, lead):
    campaign = make_campaign()
    round_ = make_ready_round(campaign.scenarios.get(), make_user())
    client.force_login(lead)
    # Through the admin's add form, as a lead does it; the round must have both responses ready.
    response = client.post("/admin/labeling_app/reviewitem/add/", {
        "round": round_.pk, "reviewers": "3",
        "gold-TOTAL_FORMS": "1", "gold-INITIAL_FORMS": "0", "gold-MIN_NUM_FORMS": "0", "gold-MAX_NUM_FORMS": "1",
        "gold-0-overall": "second", "gold-0-speaking": "", "gold-0-listening": "", "gold-0-manipulation": "",
        "gold-0-identity": "", "gold-0-qa_safety": "",
    })
    assert response.status_code == 302, response.content.decode()[:3000]
    review = ReviewItem.objects.get()
    assert (review.reviewers, review.created_by, review.gold.answers(), review.gold.created_by) == (
        3, lead, {"overall": "second"}, lead)
    assert client.get(f"/admin/labeling_app/reviewitem/{review.pk}/change/").status_code == 200
    from auditlog.models import LogEntry

    logged = LogEntry.objects.filter(content_type__model__in=["reviewitem", "goldanswer"])
    assert sorted(logged.values_list("content_type__model", "actor")) == [("goldanswer", lead.pk), ("reviewitem", lead.pk)]
    assert "goldanswer" in client.get("/lead/audit/?model=goldanswer").content.decode()
    Candidate.objects.filter(round=round_).update(status=Candidate.Status.FAILED)
    refused = client.post("/admin/labeling_app/reviewitem/add/", {
        "round": round_.pk, "reviewers": "3", "gold-TOTAL_FORMS": "0", "gold-INITIAL_FORMS": "0",
        "gold-MIN_NUM_FORMS": "0", "gold-MAX_NUM_FORMS": "1"})
    assert "both ready" in refused.content.decode()
