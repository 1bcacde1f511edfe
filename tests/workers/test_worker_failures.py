"""Nothing waits forever, with real worker processes and a real broker: an error the code does
not expect, a message lost while the broker was down, a clip that gets its worker killed every
time, a task delivered twice, and an attempt that wakes up after another one finished."""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import av
import pytest
import redis
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling_app.actions.assignments import do_claim_next_assignment
from labeling_app.lifecycle import CANDIDATES
from labeling_app.models import AgentVariant, Campaign, Candidate, Scenario
from labeling_app.roles import ANNOTATOR, create_user_with_role
from model.zoo import DEFAULT_AGENT_DIR
from tests.conftest import free_port, require_service
from tests.workers.conftest import (
    FAST_LIFECYCLE,
    SAMPLE_TASK,
    finished,
    make_candidates,
    pool_children,
    redis_client,
    turn_clip,
    wait_for,
)

pytestmark = [pytest.mark.worker, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def one_candidate(clip: bytes) -> Candidate:
    """One queued candidate of a new round. Its sibling is deleted: no message was sent for it
    either, and a sweeper would send one and keep the test's single pool process busy."""
    candidate, sibling = make_candidates(clip)
    sibling.delete()
    return candidate


def stored_attempt_files(media: Path, candidate: Candidate) -> list[str]:
    """Every file stored for the candidate, relative to the media root."""
    return sorted(str(p.relative_to(media)) for p in (media / "candidates" / str(candidate.public_id)).rglob("*")
                  if p.is_file())


def playable(name: str) -> bool:
    with default_storage.open(name) as handle, av.open(handle) as container:
        return sum(1 for _ in container.decode(video=0)) > 0


def test_an_unexpected_error_is_retried_then_fails_the_candidate_with_its_message(
    redis_worker_env, start_worker, tmp_path
):
    """A variant whose checkpoint was cut short (a copy that did not finish): loading it raises
    safetensors' own error, not one the sampler knows as permanent. Every attempt fails the same
    way; after the last one the candidate is failed with the error, not left running."""
    checkpoint = tmp_path / "cut-short"
    shutil.copytree(DEFAULT_AGENT_DIR, checkpoint)
    weights = checkpoint / "model.safetensors"
    os.truncate(weights, weights.stat().st_size - 4096)
    candidate = one_candidate(turn_clip("Short turn."))
    AgentVariant.objects.filter(pk=candidate.variant_id).update(checkpoint=str(checkpoint))

    worker = start_worker(redis_worker_env, queues="sampling")
    redis_client().send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: finished(candidate), 180, worker)
    candidate.refresh_from_db()
    assert candidate.status == "failed"
    assert candidate.attempts == CANDIDATES.max_attempts
    assert candidate.error.startswith("Unexpected error: SafetensorError: Error while deserializing header")
    # Where it broke (the project's innermost frame) and that it was not given up at once.
    assert "(in model/agent/checkpoint.py:" in candidate.error
    assert candidate.error.endswith(f"(gave up after {CANDIDATES.max_attempts} attempts)")
    assert not candidate.media and not candidate.tokens
    # Each attempt before the last was queued again with backoff, by the worker itself.
    assert worker.log_text().count("Unexpected error: SafetensorError") == CANDIDATES.max_attempts


class RedisServer:
    """A ``redis-server`` of the test's own (no persistence), which the test stops and restarts
    on the same port: a broker that is down for a while, then back, empty."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        directory.mkdir()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                if redis.Redis.from_url(self.url, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start: {(self.directory / 'redis.log').read_text()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def private_redis(tmp_path):
    require_service("redis-server", shutil.which("redis-server") is not None, "the redis-server binary is not on PATH")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def test_a_round_committed_while_the_broker_was_down_is_sampled_once_it_is_back(
    worker_env, shared_media, start_worker, private_redis, settings, client, caplog
):
    """The site commits the round and both candidates, but the broker is down, so their messages
    are never sent. Once the broker is back, the worker's sweeper sends them again and both
    candidates are sampled."""
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = private_redis.url
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 8}
    worker_env.update(CELERY_BROKER_URL=private_redis.url, CELERY_RESULT_BACKEND=private_redis.url,
                      HER_MEDIA_ROOT=str(shared_media), CELERY_VISIBILITY_TIMEOUT="8", **FAST_LIFECYCLE)
    worker = start_worker(worker_env)
    ping = redis_client(private_redis.url).send_task("workers.health.ping", args=["up"], queue="jobs")
    assert ping.get(timeout=180)["worker"] == worker.nodename  # connected before the outage

    a = AgentVariant.objects.create(name="outage-a")
    b = AgentVariant.objects.create(name="outage-b", audio_temperature=0.7)
    campaign = Campaign.objects.create(name="outage", slug="outage", variant_a=a, variant_b=b, status="active")
    Scenario.objects.create(campaign=campaign, title="cup", instructions="Ask for the cup",
                            agent_prompt="pick up the cup", scene_objects=[])
    annotator = create_user_with_role("outage-annotator", "pw-outage-annotator", ANNOTATOR)
    assignment, _ = do_claim_next_assignment(annotator)
    client.force_login(annotator)

    private_redis.stop()
    with caplog.at_level(logging.WARNING, logger="labeling_app.queue"):
        upload = client.post(reverse("labeling:upload", args=[assignment.pk]),
                             {"media": SimpleUploadedFile("turn.mp4", turn_clip("Short turn.")), "source": "recorded"})
    assert upload.status_code == 201, upload.content  # the annotator's turn is kept
    candidates = list(Candidate.objects.filter(round__assignment=assignment))
    assert [c.status for c in candidates] == ["queued", "queued"]
    failed_sends = [r for r in caplog.records if r.getMessage().startswith(f"could not send {SAMPLE_TASK}")]
    assert len(failed_sends) == 2
    # Down for longer than a queued row waits before its message is sent again (the worker's
    # timer runs on its event loop, which waits for the broker meanwhile).
    time.sleep(float(FAST_LIFECYCLE["HER_RESEND_SECONDS"]) + 1)
    private_redis.start()  # back, and empty: both messages are gone for good
    wait_for(lambda: all(finished(c) for c in candidates), 300, worker)
    for candidate in candidates:
        candidate.refresh_from_db()
        assert candidate.status == "ready", candidate.error
        assert candidate.attempts == 1  # the message was lost, never an attempt
        assert playable(candidate.media.name)
    assert "sweeper: Candidate sent again" in worker.log_text()


def test_a_clip_that_kills_its_worker_every_time_fails_after_the_last_attempt(redis_worker_env, start_worker):
    """As the out-of-memory killer would: the pool process that takes the clip is killed, every
    time. The message is delivered again (late acknowledgement), the sweeper requeues the stale
    row, and after the last attempt the candidate fails instead of going round for ever."""
    candidate = one_candidate(turn_clip("Short turn."))
    stale_seconds = 6  # a little longer than the other tests': a loaded machine must not look dead
    redis_worker_env.update(HER_CANDIDATE_STALE_SECONDS=str(stale_seconds))
    worker = start_worker(redis_worker_env, queues="sampling")
    redis_client().send_task(SAMPLE_TASK, args=[candidate.pk])
    killed = []
    for number in range(1, CANDIDATES.max_attempts + 1):
        wait_for(lambda n=number: Candidate.objects.filter(pk=candidate.pk, status="running", attempts=n).exists(),
                 180, worker)
        (child,) = pool_children(worker.process.pid)  # concurrency 1: the process running the task
        os.kill(child, signal.SIGKILL)
        killed.append(child)
    wait_for(lambda: finished(candidate), 120, worker)
    candidate.refresh_from_db()
    assert candidate.status == "failed"
    assert candidate.attempts == CANDIDATES.max_attempts
    assert candidate.error.startswith(f"Stopped after {CANDIDATES.max_attempts} attempts: each time, the worker died")
    assert len(set(killed)) == CANDIDATES.max_attempts  # a fresh pool process each time
    # And it stays failed: several stale limits and sweeps later, no fourth attempt started.
    time.sleep(2 * stale_seconds + 2)
    candidate.refresh_from_db()
    assert (candidate.status, candidate.attempts) == ("failed", CANDIDATES.max_attempts)
    assert worker.process.poll() is None  # the worker itself lives on


def test_a_task_delivered_to_two_workers_is_sampled_once(redis_worker_env, start_worker, shared_media):
    """Both workers get the candidate's message at about the same time (each on a queue of its
    own): one claims it and samples, the other finds it held and does nothing."""
    candidate = one_candidate(turn_clip("Short turn."))
    # A loaded machine must not delay a heartbeat past the stale limit here: the takeover of a
    # stale row is the last test's subject, not this one's.
    redis_worker_env.update(HER_CANDIDATE_STALE_SECONDS="30")
    workers = [start_worker(redis_worker_env, queues=f"sampling,twice-{i}") for i in range(2)]
    client = redis_client()
    results = [client.send_task(SAMPLE_TASK, args=[candidate.pk], queue=f"twice-{i}") for i in range(2)]
    try:
        outcomes = sorted(result.get(timeout=600) for result in results)
    except Exception as exc:  # the workers' logs say why
        pytest.fail(f"{exc!r}; worker logs:\n" + "\n".join(w.log_text()[-5000:] for w in workers))
    # The sweepers may have sent the message again meanwhile, and Redis redelivers a message still
    # unacknowledged after its visibility timeout: whichever copy ran first did the work.
    assert set(outcomes) <= {"nothing to do", "ready"}
    # Each got a copy: its "received" and its outcome line (a worker logs the outcome just after the
    # result reaches the backend, so the line may lag the result by a moment).
    wait_for(lambda: all(w.log_text().count("sample_candidate[") >= 2 for w in workers), 30, *workers)
    candidate.refresh_from_db()
    assert (candidate.status, candidate.attempts) == ("ready", 1)
    assert stored_attempt_files(shared_media, candidate) == sorted([candidate.media.name, candidate.tokens.name])
    assert candidate.media.name.startswith(f"candidates/{candidate.public_id}/1/")
    assert playable(candidate.media.name)
    # One completion in all, counting any message the sweepers sent again meanwhile.
    completions = [line for w in workers for line in w.log_text().splitlines()
                   if re.search(r"sample_candidate\[[-0-9a-f]+\] succeeded in [0-9.]+s: 'ready'", line)]
    assert len(completions) == 1, completions


def test_an_attempt_that_wakes_up_after_another_finished_leaves_the_ready_files_alone(
    redis_worker_env, start_worker, shared_media
):
    """A worker is frozen mid-sampling (SIGSTOP: a paused VM, a swapped-out process). Its row goes
    stale, a second worker samples the candidate and completes it. When the first wakes up, it
    notices it lost the row and stops: the ready candidate's files stay, and the late attempt
    leaves no files of its own."""
    clip = turn_clip("This is a longer turn, so that the first worker is still sampling when it is frozen. "
                     "One, two, three, four, five, six.")
    candidate = one_candidate(clip)
    late = start_worker(redis_worker_env, queues="sampling")
    redis_client().send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk=candidate.pk, status="running", progress__gt=0.3).exists(),
             240, late)
    os.killpg(late.process.pid, signal.SIGSTOP)
    try:
        live = start_worker(redis_worker_env, queues="sampling")
        wait_for(lambda: finished(candidate), 300, live)
        candidate.refresh_from_db()
        assert (candidate.status, candidate.attempts, candidate.worker) == ("ready", 2, live.nodename)
        ready_files = sorted([candidate.media.name, candidate.tokens.name])
    finally:
        os.killpg(late.process.pid, signal.SIGCONT)
    wait_for(lambda: "'superseded'" in late.log_text(), 180, late)

    candidate.refresh_from_db()
    assert (candidate.status, candidate.attempts, candidate.worker) == ("ready", 2, live.nodename)
    assert sorted([candidate.media.name, candidate.tokens.name]) == ready_files
    assert stored_attempt_files(shared_media, candidate) == ready_files  # nothing under .../1/
    assert playable(candidate.media.name)
