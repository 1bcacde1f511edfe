"""Factories for the annotator-workspace tests: users with roles, campaigns, real media.

Media is generated with PyAV in the test (tiny frames, so it takes milliseconds) and stored in
a per-test media directory, so a test can assert that nothing was left behind.
"""

from __future__ import annotations

import io
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from labeling_app.models import AgentVariant, Assignment, Campaign, Candidate, ClipServing, Round, Scenario
from labeling_app.roles import ANNOTATOR, ENGINEER, LEAD, create_user_with_role


def make_clip(seconds: float = 2.0, container: str = "webm", size: int = 16, fps: int = 10,
              audio: bool = True, video: bool = True, noise: bool = False, live: bool = False) -> bytes:
    """An encoded clip: VP8 + Opus in WebM, or H.264 + AAC in MP4.

    ``live`` writes WebM the way a browser's MediaRecorder does: no duration, no cues, elements
    of unknown size, so a cut-off file has no header that says what is missing.
    """
    codecs = {"webm": ("libvpx", "libopus"), "mp4": ("libx264", "aac")}[container]
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    options = {"live": "1"} if live else {}
    with av.open(buffer, "w", format=container, options=options) as out:
        # Every stream is added before the first packet is muxed (the header is written then).
        vstream = out.add_stream(codecs[0], rate=fps) if video else None
        astream = out.add_stream(codecs[1], rate=48000) if audio else None
        if vstream is not None:
            vstream.width = vstream.height = size
            vstream.pix_fmt = "yuv420p"
            for i in range(int(seconds * fps)):
                pixels = (rng.integers(0, 255, (size, size, 3), dtype=np.uint8) if noise
                          else np.full((size, size, 3), (i * 10) % 255, np.uint8))
                for packet in vstream.encode(av.VideoFrame.from_ndarray(pixels, format="rgb24")):
                    out.mux(packet)
        if astream is not None:
            rate = 48000
            step = 1024 if container == "mp4" else 960
            t = np.arange(int(seconds * rate)) / rate
            wave = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, len(wave) - step + 1, step):
                frame = av.AudioFrame.from_ndarray(wave[None, start:start + step], format="flt", layout="mono")
                frame.sample_rate = rate
                frame.pts = start
                for packet in astream.encode(frame):
                    out.mux(packet)
        for stream in (vstream, astream):
            if stream is not None:
                for packet in stream.encode():
                    out.mux(packet)
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The real hasher costs ~0.3 s per user; these tests are about the workspace, not hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_shared_cache():
    """Sessions and users are cached across processes (labeling_app.authentication); SQLite
    reuses primary keys after a rollback, so each test starts with an empty cache."""
    from django.core.cache import caches

    caches["shared"].clear()
    yield
    caches["shared"].clear()


@pytest.fixture(scope="session")
def webm_clip() -> bytes:
    return make_clip()


@pytest.fixture(scope="session")
def mp4_clip() -> bytes:
    return make_clip(container="mp4")


@pytest.fixture
def media_root(tmp_path, settings) -> Path:
    """A private, empty media directory as the default storage for this test."""
    root = tmp_path / "media"
    root.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}},
    }
    return root


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def make_user(role: str = ANNOTATOR, name: str | None = None):
    return create_user_with_role(name or f"{role}-{uuid.uuid4().hex[:6]}", "pw-" + uuid.uuid4().hex, role)


@pytest.fixture
def annotator():
    return make_user(ANNOTATOR, "alice")


@pytest.fixture
def other_annotator():
    return make_user(ANNOTATOR, "bob")


@pytest.fixture
def engineer():
    return make_user(ENGINEER, "erin")


@pytest.fixture
def lead():
    return make_user(LEAD, "lee")


# Distinctive values, so a privacy test can search responses for them.
SECRET_A = dict(name="zebra-secret-alpha", checkpoint="/ckpt/zebra-alpha-step-7777", audio_temperature=1.37,
                visual_temperature=0.83, top_k=41, diffusion_steps=19)
SECRET_B = dict(name="walrus-secret-beta", checkpoint="/ckpt/walrus-beta-step-8888", audio_temperature=0.61,
                visual_temperature=0.29, top_k=23, diffusion_steps=13)


def make_campaign(overlap: int = 1, scenarios: int = 1, lock_minutes: int = 30,
                  dimensions: list[str] | None = None, **fields) -> Campaign:
    suffix = uuid.uuid4().hex[:6]
    a = AgentVariant.objects.create(**{**SECRET_A, "name": f"{SECRET_A['name']}-{suffix}"})
    b = AgentVariant.objects.create(**{**SECRET_B, "name": f"{SECRET_B['name']}-{suffix}"})
    extra = {"dimensions": dimensions} if dimensions is not None else {}
    campaign = Campaign.objects.create(
        name=fields.pop("name", "Study " + suffix), slug=f"study-{suffix}", variant_a=a, variant_b=b,
        overlap=overlap, lock_minutes=lock_minutes, status=Campaign.Status.ACTIVE,
        guidelines=fields.pop("guidelines", "Prefer the response you would rather talk to."), **extra, **fields,
    )
    for position in range(scenarios):
        Scenario.objects.create(
            campaign=campaign, title=f"Scenario {position}", instructions=f"Say hello number {position}.",
            agent_prompt="friendly", position=position,
            scene_objects=[{"kind": "cup", "colour": [200, 40, 40], "position": [0.3, 0.9, 0.2]}],
        )
    return campaign


def make_ready_round(scenario: Scenario, annotator, variant_a_on_left: bool = True,
                     candidate_media: bytes = b"", status: str = Candidate.Status.READY,
                     played: bool = True) -> Round:
    """An assignment with a stored round and two candidates (by default ready, with media).

    ``played``: with playback evidence, as if the annotator had opened the comparison page a
    minute ago and both clips had been served in full (a vote may land at once).
    """
    assignment = Assignment.objects.create(
        scenario=scenario, annotator=annotator,
        expires_at=timezone.now() + timedelta(minutes=scenario.campaign.lock_minutes),
    )
    round_ = Round(
        assignment=assignment, annotator=annotator, scenario=scenario, source="uploaded",
        media_extension="webm", media_sha256="0" * 64, size_bytes=10, container="webm",
        duration_seconds=2.0, has_audio=True, has_video=True, variant_a_on_left=variant_a_on_left,
    )
    round_.media.save("turn", ContentFile(b"round"), save=False)
    round_.save()
    for variant, seed in ((scenario.campaign.variant_a, 11), (scenario.campaign.variant_b, 22)):
        candidate = Candidate(round=round_, variant=variant, seed=seed, status=status,
                              progress=1.0 if status == Candidate.Status.READY else 0.0)
        if status == Candidate.Status.READY:
            candidate.media.save("response.mp4", ContentFile(candidate_media or b"\x00\x00\x00\x18ftypisom-test-response"), save=False)
            candidate.duration_seconds = 2.0
        candidate.save()
        if played and status == Candidate.Status.READY:
            size = candidate.media.size
            ClipServing.objects.create(candidate=candidate, size_bytes=size, served_ranges=[[0, size]],
                                       served_bytes=size, requests=1, first_served_at=timezone.now(),
                                       last_served_at=timezone.now())
    if played:
        round_.compare_served_at = timezone.now() - timedelta(minutes=1)
        round_.save(update_fields=["compare_served_at"])
    return round_


def play_both(client, round_public_id) -> None:
    """What a browser does before a vote can land: open the comparison page and fetch both
    clips in full; then the clock is moved on past the clips (playback evidence)."""
    import re

    page = client.get(f"/label/round/{round_public_id}/compare/").content.decode()
    for url in re.findall(r'<video id="video-(?:left|right)"[^>]*src="([^"]+)"', page):
        b"".join(client.get(url).streaming_content)
    Round.objects.filter(public_id=round_public_id).update(compare_served_at=timezone.now() - timedelta(minutes=1))


ALL_DIMENSIONS = ["speaking", "listening", "manipulation", "identity", "qa_safety"]


def vote_data(dimensions=ALL_DIMENSIONS, **overrides):
    """A complete, valid vote form (as strings, like a browser sends it); None drops a field."""
    data = {d: "a" for d in dimensions}
    data.update(submission_token=str(uuid.uuid4()), overall="a", strength="2", confidence="4",
                rationale="A answered; B talked over me.", time_spent_ms="15300", plays_a="1", plays_b="2")
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def run_together(functions):
    """Start every function in its own thread at the same instant; return their results."""
    barrier = threading.Barrier(len(functions))
    results: list = [None] * len(functions)
    errors: list = []

    def runner(index, function):
        try:
            barrier.wait(timeout=10)
            results[index] = function()
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()  # each thread had its own connection

    threads = [threading.Thread(target=runner, args=(i, f)) for i, f in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results
