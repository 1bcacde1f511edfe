"""Helpers for the worker tests: a shared media directory, Redis workers with short lifecycle
timings, rows to sample, and waiting with the worker's log at hand when time runs out."""

from __future__ import annotations

import os
import random
import time
import uuid
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from celery import Celery
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from labeling_app.models import AgentVariant, Assignment, Campaign, Candidate, Round, Scenario
from model.data.speech import synthesize
from model.media import write_mp4
from tests.conftest import require_service, tcp_reachable

REDIS_URL = os.environ.get("HER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SAMPLE_TASK = "workers.sampling.sample_candidate"

# Lifecycle timings for worker processes under test: beats twice a second, stale after 3 s,
# a sweep every half second, a queued row's message sent again after 2 s.
FAST_LIFECYCLE = dict(HER_HEARTBEAT_SECONDS="0.5", HER_CANDIDATE_STALE_SECONDS="3", HER_JOB_STALE_SECONDS="3",
                      HER_SWEEP_SECONDS="0.5", HER_RESEND_SECONDS="2", HER_RETRY_BACKOFF_SECONDS="0.2")


@pytest.fixture
def shared_media(tmp_path, settings) -> Path:
    """Media storage that this test process and the worker processes both see."""
    media = tmp_path / "media"
    media.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(media)}},
    }
    return media


@pytest.fixture
def redis_worker_env(worker_env, shared_media):
    require_service("Redis", tcp_reachable(REDIS_URL, 6379), REDIS_URL)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    worker_env.update(
        CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL, HER_MEDIA_ROOT=str(shared_media),
        # A message whose worker died is delivered again after this many seconds.
        CELERY_VISIBILITY_TIMEOUT="8", **FAST_LIFECYCLE,
    )
    return worker_env


def redis_client(url: str = REDIS_URL) -> Celery:
    client = Celery("test-client", broker=url, backend=url)
    client.conf.update(task_serializer="json", accept_content=["json"],
                       task_routes={"workers.sampling.*": {"queue": "sampling"}},
                       broker_transport_options={"visibility_timeout": 8})
    return client


def turn_clip(speech: str = "Hello there. Could you pick up the red cup for me?") -> bytes:
    """A real recorded-turn stand-in: espeak-ng speech + a moving picture, H.264/AAC in MP4."""
    wave = synthesize(speech, sample_rate=24_000).numpy()
    frames_count = int(len(wave) / 24_000 * 24) + 1
    frames = np.zeros((frames_count, 96, 128, 3), dtype=np.uint8)
    for i in range(frames_count):
        frames[i, :, (i * 3) % 128] = 255
    path = f"/tmp/turn-{uuid.uuid4().hex}.mp4"
    write_mp4(path, frames, 24, wave, 24_000)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    finally:
        os.unlink(path)


def make_candidates(clip: bytes, extension: str = "mp4", duration: float = 3.0,
                    scene_objects: list | None = None, variants: tuple[AgentVariant, AgentVariant] | None = None,
                    seed: int | None = None) -> list[Candidate]:
    """A campaign of two variants (new ones unless given) and one uploaded round with a candidate of each
    (random seeds unless `seed`: then both sample with it)."""
    a, b = variants or (AgentVariant.objects.create(name=f"warm-{uuid.uuid4().hex[:6]}"),
                        AgentVariant.objects.create(name=f"cool-{uuid.uuid4().hex[:6]}", audio_temperature=0.7,
                                                    visual_temperature=0.7))
    campaign = Campaign.objects.create(name="w", slug=f"w-{uuid.uuid4().hex[:6]}", variant_a=a, variant_b=b,
                                       status="active")
    scenario = Scenario.objects.create(
        campaign=campaign, title="cup", instructions="Ask for the cup", agent_prompt="pick up the cup",
        scene_objects=[{"kind": "cup", "position": [0.3, 0.9, 0.25], "colour": [200, 40, 40]}],
    )
    if scene_objects is not None:  # written past the site's validation, as a stale row might be
        Scenario.objects.filter(pk=scenario.pk).update(scene_objects=scene_objects)
    user = get_user_model().objects.create_user(f"u{uuid.uuid4().hex[:6]}", password="x" * 12)
    assignment = Assignment.objects.create(scenario=scenario, annotator=user,
                                           expires_at=timezone.now() + timedelta(minutes=30))
    round_ = Round(assignment=assignment, annotator=user, scenario=scenario, source="uploaded",
                   media_extension=extension, media_sha256="0" * 64, size_bytes=len(clip), container=extension,
                   duration_seconds=duration, has_audio=True, has_video=True, variant_a_on_left=random.random() < 0.5)
    round_.media.save("turn." + extension, ContentFile(clip), save=False)
    round_.save()
    return [Candidate.objects.create(round=round_, variant=variant, seed=random.randrange(2**31) if seed is None else seed)
            for variant in (a, b)]


def wait_for(predicate, timeout: float, *workers, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    logs = "\n".join(f"--- {w.nodename}:\n{w.log_text()[-5000:]}" for w in workers)
    pytest.fail(f"timed out after {timeout} s; worker logs:\n{logs}")


def pool_children(pid: int) -> list[int]:
    """The pids of a worker's pool processes (its direct children)."""
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def finished(candidate: Candidate) -> bool:
    return Candidate.objects.filter(pk=candidate.pk, status__in=["ready", "failed"]).exists()
