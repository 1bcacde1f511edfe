"""Each worker's own timer: recover rows whose message was lost or whose worker died.

A worker bootstep. On start it queues again what a previous process under the same node
name left running (that process is dead: this one has its name now). Then every
``HER_SWEEP_SECONDS`` it runs ``labeling_app.lifecycle.sweep``: queued rows whose message may
have been lost are sent again, running rows whose heartbeat is stale are queued again (or
failed when out of attempts). Every broker gets the same recovery; with Redis, redelivery
after the visibility timeout comes on top and costs only a no-op claim. Several workers
sweeping at once is harmless: each row is taken by one sweeper (``SKIP LOCKED``) and every
transition is conditional.
"""

from __future__ import annotations

import logging

from celery import bootsteps
from django.conf import settings
from django.db import connection

from labeling_app import lifecycle

logger = logging.getLogger(__name__)


class Sweeper(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs):
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def start(self, worker) -> None:
        self._guarded(self._requeue_own, worker.hostname)
        self.timer_entry = worker.timer.call_repeatedly(settings.HER_SWEEP_SECONDS, self._guarded,
                                                        (self._sweep,), priority=10)

    def stop(self, worker) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()

    @staticmethod
    def _requeue_own(hostname: str) -> None:
        for kind in lifecycle.LIFECYCLES:
            ids = lifecycle.requeue_worker(kind, hostname)
            if ids:
                logger.warning("%s left running by this node's previous process, queued again or failed: %s",
                               kind.model.__name__, ids)

    @staticmethod
    def _sweep() -> None:
        for what, ids in lifecycle.sweep().items():
            logger.warning("sweeper: %s: %s", what, ids)

    @staticmethod
    def _guarded(function, *args) -> None:
        try:
            function(*args)
        except Exception:  # the database or broker is away: the next sweep tries again
            logger.warning("sweep failed", exc_info=True)
        finally:
            # No connection stays open in the worker's main process between sweeps: pool
            # children forked later must not inherit it.
            connection.close()
