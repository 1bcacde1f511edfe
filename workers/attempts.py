"""Running one attempt of a lifecycle row safely: heartbeats, and an end for every error.

``guarded(attempt, ...)`` wraps a task body. While the body runs, a heartbeat thread keeps the
row alive through every stage (decode, sampling, rendering, writing files); whatever the body
raises ends the attempt in a defined way, so no row is left running by a live worker:

- ``Superseded``: the attempt lost its row (a sweeper requeued it); nothing more is written.
- a *permanent* error (the caller names them: bad media, an invalid configuration): failed at
  once with a message a person can read.
- anything else (a torch ``RuntimeError``, out of memory, ``OSError``, the database gone, the
  soft time limit): queued again with backoff, failed with the error after the last attempt.

A worker that dies outright (killed, hard time limit) stops beating instead; the sweeper
(``workers.sweeper``) requeues or fails its row. ``workers.jobs`` uses this for training jobs.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from labeling_app import lifecycle
from labeling_app.lifecycle import Attempt, Heartbeat, Superseded

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def backoff(attempt: Attempt) -> float:
    """Seconds before the next attempt: doubling from ``HER_RETRY_BACKOFF_SECONDS``."""
    return min(settings.HER_RETRY_BACKOFF_SECONDS * 2 ** (attempt.number - 1), MAX_BACKOFF_SECONDS)


class guarded:
    """``with guarded(attempt, permanent=(...), describe=...) as heartbeat: ...`` (see module).

    ``describe(exc)`` writes the message for a permanent error. ``outcome`` says afterwards how
    the attempt ended when the body raised: "superseded", "failed" or "queued".
    ``fail`` and ``retry_or_fail`` default to ``labeling_app.lifecycle``'s; candidates pass
    their actions (which also give the annotator their lock back).
    """

    def __init__(self, attempt: Attempt, *, permanent: tuple[type[BaseException], ...] = (),
                 describe: Callable[[BaseException], str] = str,
                 fail: Callable[[Attempt, str], bool] = lifecycle.fail,
                 retry_or_fail: Callable[[Attempt, str, float], str] = lifecycle.retry_or_fail,
                 time_limit: float | None = None):
        self.attempt, self.permanent, self.describe = attempt, permanent, describe
        self._fail, self._retry_or_fail, self.time_limit = fail, retry_or_fail, time_limit
        self.heartbeat = Heartbeat(attempt)
        self.outcome = ""

    def __enter__(self) -> Heartbeat:
        return self.heartbeat.__enter__()

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.heartbeat.__exit__(exc_type, exc, tb)
        if exc is None or not isinstance(exc, Exception):
            return False
        name = f"{self.attempt.lifecycle.model.__name__} {self.attempt.pk} (attempt {self.attempt.number})"
        if isinstance(exc, Superseded) or self.heartbeat.superseded:
            logger.info("%s was superseded; it stops here", name)
            self.outcome = "superseded"
            return True
        if isinstance(exc, self.permanent):
            logger.warning("%s failed permanently: %s", name, exc)
            self._fail(self.attempt, self.describe(exc))
            self.outcome = lifecycle.FAILED
            return True
        if isinstance(exc, SoftTimeLimitExceeded):
            error = f"It took longer than the time limit ({self.time_limit:g} s)."
        else:
            error = f"Unexpected error: {type(exc).__name__}: {exc}{where(tb)}"
        logger.error("%s: %s", name, error, exc_info=(exc_type, exc, tb))
        self.outcome = self._retry_or_fail(self.attempt, error, backoff(self.attempt)) or "superseded"
        return True


def where(tb) -> str:
    """" (in path:line, function)" for the innermost frame of the project's own code, so the
    row's error says which step broke without a log at hand ("" when none is ours)."""
    ours = [frame for frame in traceback.extract_tb(tb)
            if "site-packages" not in frame.filename and Path(frame.filename).is_relative_to(PROJECT_ROOT)]
    if not ours:
        return ""
    frame = ours[-1]
    return f" (in {Path(frame.filename).relative_to(PROJECT_ROOT)}:{frame.lineno}, {frame.name})"
