"""The statistics task, sent by name over a real broker, runs in a worker process and stores
the report; a campaign that is gone is a quiet no-op."""

import os

import pytest
from celery import Celery

from labeling_app.models import StatisticsReport
from tests.conftest import require_service, tcp_reachable
from tests.labeling_app.conftest import make_campaign, make_user
from tests.labeling_app.votes import Vote, write_votes

REDIS_URL = os.environ.get("HER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_computes_and_stores_a_campaign_report(worker_env, start_worker):
    require_service("Redis", tcp_reachable(REDIS_URL, 6379), REDIS_URL)
    campaign = make_campaign(scenarios=8)
    person = make_user()
    write_votes(campaign, [Vote(person, s, overall="A") for s in campaign.scenarios.all()])
    worker_env.update(CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL, HER_STATS_BOOTSTRAP_ROUNDS="50")
    worker = start_worker(worker_env, queues="stats")
    client = Celery("test-client", broker=REDIS_URL, backend=REDIS_URL)
    client.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json")
    try:
        reply = client.send_task("workers.stats.refresh_statistics", args=[campaign.pk], queue="stats").get(timeout=120)
        gone = client.send_task("workers.stats.refresh_statistics", args=[10**9], queue="stats").get(timeout=60)
    except Exception as exc:
        pytest.fail(f"no reply from the worker ({exc!r}); worker log:\n{worker.log_text()}")
    assert reply.startswith("8 comparisons")
    report = StatisticsReport.objects.get(campaign=campaign)
    assert report.computed_at and report.payload["win_rates"]["overall"]["first"] == 8
    assert report.payload["bootstrap_rounds"] == 50
    assert gone == "campaign gone"
