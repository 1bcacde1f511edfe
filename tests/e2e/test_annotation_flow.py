"""The whole annotation flow in a real browser, against the real deployment.

Debian's Chromium (driven by Playwright) records a turn from fake webcam and microphone devices
fed a generated clip; ``manage.py serve`` runs gunicorn and a Celery worker on this test's
database and Redis; the worker samples both candidates with the agent model; the annotator plays
both, judges every dimension with the keyboard and submits. The stored comparison must map the
sides to the variants exactly as the page showed them.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import wave
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import av
import numpy as np
import pytest

from labeling_app.models import Candidate, ClipServing, Comparison
from model.data.speech import synthesize
from tests.conftest import (
    ONE_THREAD,
    REPO_ROOT,
    UNDER_CI,
    database_url_for_subprocess,
    free_port,
    require_service,
    tcp_reachable,
)

CHROMIUM = "/usr/bin/chromium"
REDIS_URL = os.environ.get("HER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
ARTIFACTS = REPO_ROOT / "test-artifacts"

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.slow]


def write_fake_microphone(path: Path) -> float:
    """A spoken question as 16-bit mono WAV, the format Chromium's fake audio capture reads."""
    speech = synthesize("Hello! Could you please pick up the red cup for me?", sample_rate=48_000).numpy()
    padded = np.concatenate([np.zeros(4800, np.float32), speech, np.zeros(24_000, np.float32)])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(48_000)
        out.writeframes((np.clip(padded, -1, 1) * 32767).astype("<i2").tobytes())
    return len(padded) / 48_000


def write_fake_webcam(path: Path, seconds: float) -> None:
    """A moving test picture as Y4M, the format Chromium's fake video capture reads."""
    with av.open(str(path), "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("rawvideo", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for i in range(int(seconds * 24)):
            image = np.full((240, 320, 3), 40, np.uint8)
            image[60:180, (i * 4) % 280: (i * 4) % 280 + 40] = (230, 180, 120)  # a face-coloured block moving
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


@pytest.fixture
def deployment(transactional_db, tmp_path):
    """``manage.py serve`` (gunicorn + one worker) on this test's database and Redis."""
    require_service("Redis", tcp_reachable(REDIS_URL, 6379), REDIS_URL)
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(DATABASE_URL=database_url_for_subprocess(), CELERY_BROKER_URL=REDIS_URL,
               CELERY_RESULT_BACKEND=REDIS_URL, HER_VAR_DIR=str(tmp_path / "var"), HER_DEMO_USERS="1",
               HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **ONE_THREAD)
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")
    serve = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--web-processes", "1"],
                             cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=3):
                break
        except OSError:
            if serve.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the site did not come up:\n" + log_path.read_text()[-5000:])
            time.sleep(0.5)
    yield base, log_path
    os.killpg(serve.pid, signal.SIGTERM)
    try:
        serve.wait(timeout=40)
    except subprocess.TimeoutExpired:
        os.killpg(serve.pid, signal.SIGKILL)
    log.close()


@pytest.fixture
def browser(tmp_path):
    require_service("Chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    seconds = write_fake_microphone(tmp_path / "mic.wav")
    write_fake_webcam(tmp_path / "cam.y4m", seconds)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={tmp_path / 'cam.y4m'}",
            f"--use-file-for-fake-audio-capture={tmp_path / 'mic.wav'}",
            "--autoplay-policy=no-user-gesture-required",
        ])
        yield browser
        browser.close()


def test_an_annotator_records_a_turn_and_judges_both_responses(deployment, browser):
    base, log_path = deployment
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    # The Content-Security-Policy allows no inline code: a page relying on some would log this.
    csp_violations: list[str] = []
    page.on("console", lambda message: csp_violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    try:
        page.goto(base + "/accounts/login/")
        page.fill("#id_username", "annotator")
        page.fill("#id_password", "annotator-demo")
        page.click("button[type=submit]")
        page.goto(base + "/label/")
        page.click("#next-item")
        page.wait_for_url(re.compile(r"/label/item/\d+/$"))

        page.click("#record")
        page.wait_for_selector("#stop:enabled")
        page.wait_for_timeout(4000)
        page.click("#stop")
        page.wait_for_selector("#send-recording:enabled")
        page.click("#send-recording")
        page.wait_for_selector("#waiting-section:not([hidden])")
        assert float(page.get_attribute("#upload-progress", "value")) == 100
        page.wait_for_url(re.compile(r"/label/round/[0-9a-f-]{36}/compare/$"), timeout=300_000)

        left_src = page.get_attribute("#video-left", "src")
        right_src = page.get_attribute("#video-right", "src")
        assert page.get_attribute("#submit-vote", "disabled") is not None  # locked until both played
        page.click("#play-both")
        # Predicates are functions, not strings: the page's policy forbids eval, which a
        # string predicate would need.
        page.wait_for_function(
            "() => document.getElementById('plays-left').textContent === '1'"
            " && document.getElementById('plays-right').textContent === '1'", timeout=120_000)
        page.wait_for_selector("#submit-vote:enabled")

        # Every judgment by keyboard: row 1, then a choice per row (focus moves on by itself).
        page.keyboard.press("1")
        for key in ("a", "b", "n", "t", "x"):  # speaking, listening, manipulation, identity, qa_safety
            page.keyboard.press(key)
        page.keyboard.press("o")
        page.keyboard.press("b")  # overall: B (right) better
        page.keyboard.press("s")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowRight")  # strength 2
        page.keyboard.press("c")
        for _ in range(4):
            page.keyboard.press("ArrowRight")  # confidence 4
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "comparison-page.png"), full_page=True)

        # The network fails: first the server cannot be reached at all (the page retries, then
        # says so), then a vote reaches it but the answer is lost. The page sends the same
        # token again; the vote is stored once.
        network = {"mode": "down"}
        seen = []

        def flaky(route):
            seen.append(network["mode"])
            if network["mode"] == "down":
                route.abort()
            elif network["mode"] == "lose the answer":
                route.fetch()
                network["mode"] = "up"
                route.abort()
            else:
                route.continue_()

        page.route("**/vote/", flaky)
        page.keyboard.press("Control+Enter")
        page.wait_for_function("() => document.getElementById('vote-message').textContent"
                               ".startsWith('The server could not be reached')")
        network["mode"] = "lose the answer"
        page.keyboard.press("Control+Enter")
        page.wait_for_url(re.compile(r"/label/\?saved=1$"))
        assert seen == ["down", "down", "down", "lose the answer", "up"]
        assert page.is_visible("#saved-message")
        assert csp_violations == []
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "annotation-flow-failure.png"), full_page=True)
        shutil.copy(log_path, ARTIFACTS / "annotation-flow-serve.log")
        raise
    finally:
        context.close()

    # Playwright's sync API keeps an event loop running in this thread, where Django refuses
    # database calls; the checks run in a worker thread with its own connection.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(check_stored_comparison, left_src, right_src).result()


def check_stored_comparison(left_src: str, right_src: str) -> None:
    from django.db import connection

    try:
        if UNDER_CI:
            assert connection.vendor == "postgresql"
        comparison = Comparison.objects.select_related(
            "round__scenario__campaign", "round__assignment", "candidate_a", "candidate_b"
        ).get(annotator__username="annotator")
        round_ = comparison.round
        campaign = round_.scenario.campaign
        left_variant = campaign.variant_a if round_.variant_a_on_left else campaign.variant_b
        right_variant = campaign.variant_b if round_.variant_a_on_left else campaign.variant_a
        assert comparison.candidate_a.variant_id == left_variant.pk
        assert comparison.candidate_b.variant_id == right_variant.pk
        assert str(comparison.candidate_a.public_id) in left_src
        assert str(comparison.candidate_b.public_id) in right_src
        assert comparison.judgments() == {"speaking": "a", "listening": "b", "manipulation": "na",
                                          "identity": "tie", "qa_safety": "both_bad"}
        assert (comparison.overall, comparison.strength, comparison.confidence) == ("b", 2, 4)
        assert comparison.plays_a >= 1 and comparison.plays_b >= 1
        # The server's own evidence: both clips went out in full before the vote landed.
        for candidate in (comparison.candidate_a, comparison.candidate_b):
            serving = ClipServing.objects.get(candidate=candidate)
            assert serving.served_bytes == serving.size_bytes > 0
            assert serving.first_served_at >= round_.compare_served_at
            assert comparison.submitted_at - round_.compare_served_at >= timedelta(seconds=candidate.duration_seconds)
        assert comparison.time_spent_ms > 1000
        assert round_.source == "recorded" and round_.has_audio and round_.has_video
        assert set(Candidate.objects.filter(round=round_).values_list("status", flat=True)) == {"ready"}
        assert round_.assignment.status == "completed"
    finally:
        connection.close()
