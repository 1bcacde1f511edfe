"""A liveness probe: proves that a message crossed the broker and ran in a worker process."""

import os

from workers.celery import app


@app.task(name="workers.health.ping", bind=True)
def ping(self, token: str) -> dict:
    """Echo ``token`` with the node name and pid of the worker that ran it."""
    return {"token": token, "worker": self.request.hostname, "pid": os.getpid()}
