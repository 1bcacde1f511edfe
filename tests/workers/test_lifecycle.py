"""The lifecycle's transitions on the database (no worker process): conditional per attempt,
capped, recovered by the sweep, and the same for training jobs."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import numpy as np
import pytest
import torch
from django.core.files.storage import default_storage
from django.utils import timezone

from labeling_app import lifecycle
from labeling_app.actions.candidates import do_claim_candidate, do_complete_candidate
from labeling_app.lifecycle import CANDIDATES, JOBS
from labeling_app.models import Candidate, TrainingJob
from model.agent import Rollout, SamplingParams
from model.respond import AgentResponse
from tests.workers.conftest import make_candidates
from workers.sampling import StoredFiles

pytestmark = pytest.mark.django_db


def age(model, pk, **fields_ago) -> None:
    """Move timestamps of a row into the past: ``heartbeat_at=60`` means a minute ago."""
    model.objects.filter(pk=pk).update(**{f: timezone.now() - timedelta(seconds=s) for f, s in fields_ago.items()})


@pytest.fixture
def candidate(db) -> Candidate:
    return make_candidates(b"not decoded here")[0]


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, int]]:
    """The task messages the lifecycle sends (on commit), as (task, row id)."""
    messages: list[tuple[str, int]] = []
    monkeypatch.setattr(lifecycle, "send_task_on_commit", lambda name, pk, **options: messages.append((name, pk)))
    return messages


def test_a_running_candidate_with_a_live_heartbeat_is_not_taken_over(candidate):
    first = lifecycle.claim(CANDIDATES, candidate.pk, "w1")
    assert first.number == 1
    assert lifecycle.claim(CANDIDATES, candidate.pk, "w2") is None  # a duplicate message
    age(Candidate, candidate.pk, heartbeat_at=CANDIDATES.stale_after.total_seconds() + 1)
    second = lifecycle.claim(CANDIDATES, candidate.pk, "w2")
    assert second.number == 2
    # The first attempt lost the row: none of its transitions does anything any more.
    assert not lifecycle.beat(first, 0.5)
    assert not lifecycle.complete(first, media="x")
    assert not lifecycle.fail(first, "late")
    assert lifecycle.retry_or_fail(first, "late", 0) == ""
    row = Candidate.objects.get(pk=candidate.pk)
    assert (row.status, row.attempts, row.worker, row.media.name) == ("running", 2, "w2", "")


def test_a_finished_row_is_never_changed_again(candidate, sent):
    attempt = lifecycle.claim(CANDIDATES, candidate.pk, "w1")
    assert lifecycle.complete(attempt, media="candidates/x/1/response.mp4")
    age(Candidate, candidate.pk, heartbeat_at=3600, queued_at=3600)
    assert lifecycle.claim(CANDIDATES, candidate.pk, "w2") is None
    assert lifecycle.sweep() == {} and sent == []
    assert lifecycle.requeue_worker(CANDIDATES, "w1") == []
    row = Candidate.objects.get(pk=candidate.pk)
    assert (row.status, row.attempts, row.media.name) == ("ready", 1, "candidates/x/1/response.mp4")


def test_the_sweep_requeues_stale_rows_and_resends_old_queued_ones(candidate, sent):
    other = Candidate.objects.filter(round=candidate.round).exclude(pk=candidate.pk).get()
    lifecycle.claim(CANDIDATES, candidate.pk, "w1")
    assert lifecycle.sweep() == {}  # fresh heartbeat, fresh queued row
    age(Candidate, candidate.pk, heartbeat_at=CANDIDATES.stale_after.total_seconds() + 1)
    age(Candidate, other.pk, queued_at=CANDIDATES.resend_after.total_seconds() + 1)
    acted = lifecycle.sweep()
    assert acted == {"Candidate requeued (stale)": [candidate.pk], "Candidate sent again": [other.pk]}
    assert sorted(sent) == sorted([(CANDIDATES.task, candidate.pk), (CANDIDATES.task, other.pk)])
    assert Candidate.objects.get(pk=candidate.pk).status == "queued"
    # Each was just sent: the next sweep leaves both alone.
    assert lifecycle.sweep() == {}


def test_attempts_are_capped_and_the_row_fails_with_the_reason(candidate, sent):
    for number in range(1, CANDIDATES.max_attempts + 1):
        attempt = lifecycle.claim(CANDIDATES, candidate.pk, f"w{number}")
        assert attempt.number == number
        age(Candidate, candidate.pk, heartbeat_at=CANDIDATES.stale_after.total_seconds() + 1)
        lifecycle.sweep()  # the worker died: requeued while attempts are left, failed after the last
    row = Candidate.objects.get(pk=candidate.pk)
    assert row.status == "failed" and row.attempts == CANDIDATES.max_attempts
    assert row.error.startswith(f"Stopped after {CANDIDATES.max_attempts} attempts: each time, the worker died")
    assert len(sent) == CANDIDATES.max_attempts - 1


def test_an_error_is_retried_until_the_last_attempt_then_fails_with_it(candidate, sent):
    statuses = []
    for _ in range(CANDIDATES.max_attempts):
        attempt = lifecycle.claim(CANDIDATES, candidate.pk, "w")
        statuses.append(lifecycle.retry_or_fail(attempt, "Unexpected error: OSError: disk full", 1.0))
    assert statuses == ["queued"] * (CANDIDATES.max_attempts - 1) + ["failed"]
    row = Candidate.objects.get(pk=candidate.pk)
    assert row.error == f"Unexpected error: OSError: disk full (gave up after {CANDIDATES.max_attempts} attempts)"


def test_a_known_dead_worker_has_its_rows_queued_again_at_once(candidate, sent):
    lifecycle.claim(CANDIDATES, candidate.pk, "embedded@host")
    assert lifecycle.requeue_worker(CANDIDATES, "someone-else@host") == []
    assert lifecycle.requeue_worker(CANDIDATES, "embedded@host") == [candidate.pk]
    assert Candidate.objects.get(pk=candidate.pk).status == "queued"
    assert sent == [(CANDIDATES.task, candidate.pk)]


@pytest.mark.django_db(transaction=True)  # the heartbeat thread has its own connection
def test_a_heartbeat_thread_beats_and_notices_when_its_attempt_is_superseded(candidate):
    attempt = lifecycle.claim(CANDIDATES, candidate.pk, "w1")
    age(Candidate, candidate.pk, heartbeat_at=30)
    with lifecycle.Heartbeat(attempt, interval=0.05) as heartbeat:
        heartbeat.progress = 0.4
        deadline = time.monotonic() + 10
        while Candidate.objects.get(pk=candidate.pk).progress != 0.4:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert Candidate.objects.get(pk=candidate.pk).heartbeat_at > timezone.now() - timedelta(seconds=5)
        age(Candidate, candidate.pk, heartbeat_at=CANDIDATES.stale_after.total_seconds() + 1)
        lifecycle.claim(CANDIDATES, candidate.pk, "w2")  # another worker took the row over
        while not heartbeat.superseded:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(lifecycle.Superseded):
            heartbeat.check()


def tiny_response(frames: int = 12) -> AgentResponse:
    """A response as the sampler returns it, small enough to store in milliseconds."""
    required = [f.name for f in dataclasses.fields(Rollout)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    rollout = Rollout(**{name: torch.zeros(2, frames) for name in required if name != "params"},
                      params=SamplingParams(seed=1))
    return AgentResponse(rollout=rollout, frames=np.zeros((frames, 64, 64, 3), np.uint8),
                         audio=np.zeros(frames * 1000, np.float32), sample_rate=24_000, fps=24,
                         sample_seconds=0.1, render_seconds=0.1)


def test_a_late_attempt_never_deletes_the_ready_candidates_files(candidate, shared_media):
    """Attempt 1 stalls, attempt 2 completes; attempt 1 then stores and tries to complete."""
    late, _ = do_claim_candidate(candidate.pk, "paused-worker")
    age(Candidate, candidate.pk, heartbeat_at=CANDIDATES.stale_after.total_seconds() + 1)
    current, row = do_claim_candidate(candidate.pk, "live-worker")
    winner = StoredFiles.save(row, current, tiny_response())
    assert do_complete_candidate(current, **winner.fields(tiny_response()))

    loser = StoredFiles.save(row, late, tiny_response())
    assert loser.media_name != winner.media_name
    assert not do_complete_candidate(late, **loser.fields(tiny_response()))
    loser.delete()  # what the task does when its completion is refused
    row.refresh_from_db()
    assert (row.status, row.attempts, row.media.name, row.tokens.name) == (
        "ready", 2, winner.media_name, winner.tokens_name)
    stored = sorted(str(p.relative_to(shared_media)) for p in shared_media.rglob("*") if p.is_file()
                    and "candidates" in p.parts)
    assert stored == sorted([winner.media_name, winner.tokens_name])
    assert default_storage.size(winner.media_name) > 0


class TestTrainingJobs:
    """The same lifecycle for jobs, with cancellation (the API ``workers.jobs`` uses)."""

    @pytest.fixture
    def job(self) -> TrainingJob:
        return TrainingJob.objects.create(kind="reward", config={"epochs": 1})

    def test_a_job_runs_once_and_succeeds(self, job):
        attempt = lifecycle.claim(JOBS, job.pk, "gpu-1")
        assert lifecycle.claim(JOBS, job.pk, "gpu-2") is None
        assert lifecycle.complete(attempt, output_dir="jobs/1")
        job.refresh_from_db()
        assert (job.status, job.progress, job.output_dir, job.worker) == ("succeeded", 1.0, "jobs/1", "gpu-1")

    @pytest.mark.django_db(transaction=True)
    def test_cancelling_a_queued_job_ends_it_and_a_running_one_is_asked_to_stop(self, job):
        queued = TrainingJob.objects.create(kind="sft")
        assert lifecycle.request_cancel(JOBS, queued.pk) == "cancelled"
        assert lifecycle.claim(JOBS, queued.pk, "gpu-1") is None

        attempt = lifecycle.claim(JOBS, job.pk, "gpu-1")
        assert lifecycle.request_cancel(JOBS, job.pk) == "running"
        with lifecycle.Heartbeat(attempt, interval=0.05) as heartbeat:
            deadline = time.monotonic() + 10
            while not heartbeat.stop_requested:
                assert time.monotonic() < deadline
                time.sleep(0.02)
        assert not heartbeat.superseded
        assert lifecycle.cancel(attempt)
        job.refresh_from_db()
        assert job.status == "cancelled" and job.finished_at is not None

    def test_a_job_whose_worker_died_is_queued_again(self, job, sent):
        lifecycle.claim(JOBS, job.pk, "gpu-1")
        age(TrainingJob, job.pk, heartbeat_at=JOBS.stale_after.total_seconds() + 1)
        assert lifecycle.sweep() == {"TrainingJob requeued (stale)": [job.pk]}
        assert sent == [(JOBS.task, job.pk)]
        assert lifecycle.claim(JOBS, job.pk, "gpu-2").number == 2


def test_resending_a_lost_message_backs_off_up_to_a_bound(candidate, sent):
    """A queued row whose message is lost (the broker is down) is sent again after
    ``resend_after``, then at doubling spacing, never further apart than ``resend_max``."""
    Candidate.objects.filter(round=candidate.round).exclude(pk=candidate.pk).delete()
    start = Candidate.objects.get(pk=candidate.pk).queued_at
    step = CANDIDATES.resend_after / 8
    sends = []
    for tick in range(1, 8 * 60):
        now = start + tick * step
        if lifecycle.sweep(now=now):
            sends.append(now)
    gaps = [(b - a) / CANDIDATES.resend_after for a, b in zip([start, *sends], sends)]
    assert len(sent) == len(sends) and all(pk == candidate.pk for _, pk in sent)
    # About 1, 1, 2, 4, then the bound (8) each time; a sweep every step lands at most a step late.
    expected = [1, 1, 2, 4] + [CANDIDATES.resend_max / CANDIDATES.resend_after] * (len(gaps) - 4)
    assert gaps == pytest.approx(expected, abs=0.5), gaps
    assert len(gaps) >= 8


def test_the_sweep_never_cuts_a_retry_backoff_short(candidate, sent):
    Candidate.objects.filter(round=candidate.round).exclude(pk=candidate.pk).delete()
    attempt = lifecycle.claim(CANDIDATES, candidate.pk, "w1")
    countdown = 3 * CANDIDATES.resend_after.total_seconds()
    assert lifecycle.retry_or_fail(attempt, "Unexpected error: OSError: disk full", countdown) == "queued"
    sent.clear()
    now = timezone.now()
    assert lifecycle.sweep(now=now + timedelta(seconds=countdown)) == {}  # the message is only due now
    # Lost after all: sent again once it has been due for as long as it had waited, within the bound.
    resent = lifecycle.sweep(now=now + timedelta(seconds=countdown) + CANDIDATES.resend_max)
    assert resent == {"Candidate sent again": [candidate.pk]}
