"""The sampling worker, as a real process on a real broker: it answers a recorded turn with an
MP4 and a rollout, survives being killed mid-task, and fails bad media with a readable error."""

import os
import random
import signal
import time
import uuid
from datetime import timedelta

import av
import numpy as np
import pytest
from celery import Celery
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from labeling_app.models import AgentVariant, Assignment, Campaign, Candidate, Round, Scenario
from model.data.speech import synthesize
from model.media import write_mp4
from model.rollout_store import rollout_from_bytes
from tests.conftest import require_service, tcp_reachable

REDIS_URL = os.environ.get("HER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SAMPLE_TASK = "workers.sampling.sample_candidate"

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shared_media(tmp_path, settings):
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
        CELERY_VISIBILITY_TIMEOUT="8",
    )
    return worker_env


def redis_client() -> Celery:
    client = Celery("test-client", broker=REDIS_URL, backend=REDIS_URL)
    client.conf.update(task_serializer="json", accept_content=["json"],
                       task_routes={"workers.sampling.*": {"queue": "sampling"}},
                       broker_transport_options={"visibility_timeout": 8})
    return client


def turn_clip(seconds_of_speech: str = "Hello there. Could you pick up the red cup for me?") -> bytes:
    """A real recorded-turn stand-in: espeak-ng speech + a moving picture, H.264/AAC in MP4."""
    wave = synthesize(seconds_of_speech, sample_rate=24_000).numpy()
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


def make_candidates(clip: bytes, extension: str = "mp4", duration: float = 3.0) -> list[Candidate]:
    a = AgentVariant.objects.create(name=f"warm-{uuid.uuid4().hex[:6]}")
    b = AgentVariant.objects.create(name=f"cool-{uuid.uuid4().hex[:6]}", audio_temperature=0.7,
                                    visual_temperature=0.7)
    campaign = Campaign.objects.create(name="w", slug=f"w-{uuid.uuid4().hex[:6]}", variant_a=a, variant_b=b,
                                       status="active")
    scenario = Scenario.objects.create(
        campaign=campaign, title="cup", instructions="Ask for the cup", agent_prompt="pick up the cup",
        scene_objects=[{"kind": "cup", "position": [0.3, 0.9, 0.25], "colour": [200, 40, 40]}],
    )
    user = get_user_model().objects.create_user(f"u{uuid.uuid4().hex[:6]}", password="x" * 12)
    assignment = Assignment.objects.create(scenario=scenario, annotator=user,
                                           expires_at=timezone.now() + timedelta(minutes=30))
    round_ = Round(assignment=assignment, annotator=user, scenario=scenario, source="uploaded",
                   media_extension=extension, media_sha256="0" * 64, size_bytes=len(clip), container=extension,
                   duration_seconds=duration, has_audio=True, has_video=True, variant_a_on_left=random.random() < 0.5)
    round_.media.save("turn." + extension, ContentFile(clip), save=False)
    round_.save()
    return [Candidate.objects.create(round=round_, variant=variant, seed=random.randrange(2**31))
            for variant in (a, b)]


def wait_for(predicate, timeout: float, worker=None, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    log = worker.log_text() if worker is not None else ""
    pytest.fail(f"timed out after {timeout} s; worker log:\n{log[-6000:]}")


def test_a_worker_samples_both_candidates_of_a_round(redis_worker_env, start_worker):
    candidates = make_candidates(turn_clip())
    worker = start_worker(redis_worker_env, queues="sampling")
    client = redis_client()
    for candidate in candidates:
        client.send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk__in=[c.pk for c in candidates], status__in=["ready", "failed"]).count() == 2,
             timeout=300, worker=worker)

    for candidate in candidates:
        candidate.refresh_from_db()
        assert candidate.status == "ready", candidate.error
        assert candidate.progress == 1.0 and candidate.attempts == 1
        assert candidate.sample_seconds > 0 and candidate.render_seconds > 0
        with default_storage.open(candidate.media.name) as handle, av.open(handle) as container:
            video = container.streams.video[0]
            audio = container.streams.audio[0]
            assert (video.codec_context.name, audio.codec_context.name) == ("h264", "aac")
            assert (video.width, video.height) == (640, 360)
            frames = sum(1 for _ in container.decode(video=0))
        # The agent listens through the turn, then answers for ResponseConfig.response_seconds.
        assert frames == pytest.approx(candidate.duration_seconds * 24, abs=1)
        assert candidate.duration_seconds > 4.0
        with default_storage.open(candidate.tokens.name) as handle:
            rollout = rollout_from_bytes(handle.read())
        assert rollout.params.seed == candidate.seed
        assert rollout.params.audio_temperature == candidate.variant.audio_temperature
        assert rollout.visual_tokens.shape[0] == frames
        assert rollout.audio_log_probs.shape == rollout.audio_tokens.shape
        assert (rollout.audio_log_probs <= 0).all()
    # The two variants sampled different responses to the same turn.
    first, second = (default_storage.open(c.tokens.name).read() for c in candidates)
    assert first != second


def test_a_worker_killed_mid_sampling_is_replaced_and_the_candidate_completes(redis_worker_env, start_worker):
    clip = turn_clip("This is a longer turn, so that the worker is still sampling when it is killed. "
                     "One, two, three, four, five, six, seven, eight.")
    candidate = make_candidates(clip)[0]
    first = start_worker(redis_worker_env, queues="sampling")
    redis_client().send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk=candidate.pk, status="running", progress__gt=0).exists(),
             timeout=240, worker=first)
    os.killpg(first.process.pid, signal.SIGKILL)  # the whole worker, main process and pool child
    first.process.wait()
    candidate.refresh_from_db()
    assert candidate.status == "running" and candidate.attempts == 1

    second = start_worker(redis_worker_env, queues="sampling")
    wait_for(lambda: Candidate.objects.filter(pk=candidate.pk, status__in=["ready", "failed"]).exists(),
             timeout=300, worker=second)
    candidate.refresh_from_db()
    assert candidate.status == "ready", candidate.error
    assert candidate.attempts == 2
    assert candidate.worker == second.nodename
    assert default_storage.exists(candidate.media.name)


def test_corrupt_media_fails_the_candidate_with_a_readable_error(redis_worker_env, start_worker):
    clip = turn_clip()
    candidate = make_candidates(clip[: len(clip) // 3])[0]  # truncated: the moov atom is gone
    worker = start_worker(redis_worker_env, queues="sampling")
    redis_client().send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk=candidate.pk, status="failed").exists(), timeout=180, worker=worker)
    candidate.refresh_from_db()
    assert candidate.error.startswith("The agent could not answer this turn:")
    assert candidate.attempts == 1
    assert not candidate.media


def test_abandoned_running_candidates_are_requeued_when_a_worker_starts(worker_env, shared_media, start_worker, tmp_path):
    """The filesystem broker has no redelivery: a starting worker picks up what a dead one left."""
    candidate = make_candidates(turn_clip("Short turn."))[0]
    Candidate.objects.filter(pk=candidate.pk).update(
        status="running", attempts=1, heartbeat_at=timezone.now() - timedelta(minutes=10))
    worker_env.update(HER_MEDIA_ROOT=str(shared_media))
    worker_env.pop("CELERY_BROKER_URL", None)
    worker_env.pop("CELERY_RESULT_BACKEND", None)
    worker = start_worker(worker_env)
    wait_for(lambda: Candidate.objects.filter(pk=candidate.pk, status__in=["ready", "failed"]).exists(),
             timeout=300, worker=worker)
    candidate.refresh_from_db()
    assert candidate.status == "ready", candidate.error
    assert candidate.attempts == 2
