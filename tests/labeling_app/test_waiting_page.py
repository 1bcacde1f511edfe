"""While the agents respond, nothing the annotator can see tells the sides apart: the two
candidates are queued in random order and the status is one progress for the pair."""

from __future__ import annotations

import pytest
from django.urls import reverse

from labeling_app.actions.assignments import do_claim_next_assignment
from labeling_app.models import Assignment, Candidate, Round
from tests.labeling_app.conftest import make_campaign, make_ready_round
from tests.labeling_app.test_uploads import post_clip

pytestmark = pytest.mark.django_db
QUEUED, RUNNING, READY, FAILED = (Candidate.Status.QUEUED, Candidate.Status.RUNNING, Candidate.Status.READY,
                                  Candidate.Status.FAILED)


def status_of(client, round_) -> dict:
    body = client.get(reverse("labeling:round-status", args=[round_.public_id])).json()
    body.pop("compare_url")
    return body


def set_sides(round_, left: tuple[str, float], right: tuple[str, float]) -> None:
    a = Candidate.objects.get(round=round_, variant=round_.scenario.campaign.variant_a)
    b = Candidate.objects.get(round=round_, variant=round_.scenario.campaign.variant_b)
    on_left, on_right = (a, b) if round_.variant_a_on_left else (b, a)
    for candidate, (status, progress) in ((on_left, left), (on_right, right)):
        Candidate.objects.filter(pk=candidate.pk).update(status=status, progress=progress)


@pytest.mark.parametrize("first, second", [
    ((QUEUED, 0.0), (QUEUED, 0.0)),
    ((RUNNING, 0.4), (QUEUED, 0.0)),
    ((READY, 1.0), (QUEUED, 0.0)),
    ((READY, 1.0), (RUNNING, 0.25)),
])
def test_the_status_is_the_same_whichever_side_is_further_along(client, annotator, media_root, first, second):
    """Each state and its mirror image (the other side further along, either variant on the
    left) give the same answer: the page cannot learn which response is ahead."""
    campaign = make_campaign(scenarios=4)
    client.force_login(annotator)
    answers = []
    for scenario, a_on_left, (left, right) in zip(
            campaign.scenarios.all(), (True, True, False, False), ((first, second), (second, first)) * 2):
        round_ = make_ready_round(scenario, annotator, variant_a_on_left=a_on_left, status=QUEUED)
        set_sides(round_, left, right)
        answers.append(status_of(client, round_))
    assert all(answer == answers[0] for answer in answers), answers
    assert set(answers[0]) == {"progress", "message", "ready", "failed"}
    assert answers[0]["ready"] is False and answers[0]["failed"] is False


def test_the_progress_is_one_number_for_the_pair_and_ready_only_when_both_are(client, annotator, media_root):
    round_ = make_ready_round(make_campaign().scenarios.get(), annotator, status=QUEUED)
    client.force_login(annotator)
    assert status_of(client, round_) == {"progress": 0.0, "message": "Waiting for a free worker…",
                                         "ready": False, "failed": False}
    set_sides(round_, (READY, 1.0), (RUNNING, 0.5))
    assert status_of(client, round_) == {"progress": 0.75, "message": "The agent is responding…",
                                         "ready": False, "failed": False}
    set_sides(round_, (READY, 1.0), (READY, 1.0))
    assert status_of(client, round_) == {"progress": 1.0, "message": "Both responses are ready.",
                                         "ready": True, "failed": False}


def test_a_failure_names_its_side(client, annotator, media_root):
    round_ = make_ready_round(make_campaign().scenarios.get(), annotator, status=QUEUED)
    client.force_login(annotator)
    set_sides(round_, (READY, 1.0), (FAILED, 0.3))
    body = status_of(client, round_)
    assert body["failed"] is True and body["ready"] is False
    assert body["left"]["status"] == READY and body["right"]["status"] == FAILED
    assert body["right"]["message"].startswith("The agent could not produce this response.")


def test_the_waiting_page_has_one_progress_bar_for_the_pair(client, annotator, media_root):
    round_ = make_ready_round(make_campaign().scenarios.get(), annotator, status=QUEUED)
    client.force_login(annotator)
    html = client.get(reverse("labeling:item", args=[round_.assignment_id])).content.decode()
    assert 'id="progress-pair"' in html and 'id="status-pair"' in html
    assert 'id="progress-left"' not in html and 'id="progress-right"' not in html
    assert '<div class="sides" id="side-errors" hidden>' in html


def test_the_candidates_are_queued_in_random_order(annotator, client, media_root, webm_clip,
                                                   django_capture_on_commit_callbacks):
    make_campaign(scenarios=16)
    client.force_login(annotator)
    variant_a_first = []
    for _ in range(16):
        assignment, _ = do_claim_next_assignment(annotator)
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            assert post_clip(client, assignment, webm_clip).status_code == 201
        first_sent = Candidate.objects.get(pk=callbacks[0].args[1])  # send_task_now(name, candidate_id)
        variant_a_first.append(first_sent.variant_id == assignment.scenario.campaign.variant_a_id)
        Assignment.objects.filter(pk=assignment.pk).update(status="completed")
    assert Round.objects.count() == 16
    # 16 fair coin flips all alike has probability 2 / 65536.
    assert set(variant_a_first) == {True, False}
