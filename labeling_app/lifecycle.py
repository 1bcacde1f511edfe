"""One lifecycle for the work workers do on rows: candidates (sampling) and training jobs.

::

    queued --claim--> running --complete--> done (candidate: ready, job: succeeded)
      ^                |  |  \\--fail------> failed     (permanent error, or the last attempt)
      |                |  \\--cancel-------> cancelled  (jobs: an engineer asked)
      +----requeue-----+   a transient error, a stale heartbeat, a known-dead worker

Every transition is one conditional ``UPDATE ... WHERE`` on the expected status, and every
transition out of ``running`` also on the attempt number that ``claim`` handed out. So a
message delivered twice, a worker that was paused and wakes up late, and two workers racing
on one row can never finish a row twice, overwrite a finished one, or act for an attempt that
was superseded. A finished row (done, failed, cancelled) is never changed again.

Nothing waits forever: ``sweep`` (run every few seconds by each worker, see
``workers.sweeper``) sends again the message of a queued row that has waited too long (the
broker may have been down when the site committed it; later resends back off, see
``_resend``), and queues again a running row whose
heartbeat stopped (its worker died, was killed by the hard time limit or is paused). A row is
attempted at most ``max_attempts`` times; after that it fails with a readable error.

This module has no torch and no Celery worker in it: the site (cancel, queue) and the workers
(claim, heartbeat, complete) share it. The API for a worker task::

    attempt = claim(JOBS, job_id, worker=self.request.hostname)
    if attempt is None:
        return                      # finished, cancelled, or another worker holds it
    with Heartbeat(attempt) as heartbeat:   # beats from a thread through every stage
        ...                         # set heartbeat.progress; stop when heartbeat.stop_requested
    complete(attempt, output_dir=...)   # False: superseded, so discard what this attempt made
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling_app.models import Candidate, TrainingJob
from labeling_app.queue import send_task_on_commit

logger = logging.getLogger(__name__)

QUEUED, RUNNING, FAILED, CANCELLED = "queued", "running", "failed", "cancelled"
# Resends of a queued row's message back off (doubling) up to this many times ``resend_after``.
RESEND_BACKOFF_LIMIT = 8


@dataclass(frozen=True)
class Lifecycle:
    """How one model's rows move through the lifecycle (the statuses are the same strings)."""

    model: type[models.Model]
    task: str  # the Celery task that works on a row, by name; it takes the row id only
    done: str  # the status of a successful row
    created_field: str  # when the row was first queued (its first message was sent on commit)
    max_attempts: int
    stale_after: timedelta  # a running row whose heartbeat is older belongs to a dead worker
    resend_after: timedelta  # a queued row older than this may have lost its message
    can_cancel: bool

    @property
    def resend_max(self) -> timedelta:
        """The longest wait between two resends of one row's message (the backoff's bound)."""
        return self.resend_after * RESEND_BACKOFF_LIMIT

    @property
    def finished(self) -> tuple[str, ...]:
        return (self.done, FAILED, CANCELLED) if self.can_cancel else (self.done, FAILED)


CANDIDATES = Lifecycle(
    model=Candidate,
    task="workers.sampling.sample_candidate",
    done=Candidate.Status.READY,
    created_field="queued_at",
    max_attempts=settings.HER_SAMPLING_MAX_ATTEMPTS,
    stale_after=timedelta(seconds=settings.HER_CANDIDATE_STALE_SECONDS),
    resend_after=timedelta(seconds=settings.HER_RESEND_SECONDS),
    can_cancel=False,
)
JOBS = Lifecycle(
    model=TrainingJob,
    task="workers.jobs.run_training_job",
    done=TrainingJob.Status.SUCCEEDED,
    created_field="created_at",
    max_attempts=settings.HER_JOB_MAX_ATTEMPTS,
    stale_after=timedelta(seconds=settings.HER_JOB_STALE_SECONDS),
    resend_after=timedelta(seconds=settings.HER_RESEND_SECONDS),
    can_cancel=True,
)
LIFECYCLES = (CANDIDATES, JOBS)


@dataclass(frozen=True)
class Attempt:
    """One claim of one row: only this attempt may beat, complete, fail or requeue the row."""

    lifecycle: Lifecycle
    pk: int
    number: int  # the row's ``attempts`` after the claim: 1 for the first
    worker: str

    @property
    def is_last(self) -> bool:
        return self.number >= self.lifecycle.max_attempts

    def rows(self) -> models.QuerySet:
        """The row, as long as this attempt still holds it."""
        return self.lifecycle.model.objects.filter(pk=self.pk, status=RUNNING, attempts=self.number)


def claim(lifecycle: Lifecycle, pk: int, worker: str) -> Attempt | None:
    """Start a new attempt on a queued row (or a running one whose heartbeat is stale).

    Returns None when there is nothing to do: the row is gone or finished, another worker
    holds it with a fresh heartbeat (a duplicate message), or its attempts are used up (it is
    failed then, with the reason).
    """
    now = timezone.now()
    manager = lifecycle.model.objects
    with transaction.atomic():
        row = manager.select_for_update().filter(pk=pk).values("status", "attempts", "heartbeat_at").first()
        if row is None or row["status"] in lifecycle.finished:
            return None
        if row["status"] == RUNNING and row["heartbeat_at"] and row["heartbeat_at"] > now - lifecycle.stale_after:
            return None
        if row["attempts"] >= lifecycle.max_attempts:
            _fail_exhausted(lifecycle, pk, row["attempts"], now)
            return None
        number = row["attempts"] + 1
        manager.filter(pk=pk).update(status=RUNNING, attempts=number, worker=worker[:200], progress=0.0,
                                     error="", started_at=now, heartbeat_at=now)
    return Attempt(lifecycle, pk, number, worker[:200])


def beat(attempt: Attempt, progress: float | None = None) -> bool:
    """Refresh the heartbeat (and progress, 0..1); False when the attempt no longer holds the row."""
    values: dict = {"heartbeat_at": timezone.now()}
    if progress is not None:
        values["progress"] = min(max(progress, 0.0), 0.999)
    return bool(attempt.rows().update(**values))


def complete(attempt: Attempt, **fields) -> bool:
    """Finish the row successfully with ``fields`` (its results); False if superseded.

    On False nothing was written: the caller deletes whatever this attempt produced.
    """
    now = timezone.now()
    return bool(attempt.rows().update(status=attempt.lifecycle.done, progress=1.0, finished_at=now,
                                      heartbeat_at=now, **fields))


def fail(attempt: Attempt, error: str) -> bool:
    """Fail the row for good with a readable ``error``; False if superseded."""
    return bool(attempt.rows().update(status=FAILED, error=error[:2000], finished_at=timezone.now()))


def cancel(attempt: Attempt, message: str = "Cancelled by request.") -> bool:
    """End a running row as cancelled (the worker stopped because cancel was requested)."""
    assert attempt.lifecycle.can_cancel
    return bool(attempt.rows().update(status=CANCELLED, error=message[:2000], finished_at=timezone.now()))


def retry_or_fail(attempt: Attempt, error: str, countdown: float) -> str:
    """After an error that may not recur: queue the row again in ``countdown`` s, or fail it
    with ``error`` when this was its last attempt. Returns the new status ("" if superseded)."""
    if attempt.is_last:
        message = f"{error} (gave up after {attempt.number} attempts)"
        return FAILED if fail(attempt, message) else ""
    with transaction.atomic():
        # ``sent_at`` is when the message is due: the sweeper's resend counts from there, so it
        # never cuts a backoff short.
        due = timezone.now() + timedelta(seconds=countdown)
        if not attempt.rows().update(status=QUEUED, error=error[:2000], sent_at=due):
            return ""
        _send(attempt.lifecycle, attempt.pk, countdown)
    return QUEUED


def request_cancel(lifecycle: Lifecycle, pk: int) -> str:
    """Cancel a queued row at once, or ask the worker of a running one to stop.

    Returns the row's status afterwards (a finished row is left as it is).
    """
    assert lifecycle.can_cancel
    manager = lifecycle.model.objects
    if manager.filter(pk=pk, status=QUEUED).update(status=CANCELLED, error="Cancelled before it started.",
                                                   finished_at=timezone.now()):
        return CANCELLED
    manager.filter(pk=pk, status=RUNNING).update(cancel_requested=True)
    return manager.values_list("status", flat=True).get(pk=pk)


def requeue_worker(lifecycle: Lifecycle, worker: str) -> list[int]:
    """Queue again (or fail, when out of attempts) every row running on ``worker``, which is
    known to be dead (its supervisor saw it exit, or it is starting again under its name)."""
    return _requeue(lifecycle, models.Q(worker=worker))


def sweep(now=None) -> dict[str, list[int]]:
    """Recover what may be stuck, for every lifecycle; returns the row ids acted on by kind."""
    now = now or timezone.now()
    acted: dict[str, list[int]] = {}
    for lifecycle in LIFECYCLES:
        name = lifecycle.model.__name__
        stale = _requeue(lifecycle, models.Q(heartbeat_at__lt=now - lifecycle.stale_after)
                         | models.Q(heartbeat_at__isnull=True))
        resent = _resend(lifecycle, now)
        if stale:
            acted[f"{name} requeued (stale)"] = stale
        if resent:
            acted[f"{name} sent again"] = resent
    return acted


def _requeue(lifecycle: Lifecycle, which: models.Q) -> list[int]:
    now = timezone.now()
    manager = lifecycle.model.objects
    with transaction.atomic():
        rows = list(manager.select_for_update(skip_locked=True).filter(which, status=RUNNING)
                    .values_list("pk", "attempts"))
        requeued = [pk for pk, attempts in rows if attempts < lifecycle.max_attempts]
        for pk, attempts in rows:
            if attempts >= lifecycle.max_attempts:
                _fail_exhausted(lifecycle, pk, attempts, now)
        manager.filter(pk__in=requeued).update(status=QUEUED, sent_at=now)
        for pk in requeued:
            _send(lifecycle, pk)
    return [pk for pk, _ in rows]


def _resend(lifecycle: Lifecycle, now) -> list[int]:
    """Send again the message of each queued row whose last message may have been lost.

    The first resend comes ``resend_after`` after the last message; each later one waits as long
    as the row had already been queued when its message was last sent, so the spacing doubles, up
    to ``resend_max``. A broker that is down for an hour gets a handful of messages per row instead
    of one per sweep, and a long but healthy queue is not filled with duplicates. A message that
    was not lost after all only costs a no-op claim.
    """
    manager = lifecycle.model.objects
    last_sent = Coalesce("sent_at", lifecycle.created_field)
    with transaction.atomic():
        rows = (manager.select_for_update(skip_locked=True)
                .annotate(last_sent=last_sent)
                .filter(status=QUEUED, last_sent__lt=now - lifecycle.resend_after)
                .values_list("pk", "last_sent", lifecycle.created_field, "heartbeat_at"))
        pks = [pk for pk, sent, created, heartbeat in rows
               if now - sent >= _resend_wait(lifecycle, sent, queued_since=max(created, heartbeat or created))]
        manager.filter(pk__in=pks).update(sent_at=now)
        for pk in pks:
            _send(lifecycle, pk)
    return pks


def _resend_wait(lifecycle: Lifecycle, last_sent, queued_since) -> timedelta:
    """How long after ``last_sent`` a row's message is sent again. ``queued_since``: when it was
    created, or when its last attempt stopped beating (it was queued again then)."""
    return min(lifecycle.resend_max, max(lifecycle.resend_after, last_sent - queued_since))


def _fail_exhausted(lifecycle: Lifecycle, pk: int, attempts: int, now) -> None:
    error = (f"Stopped after {attempts} attempts: each time, the worker died or stopped responding "
             "before it finished (killed, out of memory, or past the time limit).")
    lifecycle.model.objects.filter(pk=pk, status__in=(QUEUED, RUNNING)).update(
        status=FAILED, error=error, finished_at=now)
    logger.warning("%s %s failed: %s", lifecycle.model.__name__, pk, error)


def _send(lifecycle: Lifecycle, pk: int, countdown: float = 0) -> None:
    options = {"countdown": countdown} if countdown else {}
    send_task_on_commit(lifecycle.task, pk, **options)


class Heartbeat:
    """Beats for an attempt from a background thread while the work runs, through every stage.

    The work sets ``progress`` (0..1) whenever it likes; the thread writes it with each beat
    (every ``HER_HEARTBEAT_SECONDS``). ``superseded`` turns true when the attempt lost the row
    (a sweeper requeued it, another worker took it over); ``stop_requested`` also when an
    engineer asked to cancel a job. The work should stop then; ``check()`` raises ``Superseded``.
    """

    def __init__(self, attempt: Attempt, interval: float | None = None):
        self.attempt = attempt
        self.interval = interval if interval is not None else settings.HER_HEARTBEAT_SECONDS
        self.progress: float | None = None
        self.superseded = False
        self.cancel_requested = False
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{attempt.pk}", daemon=True)

    @property
    def stop_requested(self) -> bool:
        return self.superseded or self.cancel_requested

    def check(self) -> None:
        if self.superseded:
            raise Superseded(f"attempt {self.attempt.number} of {self.attempt.lifecycle.model.__name__} "
                             f"{self.attempt.pk} was superseded")

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join(timeout=self.interval + 30)

    def _run(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    self._beat_once()
                except Exception:  # a database hiccup: the next beat tries again
                    logger.warning("heartbeat of %s failed", self.attempt, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection

    def _beat_once(self) -> None:
        if not beat(self.attempt, self.progress):
            self.superseded = True
            self._stopped.set()
        elif self.attempt.lifecycle.can_cancel:
            self.cancel_requested = self.attempt.rows().filter(cancel_requested=True).exists()


class Superseded(Exception):
    """The attempt no longer holds its row; whatever it made must be discarded."""

