"""The workspace pages: who may see what, and what each page shows."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from labeling_app.actions.assignments import do_claim_next_assignment
from labeling_app.models import Assignment, Candidate, Comparison
from labeling_app.views import workspace
from tests.labeling_app.conftest import make_campaign, make_ready_round, vote_data

pytestmark = pytest.mark.django_db

NOT_AN_ANNOTATOR = ("Only annotators can use the labeling workspace. Ask a lead to give your account the "
                    "annotator role.")


@pytest.fixture
def world(annotator, media_root):
    """An annotator with a round whose two responses are ready."""
    campaign = make_campaign(scenarios=2)
    round_ = make_ready_round(campaign.scenarios.first(), annotator)
    candidates = list(Candidate.objects.filter(round=round_))
    return campaign, round_, candidates


def urls(round_, candidates):
    return {
        "item": reverse("labeling:item", args=[round_.assignment_id]),
        "status": reverse("labeling:round-status", args=[round_.public_id]),
        "compare": reverse("labeling:compare", args=[round_.public_id]),
        "candidate-media": reverse("labeling:candidate-media", args=[candidates[0].public_id]),
        "round-media": reverse("labeling:round-media", args=[round_.public_id]),
    }


class TestPermissions:
    @pytest.mark.parametrize("name", ["workspace", "guidelines", "history"])
    def test_pages_send_anonymous_visitors_to_log_in(self, client, name):
        response = client.get(reverse(f"labeling:{name}"))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))

    def test_json_endpoints_answer_anonymous_visitors_with_401(self, client, world):
        _, round_, _ = world
        response = client.get(reverse("labeling:round-status", args=[round_.public_id]))
        assert response.status_code == 401 and response.json() == {"error": "Your session ended. Log in again."}
        assert client.post(reverse("labeling:vote", args=[round_.public_id]), vote_data()).status_code == 401

    def test_media_is_not_found_for_anonymous_visitors(self, client, world):
        _, round_, candidates = world
        for name in ("candidate-media", "round-media"):
            assert client.get(urls(round_, candidates)[name]).status_code == 404

    @pytest.mark.parametrize("name", ["workspace", "guidelines", "history"])
    def test_pages_refuse_users_without_the_annotator_permission(self, client, engineer, name):
        client.force_login(engineer)
        response = client.get(reverse(f"labeling:{name}"))
        assert response.status_code == 403
        assert NOT_AN_ANNOTATOR in response.content.decode()

    def test_json_endpoints_refuse_users_without_the_annotator_permission(self, client, engineer, world):
        _, round_, _ = world
        client.force_login(engineer)
        response = client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json")
        assert response.status_code == 403
        response = client.get(reverse("labeling:round-status", args=[round_.public_id]))
        assert response.status_code == 403 and response.json() == {"error": NOT_AN_ANNOTATOR}
        assert Assignment.objects.count() == 1

    @pytest.mark.parametrize("name", ["item", "status", "compare", "candidate-media", "round-media"])
    def test_another_annotators_round_is_not_found(self, client, other_annotator, world, name):
        _, round_, candidates = world
        client.force_login(other_annotator)
        response = client.get(urls(round_, candidates)[name])
        assert response.status_code == 404
        if name in ("item", "compare"):
            assert "does not exist or is not yours." in response.content.decode()

    def test_another_annotator_cannot_vote_on_or_give_back_a_round(self, client, other_annotator, world):
        _, round_, _ = world
        client.force_login(other_annotator)
        response = client.post(reverse("labeling:vote", args=[round_.public_id]), vote_data())
        assert response.status_code == 404
        assert response.json() == {"error": "This round does not exist or is not yours."}
        assert client.post(reverse("labeling:release", args=[round_.assignment_id])).status_code == 404
        assert Comparison.objects.count() == 0
        assert Assignment.objects.get().status == "active"

    def test_an_unknown_round_is_not_found(self, client, annotator):
        client.force_login(annotator)
        response = client.get(reverse("labeling:round-status", args=[uuid.uuid4()]))
        assert response.status_code == 404

    @pytest.mark.parametrize("user", ["annotator", "engineer", "lead"])
    def test_candidate_media_goes_to_its_annotator_and_to_staff_who_may_view(self, client, world, user, request):
        _, round_, candidates = world
        client.force_login(request.getfixturevalue(user))
        response = client.get(urls(round_, candidates)["candidate-media"])
        assert response.status_code == 200
        assert response["Content-Type"] == "video/mp4"
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["Content-Disposition"] == 'inline; filename="response.mp4"'
        assert b"".join(response.streaming_content).startswith(b"\x00\x00\x00\x18ftyp")

    def test_media_of_a_response_that_is_not_ready_is_not_found(self, client, annotator, world):
        _, round_, candidates = world
        Candidate.objects.filter(pk=candidates[0].pk).update(status=Candidate.Status.RUNNING)
        client.force_login(annotator)
        assert client.get(urls(round_, candidates)["candidate-media"]).status_code == 404


class TestPages:
    def test_home_links_an_annotator_to_the_workspace(self, client, annotator):
        client.force_login(annotator)
        html = client.get(reverse("home")).content.decode()
        assert f'href="{reverse("labeling:workspace")}"' in html and 'id="open-workspace"' in html

    def test_the_workspace_offers_the_next_item_or_the_current_one(self, client, annotator, media_root):
        make_campaign()
        client.force_login(annotator)
        html = client.get(reverse("labeling:workspace")).content.decode()
        assert 'id="next-item"' in html and 'id="continue-item"' not in html
        assignment, _ = do_claim_next_assignment(annotator)
        html = client.get(reverse("labeling:workspace")).content.decode()
        assert f'href="{reverse("labeling:item", args=[assignment.pk])}"' in html
        assert "Scenario 0" in html

    def test_the_item_page_shows_the_scenario_and_the_recorder(self, client, annotator, media_root):
        make_campaign()
        assignment, _ = do_claim_next_assignment(annotator)
        client.force_login(annotator)
        html = client.get(reverse("labeling:item", args=[assignment.pk])).content.decode()
        assert "Scenario 0" in html and "Say hello number 0." in html
        assert 'fill="rgb(200, 40, 40)"' in html and "style=" not in html and "cup" in html
        for element_id in ("record", "stop", "preview", "file", "upload-file", "upload-progress",
                           "status-left", "status-right", "release"):
            assert f'id="{element_id}"' in html, element_id
        assert f'data-upload-url="{reverse("labeling:upload", args=[assignment.pk])}"' in html
        assert '<section class="card" id="record-section">' in html
        assert '<section class="card" id="waiting-section" hidden>' in html

    def test_the_item_page_waits_while_responses_are_made_then_moves_on(self, client, annotator, media_root):
        campaign = make_campaign()
        round_ = make_ready_round(campaign.scenarios.get(), annotator, status=Candidate.Status.RUNNING)
        client.force_login(annotator)
        url = reverse("labeling:item", args=[round_.assignment_id])
        html = client.get(url).content.decode()
        assert '<section class="card" id="waiting-section">' in html
        assert f'data-status-url="{reverse("labeling:round-status", args=[round_.public_id])}"' in html
        Candidate.objects.update(status=Candidate.Status.READY)
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == reverse("labeling:compare", args=[round_.public_id])

    def test_an_expired_and_released_item_says_so(self, client, annotator, media_root):
        make_campaign()
        assignment, _ = do_claim_next_assignment(annotator)
        client.force_login(annotator)
        response = client.post(reverse("labeling:release", args=[assignment.pk]))
        assert response.status_code == 302
        assert Assignment.objects.get().status == "expired"
        response = client.get(reverse("labeling:item", args=[assignment.pk]))
        assert response.status_code == 410
        assert "Your time on this item ran out and it was released." in response.content.decode()

    def test_a_finished_item_cannot_be_given_back(self, client, annotator, world):
        _, round_, _ = world
        client.force_login(annotator)
        assert client.post(reverse("labeling:vote", args=[round_.public_id]), vote_data()).status_code == 201
        response = client.post(reverse("labeling:release", args=[round_.assignment_id]), HTTP_ACCEPT="application/json")
        assert response.status_code == 409
        assert response.json() == {"error": "You already finished this item; it cannot be given back."}

    def test_the_guidelines_explain_every_dimension_with_examples(self, client, annotator, media_root):
        campaign = make_campaign(guidelines="Watch the hands closely in this study.")
        client.force_login(annotator)
        html = client.get(reverse("labeling:guidelines")).content.decode()
        for label in ("Speaking", "Listening", "Manipulation", "Identity consistency", "Question-answer safety"):
            assert f"<h2>{label}</h2>" in html
        assert html.count("<strong>Good:</strong>") == 5 and html.count("<strong>Bad:</strong>") == 5
        assert "Watch the hands closely in this study." in html
        assert campaign.name not in html

    def test_the_history_lists_only_the_annotators_own_votes_with_counts(self, client, annotator, other_annotator,
                                                                         media_root):
        campaign = make_campaign(scenarios=3)
        mine = make_ready_round(campaign.scenarios.all()[0], annotator)
        theirs = make_ready_round(campaign.scenarios.all()[1], other_annotator)
        client.force_login(other_annotator)
        assert client.post(reverse("labeling:vote", args=[theirs.public_id]), vote_data()).status_code == 201
        client.force_login(annotator)
        assert client.post(reverse("labeling:vote", args=[mine.public_id]),
                           vote_data(time_spent_ms="42000", overall="b", strength="3")).status_code == 201
        old = make_ready_round(campaign.scenarios.all()[2], annotator)
        assert client.post(reverse("labeling:vote", args=[old.public_id]), vote_data()).status_code == 201
        Comparison.objects.filter(round=old).update(submitted_at=timezone.now() - timedelta(days=2))
        html = client.get(reverse("labeling:history")).content.decode()
        assert "Scenario 0" in html and "Scenario 2" in html and "Scenario 1" not in html
        assert "B better (much)" in html and "42 s" in html
        assert 'id="count-today">1<' in html and 'id="count-total">2<' in html

    def test_the_history_pages_through_every_vote_newest_first(self, client, annotator, media_root, monkeypatch):
        monkeypatch.setattr(workspace, "HISTORY_PAGE_SIZE", 2)
        campaign = make_campaign(scenarios=5)
        client.force_login(annotator)
        for i, scenario in enumerate(campaign.scenarios.order_by("pk")):
            round_ = make_ready_round(scenario, annotator)
            assert client.post(reverse("labeling:vote", args=[round_.public_id]), vote_data()).status_code == 201
            Comparison.objects.filter(round=round_).update(submitted_at=timezone.now() - timedelta(hours=10 - i))
        seen = []
        for number in (1, 2, 3):
            html = client.get(reverse("labeling:history"), {"page": number}).content.decode()
            assert f"Page {number} of 3" in html
            seen += re.findall(r"<td>(Scenario \d)</td>", html)
        assert seen == [f"Scenario {i}" for i in (4, 3, 2, 1, 0)]
        assert 'rel="next"' not in html and 'rel="prev"' in html
        # A page past the end or not a number shows the last or the first page, not an error.
        assert "Page 3 of 3" in client.get(reverse("labeling:history"), {"page": 99}).content.decode()
        assert "Page 1 of 3" in client.get(reverse("labeling:history"), {"page": "x"}).content.decode()

    def test_the_history_charts_votes_per_day(self, client, annotator, media_root):
        campaign = make_campaign(scenarios=3)
        client.force_login(annotator)
        for days_ago, scenario in zip((0, 2, 2), campaign.scenarios.order_by("pk")):
            round_ = make_ready_round(scenario, annotator)
            assert client.post(reverse("labeling:vote", args=[round_.public_id]), vote_data()).status_code == 201
            Comparison.objects.filter(round=round_).update(submitted_at=timezone.now() - timedelta(days=days_ago))
        days = client.get(reverse("labeling:history")).context["days"]
        assert len(days) == workspace.HISTORY_CHART_DAYS
        assert days[-1]["day"] == timezone.localdate()
        assert [d["votes"] for d in days[-3:]] == [2, 0, 1]
        assert [d["height"] for d in days[-3:]] == [100, 0, 50]
        assert sum(d["votes"] for d in days) == 3
