"""The sampling worker, as a real process on a real broker: it answers a recorded turn with an
MP4 and a rollout, survives being killed mid-task, and fails bad media with a readable error."""

import os
import signal
from datetime import timedelta

import av
import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from labeling_app.models import Candidate
from model.rollout_store import rollout_from_bytes
from tests.workers.conftest import (
    FAST_LIFECYCLE,
    SAMPLE_TASK,
    finished,
    make_candidates,
    redis_client,
    turn_clip,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_samples_both_candidates_of_a_round(redis_worker_env, start_worker):
    candidates = make_candidates(turn_clip())
    worker = start_worker(redis_worker_env, queues="sampling")
    client = redis_client()
    for candidate in candidates:
        client.send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk__in=[c.pk for c in candidates], status__in=["ready", "failed"]).count() == 2,
             300, worker)

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
             240, first)
    os.killpg(first.process.pid, signal.SIGKILL)  # the whole worker, main process and pool child
    first.process.wait()
    candidate.refresh_from_db()
    assert candidate.status == "running" and candidate.attempts == 1

    second = start_worker(redis_worker_env, queues="sampling")
    wait_for(lambda: finished(candidate),
             300, second)
    candidate.refresh_from_db()
    assert candidate.status == "ready", candidate.error
    assert candidate.attempts == 2
    assert candidate.worker == second.nodename
    assert default_storage.exists(candidate.media.name)
    assert candidate.media.name.startswith(f"candidates/{candidate.public_id}/2/")


def test_corrupt_media_fails_the_candidate_with_a_readable_error(redis_worker_env, start_worker):
    clip = turn_clip()
    candidate = make_candidates(clip[: len(clip) // 3])[0]  # truncated: the moov atom is gone
    worker = start_worker(redis_worker_env, queues="sampling")
    redis_client().send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk=candidate.pk, status="failed").exists(), 180, worker)
    candidate.refresh_from_db()
    assert candidate.error.startswith("The agent could not answer this turn:")
    assert candidate.attempts == 1
    assert not candidate.media


def test_abandoned_running_candidates_are_requeued_by_the_sweeper_on_the_filesystem_broker(
    worker_env, shared_media, start_worker
):
    """The filesystem broker has no redelivery: the sweeper of a live worker picks up what a
    dead one left (its heartbeat is stale), as on every broker."""
    candidate = make_candidates(turn_clip("Short turn."))[0]
    Candidate.objects.filter(pk=candidate.pk).update(
        status="running", attempts=1, heartbeat_at=timezone.now() - timedelta(minutes=10))
    worker_env.update(HER_MEDIA_ROOT=str(shared_media), **FAST_LIFECYCLE)
    worker_env.pop("CELERY_BROKER_URL", None)
    worker_env.pop("CELERY_RESULT_BACKEND", None)
    worker = start_worker(worker_env)
    wait_for(lambda: finished(candidate),
             300, worker)
    candidate.refresh_from_db()
    assert candidate.status == "ready", candidate.error
    assert candidate.attempts == 2
