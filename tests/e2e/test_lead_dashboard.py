"""The lead pages in a real browser against the real deployment: the page asks for its report,
a real worker computes it, the page reloads itself and shows the charts; then the drill-down.

Debian's Chromium (Playwright), gunicorn from ``manage.py serve --no-worker`` and a Celery
worker on the ``stats`` queue, both on this test's database and Redis. Screenshots go to
test-artifacts/.
"""

import os
import random
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from labeling_app.roles import LEAD, create_user_with_role
from tests.conftest import (
    REPO_ROOT,
    WorkerProcess,
    database_url_for_subprocess,
    free_port,
    require_service,
    tcp_reachable,
)
from tests.labeling_app.conftest import make_campaign, make_user
from tests.labeling_app.votes import Vote, write_votes

CHROMIUM = "/usr/bin/chromium"
REDIS_URL = os.environ.get("HER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ARTIFACTS = REPO_ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def site(transactional_db, tmp_path):
    require_service("Redis", tcp_reachable(REDIS_URL, 6379), REDIS_URL)
    require_service("Chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DATABASE_URL=database_url_for_subprocess(), CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL,
               HER_VAR_DIR=str(tmp_path / "var"), HER_DEMO_USERS="0", HER_STATS_BOOTSTRAP_ROUNDS="100",
               PYTHONUNBUFFERED="1")
    port = free_port()
    log = open(tmp_path / "serve.log", "wb")
    serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port), "--web-processes", "1"],
                             cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    workers = []

    def start_worker() -> WorkerProcess:
        workers.append(WorkerProcess(env, tmp_path / "worker.log", queues="stats"))
        return workers[-1]

    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=3):
                break
        except OSError:
            if serve.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the site did not start:\n" + (tmp_path / "serve.log").read_text(errors="replace"))
            time.sleep(0.5)
    yield base, start_worker
    for worker in workers:
        worker.stop()
    serve.terminate()
    serve.wait(timeout=30)
    log.close()


def test_a_lead_sees_charts_computed_by_a_worker_and_drills_down_to_a_flag(site):
    base, start_worker = site
    worker = None
    campaign = make_campaign(scenarios=30, overlap=4)
    rng = random.Random(1)
    people = [make_user(name=f"rater{i}") for i in range(3)]
    lefty = make_user(name="lefty")
    votes = []
    for s in campaign.scenarios.all():
        truth = "A" if rng.random() < 0.75 else "B"
        votes += [Vote(p, s, overall=truth if rng.random() < 0.9 else "tie", a_on_left=rng.random() < 0.5,
                       time_ms=rng.randint(8000, 40000)) for p in people]
        left = rng.random() < 0.5
        votes.append(Vote(lefty, s, overall="A" if left else "B", a_on_left=left))
    write_votes(campaign, votes)
    create_user_with_role("boss", "lead-password-123", LEAD)

    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1300, "height": 1000})
        page.set_default_timeout(30_000)
        problems = []
        # Every failed request (a missing stylesheet or script) and every script error is a problem.
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        try:
            page.goto(base + "/accounts/login/")
            page.fill("#id_username", "boss")
            page.fill("#id_password", "lead-password-123")
            page.click("button[type=submit]")
            page.click("#open-statistics")
            page.goto(f"{base}/lead/campaigns/{campaign.pk}/")
            assert "A worker is recomputing it" in page.inner_text("#freshness")
            # The worker starts only now, so the page has had its chance to show the pending state.
            worker = start_worker()
            # lead.js polls the API and reloads once the worker stored the report.
            page.wait_for_selector("#win-chart svg", timeout=120_000)
            assert page.locator("#win-chart svg circle.point").count() == 6
            assert page.locator("#ratings-chart svg line.interval").count() >= 12 * 3
            assert page.locator("#volume-chart svg rect.bar").count() >= 1
            assert re.search(r"from 120 comparisons", page.inner_text("#freshness"))
            page.screenshot(path=str(ARTIFACTS / "lead-campaign.png"), full_page=True)
            page.click("#annotators a.flag")
            page.wait_for_url(re.compile(rf"/lead/campaigns/{campaign.pk}/annotators/{lefty.pk}/$"))
            assert page.locator("#comparisons tbody tr").count() == 30
            page.screenshot(path=str(ARTIFACTS / "lead-annotator.png"), full_page=True)
            page.goto(base + "/lead/")
            page.wait_for_selector("#freshness")
            page.screenshot(path=str(ARTIFACTS / "lead-dashboard.png"), full_page=True)
            assert problems == []
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "lead-failure.png"), full_page=True)
            if worker is not None:
                print(worker.log_text()[-4000:])
            raise
        finally:
            browser.close()
