"""A deactivated annotator's next request, on any process, is sent to the login page.

Two ``serve`` instances (each its own gunicorn process) on one database and one shared cache,
as two web machines would be: the annotator's session is used on both, the lead deactivates
them on one, and the next request on either is redirected to log in. The same holds for a
deactivation written behind the site's back (a raw SQL update, as a script or a restored dump
would write it), which no signal sees.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO_ROOT, embedded_env, free_port
from tests.site_session import SiteSession, wait_until_answers

pytestmark = pytest.mark.slow


@pytest.fixture
def two_sites(tmp_path):
    """Two ``serve --no-worker`` on one var dir: one SQLite database, one file cache."""
    env = embedded_env(HER_VAR_DIR=str(tmp_path / "var"), HER_DEMO_USERS="1", HF_HUB_OFFLINE="1",
                       PYTHONUNBUFFERED="1")
    started, bases = [], []
    try:
        for n in range(2):  # one after the other: the second finds the database migrated
            port = free_port()
            log = open(tmp_path / f"serve-{n}.log", "wb")
            started.append((subprocess.Popen(
                [sys.executable, "manage.py", "serve", "--port", str(port), "--web-processes", "1", "--no-worker"],
                cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True), log))
            bases.append(f"http://127.0.0.1:{port}")
            wait_until_answers(bases[-1], time.monotonic() + 180)
        yield bases, tmp_path / "var" / "db.sqlite3"
    finally:
        for serve, _log in started:
            serve.send_signal(signal.SIGTERM)
        for serve, log in started:
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)
            log.close()


def workspace_status(session: SiteSession, base: str) -> tuple[int, str]:
    session.base = base
    answer = session.get("/label/")
    return answer.status, answer.location


def test_a_deactivated_annotator_is_sent_to_the_login_page_on_every_process(two_sites):
    (site_a, site_b), database = two_sites
    annotator = SiteSession(site_a)
    annotator.log_in("annotator", "annotator-demo")
    # The same session cookie on both processes; each has cached the session and the user.
    assert workspace_status(annotator, site_a) == (200, "")
    assert workspace_status(annotator, site_b) == (200, "")

    lead = SiteSession(site_b)
    lead.log_in("lead", "lead-demo")
    with sqlite3.connect(database) as db:
        [(annotator_id,)] = db.execute("SELECT id FROM auth_user WHERE username = 'annotator'").fetchall()
    deactivated = lead.post_form("/admin/auth/user/", {"action": "deactivate", "_selected_action": str(annotator_id)})
    assert deactivated.status == 302, deactivated.body[:500]
    for base in (site_a, site_b):
        assert workspace_status(annotator, base) == (302, "/accounts/login/?next=/label/")

    reactivated = lead.post_form("/admin/auth/user/", {"action": "reactivate", "_selected_action": str(annotator_id)})
    assert reactivated.status == 302
    annotator.base = site_b
    annotator.log_in("annotator", "annotator-demo")
    assert workspace_status(annotator, site_a) == (200, "")
    assert workspace_status(annotator, site_b) == (200, "")

    # Behind the site's back: no save(), no signal, nothing told the cache.
    with sqlite3.connect(database) as db:
        db.execute("UPDATE auth_user SET is_active = 0 WHERE id = ?", [annotator_id])
    for base in (site_b, site_a):
        assert workspace_status(annotator, base) == (302, "/accounts/login/?next=/label/")
