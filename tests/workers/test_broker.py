"""A task sent by name crosses a real broker and runs in a separate worker process."""

import os
import uuid

import pytest
from celery import Celery

from tests.conftest import require_service, tcp_reachable

REDIS_URL = os.environ.get("HER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def client_for(broker_url: str, backend_url: str, **conf) -> Celery:
    client = Celery("test-client", broker=broker_url, backend=backend_url)
    client.conf.update(task_serializer="json", accept_content=["json"], result_serializer="json",
                       task_default_queue="jobs", **conf)
    return client


@pytest.mark.worker
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
def test_a_worker_process_executes_a_task_sent_over_redis(worker_env, start_worker):
    require_service("Redis", tcp_reachable(REDIS_URL, 6379), REDIS_URL)
    worker_env.update(CELERY_BROKER_URL=REDIS_URL, CELERY_RESULT_BACKEND=REDIS_URL)
    worker = start_worker(worker_env)
    client = client_for(REDIS_URL, REDIS_URL)
    token = uuid.uuid4().hex
    result = client.send_task("workers.health.ping", args=[token])
    try:
        reply = result.get(timeout=120)
    except Exception as exc:  # show the worker's own log: it says why
        pytest.fail(f"no reply from the worker ({exc!r}); worker log:\n{worker.log_text()}")
    assert reply["token"] == token
    assert reply["worker"] == worker.nodename
    assert reply["pid"] != os.getpid()
