"""The site's web servers as ``serve`` and the load benchmark start them (``labeling_app.webserver``)."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from labeling_app import supervisor
from labeling_app.webserver import PortInUse, ensure_port_free, start_web_servers
from tests.conftest import REPO_ROOT, embedded_env, free_port
from tests.labeling_app.conftest import make_clip
from tests.site_session import SiteSession, wait_until_answers


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


def test_a_port_left_in_time_wait_is_free_for_an_immediate_restart():
    """A site that just stopped leaves its connections in TIME_WAIT on the port; that is free."""
    with socket.socket() as listener:
        for option in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):  # as gunicorn opens its port
            listener.setsockopt(socket.SOL_SOCKET, option, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        accepted, _ = listener.accept()
        accepted.close()  # the server side closes first: its end of the connection waits in TIME_WAIT
        client.recv(1)
        client.close()
    states = subprocess.run(["ss", "-tanH", f"( sport = :{port} )"], capture_output=True, text=True).stdout
    assert "TIME-WAIT" in states, states
    with socket.socket() as plain:  # what the check did before: refused while nothing listens
        with pytest.raises(OSError):
            plain.bind(("127.0.0.1", port))
    ensure_port_free("127.0.0.1", port)


def test_a_child_that_dies_is_restarted_and_one_that_cannot_start_stops_the_supervisor(tmp_path, monkeypatch):
    monkeypatch.setattr(supervisor, "MIN_BACKOFF_SECONDS", 0.05)
    monkeypatch.setattr(supervisor, "QUICK_EXIT_SECONDS", 0.5)
    marker = tmp_path / "starts"
    # Runs 1 s, then exits: restarted each time; fails at once from the third start on.
    script = ("import pathlib, sys, time; p = pathlib.Path(sys.argv[1]); n = len(p.read_text()) if p.exists() else 0;"
              " p.write_text('x' * (n + 1)); time.sleep(1 if n < 2 else 0); sys.exit(3)")
    child = supervisor.Child("flaky", [sys.executable, "-c", script, str(marker)])
    lines: list[str] = []
    watcher = supervisor.Supervisor([child], lines.append)
    watcher.start()
    deadline = time.monotonic() + 60
    with pytest.raises(supervisor.ChildKeepsFailing, match="flaky exited 5 times in a row"):
        while time.monotonic() < deadline:
            watcher.poll()
            time.sleep(0.02)
    watcher.stop()
    assert len(marker.read_text()) == 2 + 5
    assert sum("exited with code 3" in line for line in lines) == 6
    assert sum("flaky started (pid" in line for line in lines) == 7


def started_pids(log_path, name: str) -> list[int]:
    return [int(pid) for pid in re.findall(rf"serve: {name} started \(pid (\d+)\)", log_path.read_text())]


@pytest.mark.worker
@pytest.mark.slow
def test_serve_restarts_a_killed_worker_and_web_process_and_a_round_started_before_completes(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = embedded_env(HER_VAR_DIR=str(tmp_path / "var"), HER_DEMO_USERS="1", HF_HUB_OFFLINE="1",
                       PYTHONUNBUFFERED="1")
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--web-processes", "1"],
                                 cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_answers(base, time.monotonic() + 180)
            session = SiteSession(base)
            session.log_in("annotator", "annotator-demo")
            item = session.post_form("/label/next/", {}, {"Accept": "application/json"}).json()["item"]
            uploaded = session.post_multipart(item["url"] + "upload/", {"source": "uploaded"},
                                              {"media": ("turn.webm", make_clip(seconds=1.0), "video/webm")},
                                              {"Accept": "application/json"})
            assert uploaded.status == 201, uploaded.body
            status_url = uploaded.json()["status_url"]
            # The worker is at work on the round when it dies.
            deadline = time.monotonic() + 180
            while session.get(status_url).json()["message"] != "The agent is responding…":
                assert time.monotonic() < deadline, log_path.read_text()[-3000:]
                time.sleep(0.2)
            [worker_pid], [web_pid] = started_pids(log_path, "worker"), started_pids(log_path, "web-1")
            os.kill(worker_pid, signal.SIGKILL)
            os.kill(web_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            # Until serve notices, the dead master's own worker may still answer: wait for the new one.
            while len(started_pids(log_path, "web-1")) < 2:
                assert time.monotonic() < killed_at + 30, log_path.read_text()[-3000:]
                time.sleep(0.1)
            answered_at = wait_until_answers(base, killed_at + 30)
            assert answered_at - killed_at < 30
            with pytest.raises(ProcessLookupError):  # nothing of the old web process is left
                os.kill(web_pid, 0)
            assert re.search(rf"serve: worker \(pid {worker_pid}\) exited with code -9", log_path.read_text())

            deadline = time.monotonic() + 600
            while not (state := session.get(status_url).json())["ready"]:
                assert not state["failed"] and time.monotonic() < deadline, (state, log_path.read_text()[-5000:])
                time.sleep(1)
            assert len(started_pids(log_path, "worker")) == 2
            # The new worker took the dead one's candidate at its start, not after a stale timeout.
            assert "left running by this node's previous process" in log_path.read_text()
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
                raise
    assert serve.returncode == 0, log_path.read_text()[-3000:]


def test_the_children_die_with_a_supervisor_that_was_killed(tmp_path):
    script = ("import sys, time; from labeling_app.supervisor import Child, Supervisor;"
              " s = Supervisor([Child('sleeper', [sys.executable, '-c', 'import time; time.sleep(120)'])], print);"
              " s.start(); sys.stdout.flush(); time.sleep(120)")
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    child_pid = int(re.search(r"sleeper started \(pid (\d+)\)", parent.stdout.readline()).group(1))
    os.kill(child_pid, 0)  # alive
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while True:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the child outlived its supervisor"
        time.sleep(0.1)
