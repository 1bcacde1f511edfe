"""The README's run command on the embedded defaults: the site answers and a separate worker
process executes a task sent through kombu's filesystem broker (no PostgreSQL, no Redis)."""

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from celery import Celery

from tests.conftest import REPO_ROOT, embedded_env, free_port


@pytest.mark.worker
@pytest.mark.slow
def test_serve_runs_site_and_worker_on_embedded_defaults(tmp_path):
    var = tmp_path / "var"
    port = free_port()
    env = embedded_env(HER_VAR_DIR=str(var), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(port), "--web-processes", "1"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            status = None
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and serve.poll() is None:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5) as response:
                        status = response.status
                        break
                except OSError:
                    time.sleep(0.5)
            assert status == 200, log_path.read_text()
            output = log_path.read_text()
            assert "Database: sqlite3 · broker: filesystem" in output
            assert re.search(r"annotator\s+annotator\s+password: annotator-demo", output), output
            assert (var / "db.sqlite3").exists()

            client = Celery("embedded-client", broker="filesystem://", backend=f"file://{var / 'results'}")
            queue = str(var / "broker" / "queue")
            client.conf.update(
                broker_transport_options={"data_folder_in": queue, "data_folder_out": queue,
                                          "control_folder": str(var / "broker" / "control")},
                task_serializer="json", accept_content=["json"], result_serializer="json",
                task_default_queue="jobs",
            )
            token = uuid.uuid4().hex
            reply = client.send_task("workers.health.ping", args=[token]).get(timeout=120, interval=0.2)
            assert reply["token"] == token
            assert reply["worker"].startswith("embedded@")
            assert reply["pid"] not in (os.getpid(), serve.pid)
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                raise
    assert serve.returncode == 0, log_path.read_text()
