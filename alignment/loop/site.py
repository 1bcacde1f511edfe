"""The deployment the loop drives, and a browser-like HTTP session on it, standard library only.

The loop never imports the site (alignment imports model only): it starts ``manage.py serve`` as
a child process, runs management commands as subprocesses for what has no page (users,
campaigns), and talks HTTP for everything people do. ``Deployment`` runs on the embedded
defaults (SQLite and the filesystem broker under ``<out>/var``) unless the environment names a
database or broker, exactly as ``serve`` itself decides.
"""

from __future__ import annotations

import ctypes
import http.cookiejar
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class SiteError(RuntimeError):
    """The site answered something the loop cannot go on from (with what it said)."""


class Response:
    def __init__(self, status: int, headers, body: bytes):
        self.status, self.headers, self.body = status, headers, body

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> dict:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Session:
    """One logged-in person: cookies, the CSRF token from its cookie, redirects seen, not followed."""

    def __init__(self, base: str, timeout: float = 120, retries: int = 4):
        self.base, self.timeout, self.retries = base, timeout, retries
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies), _NoRedirect)

    def cookie(self, name: str, default: str | None = None) -> str:
        value = next((c.value for c in self.cookies if c.name == name), default)
        if value is None:
            raise SiteError(f"no {name} cookie from {self.base}")
        return value

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> Response:
        """One request; a refused or dropped connection (a web process restarted by serve's
        supervisor) is tried again ``retries`` times, 1, 2, 4, ... s apart."""
        headers = dict(headers or {})
        if method == "POST":
            headers.setdefault("X-CSRFToken", self.cookie("csrftoken", ""))
            headers.setdefault("Referer", self.base + "/")
        request = urllib.request.Request(self.base + path, data=body, headers=headers, method=method)
        for attempt in range(self.retries + 1):
            try:
                with self.opener.open(request, timeout=self.timeout) as answer:
                    return Response(answer.status, answer.headers, answer.read())
            except urllib.error.HTTPError as error:
                return Response(error.code, error.headers, error.read())
            except (ConnectionError, urllib.error.URLError, TimeoutError) as error:
                if attempt == self.retries:
                    raise SiteError(f"{method} {path}: {error}") from error
                time.sleep(2 ** attempt)
        raise AssertionError("unreachable")

    def get(self, path: str, **kwargs) -> Response:
        return self.request("GET", path, **kwargs)

    def get_json(self, path: str) -> dict:
        answer = self.get(path, headers={"Accept": "application/json"})
        expect(answer, 200, f"GET {path}")
        return answer.json()

    def post_form(self, path: str, fields: dict, headers: dict | None = None) -> Response:
        return self.request("POST", path, urllib.parse.urlencode(fields, doseq=True).encode(),
                            {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})

    def post_multipart(self, path: str, fields: dict[str, str], files: dict[str, tuple[str, bytes, str]],
                       headers: dict | None = None) -> Response:
        boundary = uuid.uuid4().hex
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
                 for name, value in fields.items()]
        for name, (filename, data, content_type) in files.items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                         f"Content-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self.request("POST", path, body, {"Content-Type": f"multipart/form-data; boundary={boundary}",
                                                 **(headers or {})})

    def log_in(self, username: str, password: str) -> None:
        page = self.get("/accounts/login/")
        found = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
        if found is None:
            raise SiteError(f"the login page has no CSRF token (status {page.status})")
        answer = self.post_form("/accounts/login/", {"csrfmiddlewaretoken": found.group(1).decode(),
                                                     "username": username, "password": password, "next": "/"})
        if answer.status != 302:
            raise SiteError(f"logging in as {username} answered {answer.status}: {answer.text[:300]}")

    def form_token(self, path: str) -> str:
        """The CSRF token of the form on page ``path``."""
        page = self.get(path)
        expect(page, 200, f"GET {path}")
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def expect(answer: Response, status: int | tuple[int, ...], what: str) -> Response:
    if answer.status not in ((status,) if isinstance(status, int) else status):
        raise SiteError(f"{what} answered {answer.status}: {answer.text[:500]}")
    return answer


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Between fork and exec: SIGTERM the child when the loop dies (even by SIGKILL), so ``serve``
    stops its web servers and worker instead of outliving the run that started it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Deployment:
    """``manage.py serve`` for one loop run: its environment, its log, its management commands."""

    def __init__(self, var_dir: Path, port: int, worker_concurrency: int, log_path: Path):
        self.var_dir, self.port, self.log_path = var_dir, port, log_path
        self.worker_concurrency = worker_concurrency
        self.process: subprocess.Popen | None = None
        self.base = f"http://127.0.0.1:{port}"

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(HER_VAR_DIR=str(self.var_dir), HER_DEMO_USERS="0", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1",
                   # the loop's own checkpoints live in the run's var dir, where jobs may read them
                   HER_CHECKPOINT_ROOTS=str(self.var_dir / "checkpoints"))
        env.setdefault("OMP_NUM_THREADS", "1")
        return env

    def manage(self, *args: str, stdin: str | None = None) -> str:
        """Run ``manage.py ARGS`` against this deployment's database; its stdout."""
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SiteError(f"manage.py {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def start(self, timeout: float = 300) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        self._wait_port_free(timeout=60)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--port", str(self.port), "--web-processes", "1",
             "--worker-concurrency", str(self.worker_concurrency)],
            cwd=REPO_ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=_die_with_parent)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SiteError(f"manage.py serve exited {self.process.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=3) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise SiteError(f"the site did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def _wait_port_free(self, timeout: float) -> None:
        """A previous run's ``serve`` (its loop was killed) may still be shutting down on the port."""
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise SiteError(f"port {self.port} is still in use") from None
            time.sleep(0.5)
