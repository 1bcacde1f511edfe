"""Nothing an annotator can fetch reveals which variant made which response."""

from __future__ import annotations

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling_app.models import Assignment, Candidate, Round
from tests.labeling_app.conftest import SECRET_A, SECRET_B, make_campaign, make_clip

pytestmark = pytest.mark.django_db

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Words that would only appear if variant details leaked into a page or a JSON answer.
TELLTALE_WORDS = ["variant", "checkpoint", "temperature", "top_k", "diffusion_steps", "ckpt"]


def secrets_of(campaign) -> list[str]:
    values = [campaign.name, campaign.slug, campaign.variant_a.name, campaign.variant_b.name]
    for secret in (SECRET_A, SECRET_B):
        values += [secret["name"], secret["checkpoint"], secret["checkpoint"].rsplit("/", 1)[-1],
                   str(secret["audio_temperature"]), str(secret["visual_temperature"])]
    return values


def test_no_response_an_annotator_can_fetch_names_a_variant(client, annotator, media_root):
    campaign = make_campaign(name="Zebra t1.37 versus walrus t0.61")
    client.force_login(annotator)
    fetched: list[tuple[str, bytes, dict]] = []

    def fetch(method: str, url: str, **kwargs):
        response = getattr(client, method)(url, **kwargs)
        assert response.status_code < 400, (url, response.status_code)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        fetched.append((url, body, dict(response.headers)))
        return response

    fetch("get", reverse("home"))
    fetch("get", reverse("labeling:workspace"))
    fetch("get", reverse("labeling:guidelines"))
    item = fetch("post", reverse("labeling:next"), HTTP_ACCEPT="application/json").json()["item"]
    fetch("get", item["url"])
    upload = fetch("post", reverse("labeling:upload", args=[item["assignment"]]),
                   data={"media": SimpleUploadedFile("t.webm", make_clip()), "source": "recorded"}).json()
    fetch("get", upload["status_url"])  # queued
    round_ = Round.objects.get()
    for candidate in Candidate.objects.filter(round=round_):
        candidate.status = Candidate.Status.READY
        candidate.progress = 1.0
        candidate.media.save("response.mp4", ContentFile(make_clip(container="mp4")), save=False)
        candidate.save()
    status = fetch("get", upload["status_url"]).json()
    # One state for the pair: nothing per side while nothing failed (see test_waiting_page.py).
    assert set(status) == {"progress", "message", "ready", "failed", "compare_url"}
    page = fetch("get", upload["compare_url"]).content.decode()
    media_urls = re.findall(r'<video id="video-(?:left|right)"[^>]*src="([^"]+)"', page)
    assert len(media_urls) == 2
    for url in media_urls:
        assert re.fullmatch(rf"/label/media/response/{UUID}/", url), url
        fetch("get", url)
    fetch("get", reverse("labeling:round-media", args=[round_.public_id]))
    token = re.search(r'name="submission_token" value="([^"]+)"', page).group(1)
    vote = {"submission_token": token, "overall": "b", "strength": "3", "confidence": "5",
            "time_spent_ms": "9000", "plays_a": "1", "plays_b": "1",
            **{d: "a" for d in campaign.dimensions}}
    fetch("post", reverse("labeling:vote", args=[round_.public_id]), data=vote)
    fetch("get", reverse("labeling:history"))
    fetch("get", reverse("labeling:workspace") + "?saved=1")
    assert Assignment.objects.get().status == "completed"

    secrets = secrets_of(campaign)
    for url, body, headers in fetched:
        text = body.decode("utf-8", errors="replace") + " " + " ".join(f"{k}: {v}" for k, v in headers.items())
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in {url}"
        for word in TELLTALE_WORDS:
            assert word not in text.lower(), f"{word!r} appears in {url}"


def test_a_failed_response_explains_itself_without_the_workers_error(client, annotator, media_root):
    from tests.labeling_app.conftest import make_ready_round

    campaign = make_campaign()
    round_ = make_ready_round(campaign.scenarios.get(), annotator, status=Candidate.Status.FAILED)
    Candidate.objects.filter(round=round_).update(
        error=f"FileNotFoundError: {SECRET_A['checkpoint']}/model.safetensors")
    client.force_login(annotator)
    body = client.get(reverse("labeling:round-status", args=[round_.public_id])).json()
    assert body["failed"] is True and body["ready"] is False
    assert body["left"]["status"] == "failed"
    assert body["left"]["message"].startswith("The agent could not produce this response.")
    assert "safetensors" not in str(body) and SECRET_A["checkpoint"] not in str(body)
