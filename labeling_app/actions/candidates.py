"""Candidate status transitions, called by the sampling workers.

queued -> running -> ready | failed. Every transition is a conditional update, so a task that is
delivered twice (a worker died, the broker redelivered) can neither finish a candidate twice nor
overwrite a finished one. A running candidate whose heartbeat stopped is queued again.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from labeling_app.actions.assignments import extend_lock_after_sampling
from labeling_app.models import Candidate
from labeling_app.queue import send_task_on_commit

SAMPLE_TASK = "workers.sampling.sample_candidate"


def do_claim_candidate(candidate_id: int, worker: str) -> Candidate | None:
    """Mark the candidate running on ``worker`` and return it with its round, scenario and variant.

    Returns None when the row is gone or already ready/failed: the task then has nothing to do.
    A candidate that is already running is claimed again: its message was delivered again
    because the worker that held it died (late acknowledgement).
    """
    with transaction.atomic():
        candidate = (
            Candidate.objects.select_for_update(of=("self",))
            .select_related("round__scenario", "variant")
            .filter(pk=candidate_id)
            .first()
        )
        if candidate is None or candidate.status in (Candidate.Status.READY, Candidate.Status.FAILED):
            return None
        now = timezone.now()
        candidate.status = Candidate.Status.RUNNING
        candidate.attempts += 1
        candidate.worker = worker[:200]
        candidate.progress = 0.0
        candidate.error = ""
        candidate.started_at = now
        candidate.heartbeat_at = now
        candidate.save(update_fields=["status", "attempts", "worker", "progress", "error",
                                      "started_at", "heartbeat_at"])
    return candidate


def do_report_progress(candidate_id: int, progress: float) -> None:
    """Record progress (0..1) and refresh the heartbeat of a running candidate."""
    Candidate.objects.filter(pk=candidate_id, status=Candidate.Status.RUNNING).update(
        progress=min(max(progress, 0.0), 1.0), heartbeat_at=timezone.now()
    )


def do_complete_candidate(
    candidate_id: int,
    *,
    attempt: int,
    media_name: str,
    tokens_name: str,
    duration_seconds: float,
    sample_seconds: float,
    render_seconds: float,
) -> bool:
    """Mark a running candidate ready with its stored artifacts; False if it was not running.

    Only the ``attempt`` that holds the row completes it: a superseded attempt changes nothing.
    """
    updated = Candidate.objects.filter(pk=candidate_id, status=Candidate.Status.RUNNING,
                                       attempts=attempt).update(
        status=Candidate.Status.READY,
        progress=1.0,
        media=media_name,
        tokens=tokens_name,
        duration_seconds=duration_seconds,
        sample_seconds=sample_seconds,
        render_seconds=render_seconds,
        finished_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    if updated:
        extend_lock_after_sampling(Candidate.objects.values_list("round_id", flat=True).get(pk=candidate_id))
    return bool(updated)


def do_fail_candidate(candidate_id: int, error: str) -> None:
    """Record a permanent failure with a message an annotator can read."""
    updated = Candidate.objects.filter(pk=candidate_id).exclude(status=Candidate.Status.READY).update(
        status=Candidate.Status.FAILED, error=error[:2000], finished_at=timezone.now()
    )
    if updated:
        extend_lock_after_sampling(Candidate.objects.values_list("round_id", flat=True).get(pk=candidate_id))


def do_requeue_stale_candidates(stale_after: timedelta) -> list[int]:
    """Queue again every running candidate whose heartbeat is older than ``stale_after``.

    This is the recovery path for brokers without redelivery (kombu's filesystem transport):
    a worker calls it when it starts.
    """
    cutoff = timezone.now() - stale_after
    with transaction.atomic():
        ids = list(
            Candidate.objects.select_for_update()
            .filter(status=Candidate.Status.RUNNING, heartbeat_at__lt=cutoff)
            .values_list("pk", flat=True)
        )
        Candidate.objects.filter(pk__in=ids).update(status=Candidate.Status.QUEUED)
        for candidate_id in ids:
            send_task_on_commit(SAMPLE_TASK, candidate_id)
    return ids
