"""Shared test helpers: real services, real worker processes.

Tests that need PostgreSQL, Redis, a browser or a worker call ``require_service``: on a
developer's machine a missing service skips the test with the reason; under CI (``CI=true``)
it fails, so a green CI run always means the real thing was exercised.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
UNDER_CI = os.environ.get("CI", "").lower() == "true"
# Worker and site processes the tests start run torch on one intra-op thread: one sampling stream
# is fastest on one thread (model.bench), and next to the test's other processes on a 2-core
# machine two threads spin-wait for each other (one candidate took 80 s instead of 6 s).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def require_service(name: str, available: bool, detail: str) -> None:
    """Skip (locally) or fail (under CI) when a service the test needs is missing."""
    if available:
        return
    message = f"{name} is not available: {detail}"
    if UNDER_CI:
        pytest.fail(message + " (CI=true: a missing service is a failure, not a skip)")
    pytest.skip(message)


def tcp_reachable(url: str, default_port: int) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def embedded_env(**extra: str) -> dict[str, str]:
    """This process's environment for a subprocess on the embedded defaults (SQLite, the
    filesystem broker, default web server settings), plus ``extra``."""
    deployment = {"DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"}
    env = {k: v for k, v in os.environ.items() if k not in deployment and not k.startswith(("DJANGO_", "HER_WEB_"))}
    return dict(env, **{**ONE_THREAD, **extra})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_for_subprocess() -> str:
    """The URL of the database the current test is using, for worker processes to share."""
    from django.db import connection

    config = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{config.get('HOST') or '127.0.0.1'}:{config.get('PORT') or 5432}/{config['NAME']}"


class WorkerProcess:
    """A real ``celery worker`` subprocess with its own unique node name and log file."""

    def __init__(self, env: dict[str, str], log_path: Path, queues: str = "sampling,jobs"):
        self.nodename = f"test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
        self.log_path = log_path
        # At the end of a test a sampling worker may be answering a candidate no check waits for
        # (a sweeper sent it again): a cold shutdown (SIGQUIT) ends it at once instead of letting
        # the warm one (SIGTERM) finish it. A worker that may run a training job shuts down warm,
        # so the job's ranks are stopped by the worker itself.
        self.stop_signal = signal.SIGTERM if "jobs" in queues.split(",") else signal.SIGQUIT
        self._log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "-Q", queues,
             "--concurrency", "1", "--hostname", self.nodename, "--loglevel", "INFO",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=REPO_ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


@pytest.fixture
def worker_env(tmp_path) -> dict[str, str]:
    """Environment for a worker process: this test's database and a private var dir."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url_for_subprocess(),
        HER_VAR_DIR=str(tmp_path / "var"),
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        **ONE_THREAD,
    )
    return env


@pytest.fixture
def start_worker(tmp_path):
    """Start real worker processes; every one started is stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], queues: str = "sampling,jobs") -> WorkerProcess:
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log", queues)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()
