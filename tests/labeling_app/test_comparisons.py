"""The blind comparison page and the vote: complete, validated, saved exactly once."""

from __future__ import annotations

import re
import uuid

import pytest
from django.urls import reverse

from labeling_app.models import Assignment, Candidate, Comparison
from tests.labeling_app.conftest import ALL_DIMENSIONS as ALL
from tests.labeling_app.conftest import make_campaign, make_ready_round, run_together, vote_data


@pytest.fixture
def ready(annotator, media_root, client):
    campaign = make_campaign()
    round_ = make_ready_round(campaign.scenarios.get(), annotator)
    client.force_login(annotator)
    return round_


def vote(client, round_, data):
    return client.post(reverse("labeling:vote", args=[round_.public_id]), data, HTTP_ACCEPT="application/json")


@pytest.mark.django_db
class TestComparePage:
    def test_the_page_has_both_videos_the_controls_and_a_locked_vote(self, client, ready):
        html = client.get(reverse("labeling:compare", args=[ready.public_id])).content.decode()
        for element_id in ("video-left", "video-right", "play-both", "pause-both", "restart-both",
                           "submit-vote", "vote-form", "vote-fieldset", "shortcuts", "rationale"):
            assert f'id="{element_id}"' in html, element_id
        assert re.search(r'<fieldset id="vote-fieldset" disabled>', html)
        assert re.search(r'<button type="submit" id="submit-vote" class="primary" disabled>', html)
        assert 'data-locked="true"' in html
        for dimension in ALL:
            for value in ("a", "b", "tie", "both_bad", "na"):
                assert f'name="{dimension}" value="{value}"' in html
        for name, values in (("overall", ["a", "b", "tie"]), ("strength", [1, 2, 3]), ("confidence", [1, 2, 3, 4, 5])):
            for value in values:
                assert f'name="{name}" value="{value}"' in html
        token = re.search(r'name="submission_token" value="([0-9a-f-]{36})"', html).group(1)
        assert uuid.UUID(token)
        for hidden in ("time_spent_ms", "plays_a", "plays_b"):
            assert f'name="{hidden}"' in html
        assert "<kbd>Space</kbd>" in html and "<kbd>x</kbd>" in html and "<kbd>Ctrl</kbd>+<kbd>Enter</kbd>" in html
        assert "labeling/compare.js" in html

    def test_left_is_variant_a_exactly_when_the_round_says_so(self, client, annotator, media_root):
        campaign = make_campaign(scenarios=2)
        client.force_login(annotator)
        for scenario, a_on_left in zip(campaign.scenarios.all(), (True, False)):
            round_ = make_ready_round(scenario, annotator, variant_a_on_left=a_on_left)
            html = client.get(reverse("labeling:compare", args=[round_.public_id])).content.decode()
            a = Candidate.objects.get(round=round_, variant=campaign.variant_a)
            b = Candidate.objects.get(round=round_, variant=campaign.variant_b)
            left, right = (a, b) if a_on_left else (b, a)
            assert re.search(rf'id="video-left"[^>]*src="[^"]*{left.public_id}/"', html)
            assert re.search(rf'id="video-right"[^>]*src="[^"]*{right.public_id}/"', html)

    def test_only_the_campaigns_dimensions_are_asked(self, client, annotator, media_root):
        campaign = make_campaign(dimensions=["speaking", "qa_safety"])
        round_ = make_ready_round(campaign.scenarios.get(), annotator)
        client.force_login(annotator)
        html = client.get(reverse("labeling:compare", args=[round_.public_id])).content.decode()
        assert 'name="speaking"' in html and 'name="qa_safety"' in html
        assert 'name="listening"' not in html and 'name="manipulation"' not in html

    def test_candidates_not_ready_send_the_annotator_back_to_the_waiting_page(self, client, annotator, media_root):
        campaign = make_campaign()
        round_ = make_ready_round(campaign.scenarios.get(), annotator, status=Candidate.Status.RUNNING)
        client.force_login(annotator)
        response = client.get(reverse("labeling:compare", args=[round_.public_id]))
        assert response.status_code == 302
        assert response["Location"] == reverse("labeling:item", args=[round_.assignment_id])


@pytest.mark.django_db
class TestVote:
    def test_a_vote_is_saved_in_the_orientation_shown_and_completes_the_item(self, client, ready, annotator):
        response = vote(client, ready, vote_data(speaking="b", listening="tie", manipulation="na",
                                                 identity="both_bad", qa_safety="a"))
        assert response.status_code == 201, response.content
        comparison = Comparison.objects.get()
        assert response.json() == {"comparison": str(comparison.public_id),
                                   "next_url": reverse("labeling:workspace") + "?saved=1"}
        campaign = ready.scenario.campaign
        assert comparison.candidate_a.variant_id == campaign.variant_a_id  # variant A was on the left
        assert comparison.judgments() == {"speaking": "b", "listening": "tie", "manipulation": "na",
                                          "identity": "both_bad", "qa_safety": "a"}
        assert (comparison.overall, comparison.strength, comparison.confidence) == ("a", 2, 4)
        assert (comparison.time_spent_ms, comparison.plays_a, comparison.plays_b) == (15300, 1, 2)
        assert comparison.rationale == "A answered; B talked over me."
        assignment = Assignment.objects.get()
        assert assignment.status == "completed" and assignment.completed_at is not None

    def test_when_b_is_on_the_left_the_left_clip_is_candidate_a(self, client, annotator, media_root):
        campaign = make_campaign()
        round_ = make_ready_round(campaign.scenarios.get(), annotator, variant_a_on_left=False)
        client.force_login(annotator)
        assert vote(client, round_, vote_data()).status_code == 201
        assert Comparison.objects.get().candidate_a.variant_id == campaign.variant_b_id

    def test_the_same_token_twice_makes_one_row_and_two_successes(self, client, ready):
        data = vote_data()
        first, second = vote(client, ready, data), vote(client, ready, data)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json() == second.json()
        assert Comparison.objects.count() == 1

    def test_a_second_token_for_the_same_round_is_a_conflict(self, client, ready):
        assert vote(client, ready, vote_data()).status_code == 201
        response = vote(client, ready, vote_data())
        assert response.status_code == 409
        assert response.json()["error"] == "You already submitted your judgment of this pair. Go on to the next item."
        assert Comparison.objects.count() == 1

    def test_a_token_used_on_another_round_is_a_conflict(self, client, annotator, media_root):
        campaign = make_campaign(scenarios=2)
        first, second = (make_ready_round(s, annotator) for s in campaign.scenarios.all())
        client.force_login(annotator)
        data = vote_data()
        assert vote(client, first, data).status_code == 201
        response = vote(client, second, data)
        assert response.status_code == 409
        assert "already used for another item" in response.json()["error"]

    def test_dimensions_not_asked_are_stored_as_not_applicable(self, client, annotator, media_root):
        campaign = make_campaign(dimensions=["listening"])
        round_ = make_ready_round(campaign.scenarios.get(), annotator)
        client.force_login(annotator)
        # A value sent for a dimension that was not asked is ignored, not stored.
        assert vote(client, round_, vote_data(["listening"], speaking="b")).status_code == 201
        assert Comparison.objects.get().judgments() == {
            "speaking": "na", "listening": "a", "manipulation": "na", "identity": "na", "qa_safety": "na"}

    def test_a_tie_is_stored_with_strength_one(self, client, ready):
        assert vote(client, ready, vote_data(overall="tie", strength=None)).status_code == 201
        assert Comparison.objects.get().strength == 1

    @pytest.mark.parametrize("overrides, message", [
        ({"plays_a": "0"}, "Play response A (left) to the end before you vote."),
        ({"plays_b": "0"}, "Play response B (right) to the end before you vote."),
        ({"plays_a": None}, "Play response A (left) to the end before you vote."),
        ({"speaking": None}, "Choose a judgment for Speaking."),
        ({"identity": "maybe"}, "The judgment for Identity consistency must be A better, B better, tie, both bad or not applicable."),
        ({"overall": None}, "Choose your overall preference: A better, B better or tie."),
        ({"strength": None}, "Say how much better it is: 1 (slightly), 2 (clearly) or 3 (much)."),
        ({"strength": "4"}, "Strength must be 1 (slightly), 2 (clearly) or 3 (much)."),
        ({"confidence": "6"}, "Confidence must be a whole number from 1 to 5."),
        ({"confidence": None}, "Say how confident you are, from 1 (a guess) to 5 (certain)."),
        ({"time_spent_ms": "-5"}, "The time spent cannot be negative."),
        ({"submission_token": "not-a-uuid"}, "The vote form's submission token is damaged. Reload the page and vote again."),
        ({"rationale": "x" * 5001}, "Keep the rationale under 5000 characters."),
    ])
    def test_a_bad_vote_is_refused_with_a_message(self, client, ready, overrides, message):
        response = vote(client, ready, vote_data(**overrides))
        assert response.status_code == 400
        assert response.json()["error"] == message
        assert Comparison.objects.count() == 0
        assert Assignment.objects.get().status == "active"

    def test_a_vote_before_both_responses_are_ready_is_refused(self, client, annotator, media_root):
        campaign = make_campaign()
        round_ = make_ready_round(campaign.scenarios.get(), annotator, status=Candidate.Status.RUNNING)
        client.force_login(annotator)
        response = vote(client, round_, vote_data())
        assert response.status_code == 409
        assert response.json()["error"] == "Both responses must be ready and played before you vote."
        assert Comparison.objects.count() == 0

    def test_a_late_vote_is_kept_when_nobody_took_the_slot(self, client, ready):
        from datetime import timedelta

        from django.utils import timezone

        Assignment.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
        assert vote(client, ready, vote_data()).status_code == 201
        assert Assignment.objects.get().status == "completed"

    def test_the_vote_costs_a_small_constant_number_of_queries(self, client, ready, django_assert_max_num_queries):
        with django_assert_max_num_queries(8):  # cold cache: user, permissions, then the vote (7 on PostgreSQL)
            assert vote(client, ready, vote_data()).status_code == 201

    def test_the_status_poll_costs_a_small_constant_number_of_queries(self, client, ready, django_assert_max_num_queries):
        with django_assert_max_num_queries(5):
            body = client.get(reverse("labeling:round-status", args=[ready.public_id])).json()
        assert body["ready"] is True


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_with_the_same_token_make_one_row(annotator, media_root):
    from django.test import Client

    campaign = make_campaign()
    round_ = make_ready_round(campaign.scenarios.get(), annotator)
    data = vote_data()
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(annotator)
    responses = run_together([lambda c=c: vote(c, round_, data) for c in clients])
    assert sorted(r.status_code for r in responses) == [200, 201]
    assert responses[0].json() == responses[1].json()
    assert Comparison.objects.count() == 1
    assert Assignment.objects.get().status == "completed"


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_posts_with_different_tokens_make_one_row(annotator, media_root):
    from django.test import Client

    campaign = make_campaign()
    round_ = make_ready_round(campaign.scenarios.get(), annotator)
    clients = [Client(), Client()]
    for c in clients:
        c.force_login(annotator)
    responses = run_together([lambda c=c: vote(c, round_, vote_data()) for c in clients])
    assert sorted(r.status_code for r in responses) == [201, 409]
    assert Comparison.objects.count() == 1
