"""Uploading a turn: every bad file is refused with a message and leaves nothing behind."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling_app.actions.assignments import do_claim_next_assignment
from labeling_app.media_checks import SizeLimitUploadHandler, size_text
from labeling_app.models import Assignment, Candidate, Round
from labeling_app.queue import send_task_now
from tests.conftest import REPO_ROOT
from tests.labeling_app.conftest import make_campaign, make_clip, stored_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def claimed(annotator, client):
    make_campaign(scenarios=2)
    assignment, _ = do_claim_next_assignment(annotator)
    client.force_login(annotator)
    return assignment


def post_clip(client, assignment, data: bytes, name: str = "turn.webm", source: str = "recorded",
              content_type: str = "video/webm"):
    return client.post(
        reverse("labeling:upload", args=[assignment.pk]),
        {"media": SimpleUploadedFile(name, data, content_type=content_type), "source": source},
        HTTP_ACCEPT="application/json",
    )


def assert_nothing_kept(media_root):
    assert Round.objects.count() == 0
    assert Candidate.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.parametrize("container, live", [("webm", False), ("webm", True), ("mp4", False)])
def test_a_valid_clip_makes_one_round_two_candidates_and_two_sampling_tasks(
    container, live, claimed, client, media_root, django_capture_on_commit_callbacks, annotator
):
    data = make_clip(container=container, live=live)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_clip(client, claimed, data, name=f"clip.{container}", source="uploaded")
    assert response.status_code == 201, response.content
    body = response.json()
    round_ = Round.objects.get()
    assert body == {
        "round": str(round_.public_id),
        "status_url": reverse("labeling:round-status", args=[round_.public_id]),
        "compare_url": reverse("labeling:compare", args=[round_.public_id]),
    }
    assert (round_.annotator, round_.assignment, round_.source) == (annotator, claimed, "uploaded")
    assert round_.container == container and round_.media_extension == container
    assert round_.has_audio and round_.has_video
    assert 1.9 < round_.duration_seconds < 2.2
    assert round_.size_bytes == len(data)
    assert stored_files(media_root) == [f"rounds/{round_.public_id}/turn.{container}"]
    assert (media_root / round_.media.name).read_bytes() == data

    candidates = list(Candidate.objects.filter(round=round_))
    campaign = claimed.scenario.campaign
    assert {c.variant_id for c in candidates} == {campaign.variant_a_id, campaign.variant_b_id}
    assert all(c.status == "queued" and 0 <= c.seed < 2**31 for c in candidates)
    sent = sorted((cb.func, cb.args) for cb in callbacks)
    assert sent == sorted((send_task_now, ("workers.sampling.sample_candidate", c.id)) for c in candidates)


def test_the_side_order_is_random_across_rounds(annotator, client, media_root, webm_clip):
    make_campaign(scenarios=12)
    client.force_login(annotator)
    for _ in range(12):
        assignment, _ = do_claim_next_assignment(annotator)
        assert post_clip(client, assignment, webm_clip).status_code == 201
        Assignment.objects.filter(pk=assignment.pk).update(status="completed")
    # 12 fair coin flips all alike has probability 2 / 4096.
    assert set(Round.objects.values_list("variant_a_on_left", flat=True)) == {True, False}


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 6 // 10]


BAD_FILES = {
    "empty": (lambda clip: b"", 400, "The file is empty"),
    "truncated webm": (truncated, 400, "could not be read completely"),
    "truncated browser recording (no duration header)": (
        lambda clip: truncated(make_clip(live=True)), 400, "could not be read completely"),
    "truncated mp4": (lambda clip: truncated(make_clip(container="mp4")), 400, "could not be read completely"),
    "html renamed to .webm": (
        lambda clip: b"<!doctype html><html><script>alert(document.cookie)</script></html>" * 50,
        415, "not a recording we can use",
    ),
    "polyglot: EBML magic then html": (
        lambda clip: bytes.fromhex("1A45DFA3") + b"<html><script>alert(1)</script></html>" * 50,
        400, "could not be read completely",
    ),
    "webm header, garbage body": (lambda clip: clip[:200] + b"\x00" * 5000, 400, "could not be read completely"),
    "too short": (lambda clip: make_clip(seconds=0.2), 400, "a turn needs more than 0.3 seconds"),
    "overlong": (lambda clip: make_clip(seconds=61, fps=2, audio=False), 400, "longer than 60 seconds"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_is_refused_with_a_message_and_leaves_nothing(case, claimed, client, media_root, webm_clip):
    make_bytes, status, message = BAD_FILES[case]
    response = post_clip(client, claimed, make_bytes(webm_clip))
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert_nothing_kept(media_root)
    # The item is still the annotator's, and a good take afterwards works.
    assert post_clip(client, claimed, webm_clip).status_code == 201


def test_every_cut_off_recording_is_refused_not_only_the_first(claimed, client, media_root):
    # FFmpeg reports each cut with the same message; one that is only logged once per process
    # would let the second cut-off file of a day through.
    recording = make_clip(seconds=3, live=True)
    for share in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        response = post_clip(client, claimed, recording[: int(len(recording) * share)])
        assert response.status_code == 400, share
    assert_nothing_kept(media_root)


def test_an_oversized_upload_is_refused_by_content_length(claimed, client, media_root, settings):
    settings.HER_UPLOAD_MAX_BYTES = 1000
    big = make_clip(seconds=4, size=64, noise=True)
    assert len(big) > 1000 + 64 * 1024  # beyond the multipart slack: refused before parsing
    response = post_clip(client, claimed, big)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]
    assert_nothing_kept(media_root)


def test_an_oversized_file_within_the_slack_is_stopped_by_counting_chunks(claimed, client, media_root, settings,
                                                                          webm_clip):
    settings.HER_UPLOAD_MAX_BYTES = 20_000
    assert 20_000 < len(webm_clip) < 20_000 + 64 * 1024
    response = post_clip(client, claimed, webm_clip)
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]
    assert_nothing_kept(media_root)


def test_the_size_limit_is_one_setting_stated_the_same_on_the_page_in_the_refusal_and_in_readme(
        claimed, client, media_root, settings, webm_clip):
    assert size_text(settings.HER_UPLOAD_MAX_BYTES) == "50 MB"
    readme = (REPO_ROOT / "README.md").read_text()
    assert f"| `HER_UPLOAD_MAX_BYTES` | `{settings.HER_UPLOAD_MAX_BYTES}` (50 MB) |" in readme
    settings.HER_UPLOAD_MAX_BYTES = 20_000
    page = client.get(reverse("labeling:item", args=[claimed.pk])).content.decode()
    assert "or upload a clip (at most 20 kB)" in page
    assert 'data-max-bytes="20000" data-max-size="20 kB"' in page  # the page's own check before sending
    refused = post_clip(client, claimed, webm_clip)
    assert refused.status_code == 413
    assert refused.json()["error"].startswith("The file is larger than the limit of 20 kB.")
    assert_nothing_kept(media_root)


def test_sizes_are_written_in_decimal_units():
    assert [size_text(n) for n in (50_000_000, 52_428_800, 1_500_000_000, 20_000, 999)] == [
        "50 MB", "52.4 MB", "1.5 GB", "20 kB", "999 bytes"]


def test_a_chunked_upload_without_content_length_is_refused_with_the_reason(claimed, client, media_root,
                                                                               webm_clip):
    # What gunicorn hands Django for "Transfer-Encoding: chunked": the header, and no CONTENT_LENGTH.
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\nrecorded\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"media\"; filename=\"t.webm\"\r\n"
            f"Content-Type: video/webm\r\n\r\n").encode() + webm_clip + f"\r\n--{boundary}--\r\n".encode()
    response = client.generic("POST", reverse("labeling:upload", args=[claimed.pk]), body,
                              content_type=f"multipart/form-data; boundary={boundary}",
                              HTTP_ACCEPT="application/json", HTTP_TRANSFER_ENCODING="chunked", CONTENT_LENGTH="")
    assert response.status_code == 411
    assert response.json()["error"].startswith("The upload did not say its size (no Content-Length: a chunked upload).")
    assert "field 'source'" not in response.json()["error"]
    assert_nothing_kept(media_root)


def test_the_size_handler_stops_at_the_first_chunk_past_the_limit():
    from django.core.files.uploadhandler import StopUpload

    handler = SizeLimitUploadHandler(limit=10)
    assert handler.receive_data_chunk(b"12345", 0) == b"12345"
    with pytest.raises(StopUpload):
        handler.receive_data_chunk(b"678901", 5)
    assert handler.exceeded


def test_the_extension_and_declared_type_are_ignored(claimed, client, media_root, mp4_clip):
    response = post_clip(client, claimed, mp4_clip, name="innocent.html", content_type="text/html")
    assert response.status_code == 201
    assert Round.objects.get().media.name.endswith("/turn.mp4")


@pytest.mark.parametrize("data, message", [
    ({"source": "telepathy"}, "must be 'recorded' or 'uploaded'"),
    ({}, "field 'source'"),
])
def test_a_bad_source_field_is_refused(data, message, claimed, client, media_root, webm_clip):
    payload = {"media": SimpleUploadedFile("t.webm", webm_clip), **data}
    response = client.post(reverse("labeling:upload", args=[claimed.pk]), payload)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert_nothing_kept(media_root)


def test_a_missing_file_is_refused(claimed, client, media_root):
    response = client.post(reverse("labeling:upload", args=[claimed.pk]), {"source": "recorded"})
    assert response.status_code == 400
    assert response.json()["error"] == "Attach the clip in the field 'media'."


def test_a_second_upload_for_the_same_item_is_refused(claimed, client, media_root, webm_clip):
    assert post_clip(client, claimed, webm_clip).status_code == 201
    response = post_clip(client, claimed, webm_clip)
    assert response.status_code == 409
    assert "already recorded your turn" in response.json()["error"]
    assert Round.objects.count() == 1 and Candidate.objects.count() == 2
    assert len(stored_files(media_root)) == 1


def test_another_annotators_item_is_not_found(claimed, client, other_annotator, media_root, webm_clip):
    client.force_login(other_annotator)
    response = post_clip(client, claimed, webm_clip)
    assert response.status_code == 404
    assert response.json()["error"] == "This item does not exist or is not yours."
    assert_nothing_kept(media_root)


def test_a_failure_inside_the_transaction_removes_the_written_file(claimed, client, media_root, webm_clip,
                                                                   monkeypatch):
    # The database refuses the round after the file was written: the file must go too.
    from django.db import IntegrityError

    def refuse(*args, **kwargs):
        raise IntegrityError("simulated")

    monkeypatch.setattr(Candidate.objects, "create", refuse)
    with pytest.raises(IntegrityError):
        post_clip(client, claimed, webm_clip)
    assert_nothing_kept(media_root)


def test_the_round_media_is_served_to_its_owner_with_safe_headers(claimed, client, media_root, webm_clip,
                                                                  other_annotator, engineer):
    post_clip(client, claimed, webm_clip)
    round_ = Round.objects.get()
    url = reverse("labeling:round-media", args=[round_.public_id])
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "video/webm"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == 'inline; filename="turn.webm"'
    assert b"".join(response.streaming_content) == webm_clip
    partial = client.get(url, HTTP_RANGE="bytes=10-19")
    assert partial.status_code == 206
    assert partial["Content-Range"] == f"bytes 10-19/{len(webm_clip)}"
    assert b"".join(partial.streaming_content) == webm_clip[10:20]
    suffix = client.get(url, HTTP_RANGE="bytes=-5")
    assert suffix.status_code == 206 and b"".join(suffix.streaming_content) == webm_clip[-5:]
    beyond = client.get(url, HTTP_RANGE=f"bytes={len(webm_clip)}-")
    assert beyond.status_code == 416 and beyond["Content-Range"] == f"bytes */{len(webm_clip)}"
    client.force_login(other_annotator)
    assert client.get(url).status_code == 404
    client.force_login(engineer)  # staff with view_round
    assert client.get(url).status_code == 200


def test_the_upload_is_protected_against_cross_site_requests(annotator, media_root, webm_clip):
    # The view installs its size guard before CSRF is checked (csrf_exempt outside,
    # csrf_protect inside): that must not open a hole.
    from django.test import Client

    make_campaign()
    assignment, _ = do_claim_next_assignment(annotator)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(annotator)
    page = browser.get(reverse("labeling:item", args=[assignment.pk]))
    token = page.cookies["csrftoken"].value
    url = reverse("labeling:upload", args=[assignment.pk])
    forged = browser.post(url, {"media": SimpleUploadedFile("t.webm", webm_clip), "source": "recorded"})
    assert forged.status_code == 403
    assert_nothing_kept(media_root)
    genuine = browser.post(url, {"media": SimpleUploadedFile("t.webm", webm_clip), "source": "recorded"},
                           HTTP_X_CSRFTOKEN=token)
    assert genuine.status_code == 201


def test_an_upload_to_a_paused_campaign_is_refused(claimed, client, media_root, webm_clip):
    from labeling_app.models import Campaign

    Campaign.objects.update(status=Campaign.Status.PAUSED)
    response = post_clip(client, claimed, webm_clip)
    assert response.status_code == 409
    assert response.json()["error"] == "This campaign is paused or closed; your work on it cannot be saved now."
    assert_nothing_kept(media_root)
