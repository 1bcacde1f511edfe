"""Playback evidence on the server: a vote counts only after both clips went out to the
annotator and the longer clip's duration passed since the comparison page did."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from labeling_app.actions.playback import merge_range
from labeling_app.models import Assignment, Candidate, ClipServing, Comparison, Round
from tests.labeling_app.conftest import make_campaign, make_ready_round, vote_data

pytestmark = pytest.mark.django_db

CLIP = os.urandom(200_000)  # three blocks and a bit of the media view's 64 KiB


@pytest.fixture
def unplayed(annotator, media_root, client):
    round_ = make_ready_round(make_campaign().scenarios.get(), annotator, candidate_media=CLIP, played=False)
    Candidate.objects.filter(round=round_).update(duration_seconds=6.0)
    client.force_login(annotator)
    return round_


def vote(client, round_):
    return client.post(reverse("labeling:vote", args=[round_.public_id]), vote_data(), HTTP_ACCEPT="application/json")


def fetch_clip(client, candidate, **headers) -> bytes:
    response = client.get(reverse("labeling:candidate-media", args=[candidate.public_id]), **headers)
    assert response.status_code in (200, 206)
    return b"".join(response.streaming_content)


def open_compare_page(client, round_):
    assert client.get(reverse("labeling:compare", args=[round_.public_id])).status_code == 200


def nothing_written(round_) -> bool:
    return (not Comparison.objects.filter(round=round_).exists()
            and Assignment.objects.get(pk=round_.assignment_id).status == Assignment.Status.ACTIVE)


def backdate_compare_page(round_, seconds: float) -> None:
    Round.objects.filter(pk=round_.pk).update(compare_served_at=timezone.now() - timedelta(seconds=seconds))


def test_a_vote_without_the_clips_served_is_refused_and_writes_nothing(client, unplayed):
    open_compare_page(client, unplayed)
    backdate_compare_page(unplayed, 60)  # plenty of time passed, but nothing was played
    response = vote(client, unplayed)
    assert response.status_code == 409
    assert response.json()["error"].startswith("Response A (left) was not played")
    assert nothing_written(unplayed)

    left, right = Candidate.objects.filter(round=unplayed).order_by("pk")  # A is on the left here
    assert fetch_clip(client, left) == CLIP
    response = vote(client, unplayed)
    assert response.status_code == 409 and response.json()["error"].startswith("Response B (right) was not played")
    assert nothing_written(unplayed)
    assert fetch_clip(client, right) == CLIP
    assert vote(client, unplayed).status_code == 201


def test_a_vote_faster_than_the_longer_clip_is_refused_and_writes_nothing(client, unplayed):
    open_compare_page(client, unplayed)
    for candidate in Candidate.objects.filter(round=unplayed):
        fetch_clip(client, candidate)
    response = vote(client, unplayed)
    assert response.status_code == 409
    assert "the longer response lasts 6 s" in response.json()["error"]
    assert nothing_written(unplayed)
    # Reloading the page does not restart the clock, and an early vote did not either.
    first_served = Round.objects.get(pk=unplayed.pk).compare_served_at
    open_compare_page(client, unplayed)
    assert Round.objects.get(pk=unplayed.pk).compare_served_at == first_served
    backdate_compare_page(unplayed, 6.5)
    assert vote(client, unplayed).status_code == 201


def test_coverage_is_the_union_of_the_ranges_actually_sent(client, unplayed):
    open_compare_page(client, unplayed)
    backdate_compare_page(unplayed, 60)
    left, right = Candidate.objects.filter(round=unplayed).order_by("pk")
    fetch_clip(client, right)
    # The left clip in three overlapping ranges, the last one twice.
    assert fetch_clip(client, left, HTTP_RANGE="bytes=0-99999") == CLIP[:100_000]
    assert vote(client, unplayed).status_code == 409  # half of it is not enough
    fetch_clip(client, left, HTTP_RANGE="bytes=50000-150000")
    fetch_clip(client, left, HTTP_RANGE="bytes=150001-")
    fetch_clip(client, left, HTTP_RANGE="bytes=150001-")
    serving = ClipServing.objects.get(candidate=left)
    assert serving.served_ranges == [[0, 150_001], [150_001, 200_000]] or serving.served_ranges == [[0, 200_000]]
    assert serving.served_bytes == serving.size_bytes == len(CLIP) and serving.requests == 4
    assert vote(client, unplayed).status_code == 201


def test_a_dropped_request_counts_only_what_was_sent():
    import io

    from labeling_app.views.media import CHUNK, _read

    reported = []
    body = _read(io.BytesIO(CLIP), len(CLIP), reported.append)
    next(body)  # the server wrote the first block,
    next(body)  # asked for the second one, and then the player hung up:
    body.close()  # what a WSGI server does when the client is gone
    assert reported == [CHUNK]
    reported.clear()
    assert b"".join(_read(io.BytesIO(CLIP), 1000, reported.append)) == CLIP[:1000] and reported == [1000]


def test_a_head_request_and_staff_viewing_are_no_evidence(client, unplayed, lead):
    left = Candidate.objects.filter(round=unplayed).order_by("pk").first()
    assert client.head(reverse("labeling:candidate-media", args=[left.public_id])).status_code == 200
    staff = Client()
    staff.force_login(lead)
    fetch_clip(staff, left)
    assert not ClipServing.objects.exists()


def test_a_retry_of_a_vote_that_landed_is_still_answered(client, unplayed):
    open_compare_page(client, unplayed)
    for candidate in Candidate.objects.filter(round=unplayed):
        fetch_clip(client, candidate)
    backdate_compare_page(unplayed, 60)
    data = vote_data()
    url = reverse("labeling:vote", args=[unplayed.public_id])
    assert client.post(url, data).status_code == 201
    assert client.post(url, data).status_code == 200


def test_merge_range_keeps_sorted_disjoint_intervals():
    assert merge_range([], 5, 10) == [[5, 10]]
    assert merge_range([[0, 10], [20, 30]], 5, 25) == [[0, 30]]
    assert merge_range([[0, 10], [20, 30]], 12, 15) == [[0, 10], [12, 15], [20, 30]]
    assert merge_range([[0, 10]], 10, 12) == [[0, 12]]
