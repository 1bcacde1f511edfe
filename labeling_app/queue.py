"""The site's only way to reach workers: send a task by name, after the transaction commits.

The site never imports ``workers`` (nor torch): it holds a Celery *client* configured from the
same Django settings the workers read, and names tasks as strings. Sending on commit means a
worker never looks for a row that is not visible yet, and a rolled-back request sends nothing.

A send that fails (the broker is down) is logged and not raised: the row is committed as
queued, and the workers' sweeper sends its message again later (``labeling_app.lifecycle``).
"""

from __future__ import annotations

import functools
import logging

from celery import Celery
from django.conf import settings
from django.db import transaction

logger = logging.getLogger(__name__)


@functools.cache
def _client_for(broker_url: str) -> Celery:
    client = Celery("labeling_app")
    client.config_from_object("django.conf:settings", namespace="CELERY")
    return client


def client() -> Celery:
    """The Celery client for the configured broker (one per broker URL, made on first use)."""
    return _client_for(settings.CELERY_BROKER_URL)


def send_task_now(name: str, *args, countdown: float | None = None) -> bool:
    """Send ``name(*args)``; False (logged) when the broker could not take it."""
    try:
        # No result is asked for: the rows carry every outcome. (Asking subscribes to the result
        # backend; with Redis, one outage leaves that subscription broken for the process's life,
        # and every later send would fail.)
        client().send_task(name, args=args, countdown=countdown, ignore_result=True)
    except Exception:  # the broker is unreachable or refused: the sweeper sends it again
        logger.warning("could not send %s%s; it will be sent again", name, args, exc_info=True)
        return False
    return True


def send_task_on_commit(name: str, *args, countdown: float | None = None) -> None:
    """Queue ``name(*args)`` once the current transaction commits (immediately outside one)."""
    transaction.on_commit(functools.partial(send_task_now, name, *args, countdown=countdown))
