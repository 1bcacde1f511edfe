"""The PostgreSQL backend's per-request health check (``labeling_app.postgresql``).

A persistent connection the server dropped must be replaced before a request uses it, and the
check must not cost a query on a healthy connection.
"""

from __future__ import annotations

import time

import psycopg
import pytest
from django.contrib.auth import get_user_model
from django.core.signals import request_started
from django.db import connection

from tests.conftest import require_service

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def postgresql():
    """A second connection to the test database, for what another session would do."""
    require_service("PostgreSQL", connection.vendor == "postgresql", "this run's database is SQLite")
    connection.ensure_connection()
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other:
        yield other
    connection.close()  # the test may have left it dropped; the database flush reconnects


def backend_of(other: psycopg.Connection, pid: int) -> tuple | None:
    return other.execute("SELECT pid, query FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()


def drop_our_connection(other: psycopg.Connection) -> None:
    pid = connection.connection.info.backend_pid
    assert other.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    deadline = time.monotonic() + 10
    while backend_of(other, pid) is not None:
        assert time.monotonic() < deadline, "the server did not end the backend"
        time.sleep(0.05)


def test_a_healthy_idle_connection_is_usable_without_a_query(postgresql):
    assert connection.settings_dict["CONN_HEALTH_CHECKS"]
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'marker of the last statement'")
    assert connection.is_usable()
    # Django's own check would have sent SELECT 1, the backend's last statement now.
    _, last_query = backend_of(postgresql, connection.connection.info.backend_pid)
    assert last_query == "SELECT 'marker of the last statement'"


def test_a_connection_the_server_dropped_is_not_usable(postgresql):
    drop_our_connection(postgresql)
    assert not connection.is_usable()


def test_the_next_request_after_a_drop_gets_a_new_connection(postgresql):
    get_user_model().objects.create_user("before-the-drop")
    old_pid = connection.connection.info.backend_pid
    drop_our_connection(postgresql)
    request_started.send(sender=__name__)  # what the handler does before each request
    assert get_user_model().objects.filter(username="before-the-drop").count() == 1
    assert connection.connection.info.backend_pid != old_pid
