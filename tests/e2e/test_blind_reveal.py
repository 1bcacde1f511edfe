"""Blindness against timing, in a real browser: the waiting page never tells which side is ready first.

Rounds in Debian's Chromium against ``manage.py serve`` (gunicorn and one real worker) on this
test's database: each round uploads a one-second turn and waits on the page until it moves to
the comparison. Every response the page receives is logged in order, with its body when it
is JSON. The hidden mapping (which side holds which variant, and which candidate the worker
finished first) is read from the database afterwards. The worker takes the round's two
candidates in the random order they were queued, so the first one done is variant A's in some
rounds and B's in others; the page's log must be the same function of the pair in all of them:
one combined progress, no side named, and "ready" only once both are done. Rounds go on until
each variant and each side has been the first one done at least once (about four rounds; at
most twenty, after which the test fails: by chance alone, 4 in a million).

Kept cheap for CI: one-second turns, the variants sample with two diffusion steps, and each
round is given back (released) once the page reached the comparison instead of being judged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pytest

from labeling_app.models import AgentVariant, Campaign, Candidate, Round, Scenario
from labeling_app.roles import ANNOTATOR, create_user_with_role, sync_roles
from tests.conftest import ONE_THREAD, REPO_ROOT, database_url_for_subprocess, free_port
from tests.e2e.test_annotation_flow import ARTIFACTS, browser  # noqa: F401 (a fixture)
from tests.labeling_app.conftest import make_clip
from tests.site_session import wait_until_answers

# Up to forty candidates sampled one after the other by one worker: longer than the suite's 900 s
# default on a loaded machine; each round still gives up after 10 minutes.
pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow, pytest.mark.timeout(2400)]

MAX_ROUNDS = 20
UPLOAD_LIMIT = 1_000_000  # the page's own size check is tried once, on a file just above it
PAIR_KEYS = {"progress", "message", "ready", "failed", "compare_url"}
# The pair's message follows from the set of the two statuses only, in this order.
MESSAGES = ["Waiting for a free worker…", "The agent is responding…", "Both responses are ready."]


@dataclass
class Logged:
    at: float  # time.time() when the page had the response
    url: str
    status: int
    body: dict | None = None


@dataclass
class RoundLog:
    round_id: str = ""
    responses: list[Logged] = field(default_factory=list)


@pytest.fixture
def blind_campaign(transactional_db):
    sync_roles()
    create_user_with_role("blind", "blind-password-1", ANNOTATOR)
    fast = dict(checkpoint="default", diffusion_steps=2)
    campaign = Campaign.objects.create(
        name="Blind reveal", slug="blind-reveal", overlap=1, status=Campaign.Status.ACTIVE,
        variant_a=AgentVariant.objects.create(name="hidden-a", audio_temperature=1.0, **fast),
        variant_b=AgentVariant.objects.create(name="hidden-b", audio_temperature=0.7, **fast),
    )
    for position in range(MAX_ROUNDS):
        Scenario.objects.create(campaign=campaign, title=f"Turn {position}", instructions="Say hello.",
                                agent_prompt="friendly", position=position)
    return campaign


@pytest.fixture
def site(blind_campaign, tmp_path):
    """``serve`` (one web process, one worker) on this test's database, broker on disk."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_", "HER_WEB_"))}
    env.update(DATABASE_URL=database_url_for_subprocess(), HER_VAR_DIR=str(tmp_path / "var"), HER_DEMO_USERS="0",
               HER_UPLOAD_MAX_BYTES=str(UPLOAD_LIMIT), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **ONE_THREAD)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--web-processes", "1"],
                                 cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_until_answers(f"http://127.0.0.1:{port}", time.monotonic() + 180)
            yield f"http://127.0.0.1:{port}", log_path
        finally:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(serve.pid, signal.SIGKILL)


def test_the_page_reveals_readiness_in_an_order_independent_of_the_variant(site, browser):  # noqa: F811
    base, log_path = site
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    rounds: list[RoundLog] = []
    everything: list[Logged] = []
    hidden: dict[str, dict] = {}
    first_done = {"variant a": 0, "variant b": 0, "left": 0, "right": 0}
    # Playwright's sync API keeps an event loop in this thread, where Django refuses database
    # calls: the hidden mapping is read in a thread with its own connection.
    database = ThreadPoolExecutor(1)

    def log(logged: Logged) -> None:
        everything.append(logged)
        if rounds:
            rounds[-1].responses.append(logged)

    # The JSON answers are read on the way to the page: the last status answer makes it
    # navigate away, after which its body can no longer be read from the browser.
    json_urls = re.compile(r"/(status|upload)/$")

    def capture(route) -> None:
        response = route.fetch()
        log(Logged(time.time(), route.request.url, response.status, response.json()))
        route.fulfill(response=response)

    page.route(json_urls, capture)
    page.on("response", lambda response: None if json_urls.search(response.url)
            else log(Logged(time.time(), response.url, response.status)))
    try:
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "blind")
        page.fill("#id_password", "blind-password-1")
        page.click("button[type=submit]")
        turn = make_clip(seconds=1.0)

        for number in range(MAX_ROUNDS):
            page.goto(base + "/label/")
            page.click("#next-item")
            page.wait_for_url(re.compile(r"/label/item/\d+/$"))
            item_url = page.url
            if number == 0:  # too big: the page says so and sends nothing
                page.set_input_files("#file", files=[{"name": "big.webm", "mimeType": "video/webm",
                                                      "buffer": turn + b"\0" * UPLOAD_LIMIT}])
                page.click("#upload-file")
                assert page.text_content("#upload-message") == (
                    "The file is larger than the limit of 1 MB. Record a shorter turn or upload a smaller clip.")
                assert not [r for r in everything if r.url.endswith("/upload/")]
            rounds.append(RoundLog())
            page.set_input_files("#file", files=[{"name": "turn.webm", "mimeType": "video/webm", "buffer": turn}])
            page.click("#upload-file")
            page.wait_for_url(re.compile(r"/label/round/[0-9a-f-]{36}/compare/$"), timeout=600_000)
            rounds[-1].round_id = page.url.rstrip("/").split("/")[-2]
            csrf = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
            released = context.request.post(item_url + "release/", headers={
                "X-CSRFToken": csrf, "Accept": "application/json", "Referer": item_url})
            assert released.status == 200, released.text()
            truth = database.submit(hidden_mapping, [rounds[-1].round_id]).result()[rounds[-1].round_id]
            hidden[rounds[-1].round_id] = truth
            first_done[truth["first_done_variant"]] += 1
            first_done[truth["first_done_side"]] += 1
            if all(first_done.values()):
                break
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "blind-reveal-failure.png"), full_page=True)
        shutil.copy(log_path, ARTIFACTS / "blind-reveal-serve.log")
        raise
    finally:
        context.close()
        database.shutdown()

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "blind-reveal-log.json").write_text(json.dumps(
        [{"hidden": hidden[r.round_id], "responses": [vars(x) for x in r.responses]} for r in rounds], indent=1))

    for log in rounds:
        check_round_log(log, hidden[log.round_id])
    # Both orders happened (each, by chance alone, all 20 times the same way: 2 in a million):
    # whatever the page showed, it showed it with either variant, and either side, finishing first.
    assert all(first_done.values()), first_done


def check_round_log(log: RoundLog, truth: dict) -> None:
    """Everything the page fetched while waiting is a function of the pair, not of a side."""
    # Static files and the browser's own favicon request are the same bytes in every round.
    fetched = [r for r in log.responses if "/static/" not in r.url and not r.url.endswith("/favicon.ico")]
    end = next(i for i, r in enumerate(fetched) if r.url.endswith(f"/round/{log.round_id}/compare/"))
    upload, *waiting, compare = fetched[: end + 1]  # what the compare page loads itself is not waiting
    assert upload.url.endswith("/upload/") and upload.status == 201
    assert set(upload.body) == {"round", "status_url", "compare_url"}
    assert compare.url.endswith(f"/round/{log.round_id}/compare/") and compare.status == 200
    assert waiting, "the page never asked how the responses were doing"
    previous_progress, previous_message = 0.0, 0
    for response in waiting:
        # Nothing else was fetched (no clip, no per-side status); no side is named (none failed).
        assert response.url.endswith(f"/round/{log.round_id}/status/") and response.status == 200
        assert set(response.body) == PAIR_KEYS, response.body
        assert response.body["failed"] is False
        # Progress and message only move forward, the message by the set of statuses alone.
        message = MESSAGES.index(response.body["message"])
        assert message >= previous_message and response.body["progress"] >= previous_progress
        previous_progress, previous_message = response.body["progress"], message
        # Ready is said once, and not before both were done.
        assert response.body["ready"] == (response is waiting[-1])
        assert response.body["ready"] == (message == 2)
    assert waiting[-1].at >= truth["last_done_at"]


def hidden_mapping(round_ids: list[str]) -> dict[str, dict]:
    from django.db import connection

    try:
        hidden = {}
        for round_ in Round.objects.filter(public_id__in=round_ids).select_related("scenario__campaign"):
            campaign = round_.scenario.campaign
            candidates = sorted(Candidate.objects.filter(round=round_), key=lambda c: c.finished_at)
            assert [c.status for c in candidates] == ["ready", "ready"]
            first = candidates[0]
            is_a = first.variant_id == campaign.variant_a_id
            hidden[str(round_.public_id)] = {
                "variant_a_on_left": round_.variant_a_on_left,
                "first_done_variant": "variant a" if is_a else "variant b",
                "first_done_side": "left" if is_a == round_.variant_a_on_left else "right",
                "finished_apart_seconds": (candidates[1].finished_at - first.finished_at).total_seconds(),
                "last_done_at": candidates[1].finished_at.timestamp(),
            }
        assert len(hidden) == len(round_ids)
        return hidden
    finally:
        connection.close()
