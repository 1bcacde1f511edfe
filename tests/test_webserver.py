"""The site's web servers as ``serve`` and the load benchmark start them (``labeling_app.webserver``)."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from labeling_app.webserver import PortInUse, start_web_servers
from tests.conftest import REPO_ROOT, embedded_env, free_port


def connections_by_pid(port: int) -> dict[int, int]:
    """Established connections on the server side of ``port``, counted by owning process."""
    out = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                         capture_output=True, text=True, check=True).stdout
    counts: dict[int, int] = {}
    for line in out.splitlines():
        for owner in line.split("pid=")[1:]:
            pid = int(owner.split(",")[0])
            counts[pid] = counts.get(pid, 0) + 1
    return counts


def get_healthz(port: int, deadline: float) -> http.client.HTTPConnection:
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            assert response.status == 200
            response.read()
            return connection
        except OSError:
            assert time.monotonic() < deadline, "the web servers did not start"
            time.sleep(0.3)


@pytest.mark.slow
def test_one_port_served_by_every_process_with_keep_alive(tmp_path):
    port = free_port()
    servers = start_web_servers("127.0.0.1", port, 2, access_log=False,
                                env=embedded_env(HER_VAR_DIR=str(tmp_path / "var")),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        connections = [get_healthz(port, deadline) for _ in range(24)]
        for connection in connections:  # a second request on each connection, kept alive
            connection.request("GET", "/healthz")
            assert connection.getresponse().status == 200
        by_pid = connections_by_pid(port)
        assert sum(by_pid.values()) == 24
        # The kernel spread the connections over both processes (all 24 on one: odds 1 in 8 million).
        assert len(by_pid) == 2, by_pid
        for connection in connections:
            connection.close()
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)


def test_a_port_in_use_is_refused_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is already in use"):
            start_web_servers("127.0.0.1", port, 2, env=embedded_env(HER_VAR_DIR=str(tmp_path / "var")))


def test_a_thread_count_below_one_is_refused_with_its_name(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "--config", "python:labeling_app.gunicorn_conf",
         "labeling_app.wsgi:application"],
        cwd=REPO_ROOT, env=embedded_env(HER_VAR_DIR=str(tmp_path / "var"), HER_WEB_THREADS="0"),
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert "HER_WEB_THREADS=0" in result.stdout + result.stderr
