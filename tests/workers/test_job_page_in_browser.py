"""An engineer's training job in a real browser against a real worker: freeze a snapshot on the
page, launch a reward-model job with the form, watch the page follow the run to the end, see its
curves. Debian's Chromium (Playwright) on Django's live server; a Celery worker on the ``jobs``
queue with Redis runs the DeepSpeed subprocess. The screenshot goes to test-artifacts/."""

from __future__ import annotations

from pathlib import Path

import pytest

from labeling_app.models import AgentVariant, TrainingJob, TrainingMetric
from labeling_app.roles import ENGINEER, create_user_with_role
from model.agent import AgentConfig, AgentModel
from tests.conftest import REPO_ROOT, WorkerProcess, require_service
from tests.labeling_app.test_jobs_snapshots import campaign_with_votes
from tests.workers.conftest import REDIS_URL

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.redis, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture
def worker(transactional_db, redis_worker_env, shared_media, tmp_path, settings):
    var = tmp_path / "var"
    settings.CELERY_BROKER_URL = settings.CELERY_RESULT_BACKEND = REDIS_URL
    settings.HER_JOB_ROOT = var / "jobs"
    settings.HER_CHECKPOINT_ROOTS = [var / "jobs", var / "checkpoints"]
    redis_worker_env.update(HER_VAR_DIR=str(var), HER_JOB_ROOT=str(var / "jobs"),
                            HER_CHECKPOINT_ROOTS=str(var / "checkpoints"))
    process = WorkerProcess(redis_worker_env, tmp_path / "worker.log", queues="jobs")
    yield var, process
    process.stop()


def test_an_engineer_launches_a_reward_job_and_watches_its_curves(worker, live_server):
    require_service("Chromium", Path(CHROMIUM).exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    var, process = worker
    agent_dir = var / "checkpoints" / "debug"
    AgentModel(AgentConfig.named("debug")).save_pretrained(agent_dir, card={"data": "random init, tests"})
    campaign = campaign_with_votes(8, agent=AgentModel.from_pretrained(str(agent_dir)), checkpoint=str(agent_dir))
    base = AgentVariant.objects.create(name="debug-base", checkpoint=str(agent_dir))
    create_user_with_role("erin", "engineer-password-1", ENGINEER)
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.set_default_timeout(60_000)
        problems = []
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        try:
            page.goto(live_server.url + "/accounts/login/")
            page.fill("#id_username", "erin")
            page.fill("#id_password", "engineer-password-1")
            page.click("button[type=submit]")
            page.click("#open-jobs")
            page.select_option("#id_snapshot-campaigns", str(campaign.pk))
            page.fill("#id_snapshot-name", "eight-rounds")
            page.click("#freeze")
            assert "eight-rounds" in page.inner_text("#snapshots")
            page.select_option("#id_job-kind", "reward")
            page.select_option("#id_job-base_variant", str(base.pk))
            page.select_option("#id_job-snapshot", label="eight-rounds")
            page.fill("#id_job-num_train_epochs", "3")
            page.fill("#id_job-per_device_train_batch_size", "4")
            page.fill("#id_job-validation_fraction", "0.5")
            page.click("#launch")
            page.wait_for_url("**/jobs/*/")
            # The page reloads itself while the job runs; wait for the worker to finish it.
            page.wait_for_selector("#job-status[data-status=succeeded]", timeout=900_000)
            assert page.locator("#curves svg polyline.line").count() >= 2
            assert page.locator("#curves h3").filter(has_text="train/loss").count() == 1
            page.screenshot(path=str(ARTIFACTS / "training-job.png"), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "training-job-failure.png"), full_page=True)
            print(process.log_text()[-6000:])
            raise
        finally:
            browser.close()
    assert problems == []
    # Django's ORM only after Playwright's event loop is gone (it refuses to run inside one).
    job = TrainingJob.objects.get()
    assert job.status == "succeeded" and job.snapshot.name == "eight-rounds" and job.attempts == 1
    assert TrainingMetric.objects.filter(job=job, name="train/loss").count() >= 2
