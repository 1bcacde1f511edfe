"""How the site is served: one single-worker gunicorn per core, all listening on one port.

``manage.py serve`` and the load benchmark (``python -m labeling_app.loadbench``) both start
the site with ``start_web_servers``, so what the benchmark measures is what runs.

Each process is a gunicorn master with one threaded worker (``gunicorn_conf``) that opens the
port with ``SO_REUSEPORT``, and the kernel spreads new connections over the processes by hash.
With the usual layout, one master with a worker per core, the workers share one socket and a
keep-alive connection stays for its life with whichever worker accepted it. Which one that is
is a race: at 50 simulated annotators on 2 cores one worker held about 45 of the 50
connections in one run and half in the next, and the votes per second swung from 460 to 575
with it. This layout served 637-665 votes/s with a p99 of 158-168 ms over four runs; without
keep-alive (each request accepted by a free worker), one master gave 526-553 votes/s.

``SO_REUSEPORT`` would also let a second copy of the site bind a port that is taken (the two
would split the traffic), so the port is checked to be free first. The check sets
``SO_REUSEADDR``, as gunicorn does: connections of a site that just stopped linger in
TIME_WAIT on the port for a minute, and without it an immediate restart was refused as
"already in use" while nothing listened. With it, only a listening socket counts.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class PortInUse(RuntimeError):
    """Something already listens on the address the site should take."""


def default_processes() -> int:
    """``HER_WEB_PROCESSES``, else one process per core."""
    from labeling_app.settings import env_int

    return env_int("HER_WEB_PROCESSES", os.cpu_count() or 1)


def ensure_port_free(host: str, port: int) -> None:
    """Raise ``PortInUse`` when something listens on ``host:port`` (TIME_WAIT leftovers do not count)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(f"{host}:{port} is already in use ({error.strerror}); stop what listens "
                            "there or choose another port.") from None


def web_server_command(host: str, port: int, *, access_log: bool = True) -> list[str]:
    """The command line of one web server process serving the site on ``host:port``."""
    command = [sys.executable, "-m", "gunicorn", "labeling_app.wsgi:application",
               "--config", "python:labeling_app.gunicorn_conf",
               "--bind", f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    return command + (["--access-logfile", "-"] if access_log else ["--log-level", "warning"])


def check_processes(processes: int) -> None:
    if processes < 1:
        raise ValueError(f"The site needs at least one web server process, not {processes}.")


def start_web_servers(host: str, port: int, processes: int, *, access_log: bool = True,
                      **popen_kwargs) -> list[subprocess.Popen]:
    """Start ``processes`` gunicorn processes serving the site on ``host:port``.

    ``popen_kwargs`` go to ``subprocess.Popen`` (an environment, output files, a new session).
    The caller stops them (SIGTERM) and waits for them. ``serve`` supervises the same
    commands instead (``labeling_app.supervisor``).
    """
    check_processes(processes)
    ensure_port_free(host, port)
    popen_kwargs.setdefault("cwd", REPO_ROOT)
    command = web_server_command(host, port, access_log=access_log)
    return [subprocess.Popen(command, **popen_kwargs) for _ in range(processes)]
