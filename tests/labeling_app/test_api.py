"""The REST API: the OpenAPI schema validates, records and reports come back, exports stream
every table, scripts authenticate with a token, listings cost a fixed number of queries."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from labeling_app.api.export import exportable_models
from labeling_app.models import Comparison, StatisticsReport
from labeling_app.roles import ENGINEER, LEAD
from labeling_app.stats.refresh import compute_and_store
from tests.labeling_app.conftest import make_campaign, make_user
from tests.labeling_app.votes import Vote, write_votes

pytestmark = pytest.mark.django_db


@pytest.fixture
def voted():
    campaign = make_campaign(scenarios=12, overlap=2)
    people = [make_user(name=f"api{i}") for i in range(2)]
    write_votes(campaign, [Vote(p, s, overall="A" if i % 3 else "B", a_on_left=i % 2 == 0)
                           for p in people for i, s in enumerate(campaign.scenarios.all())])
    return campaign


def test_the_openapi_schema_validates(tmp_path):
    path = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(path))
    schema = json.loads(path.read_text())
    for route in ("/api/comparisons/", "/api/campaigns/{id}/statistics/", "/api/statistics/", "/api/snapshots/",
                  "/api/jobs/", "/api/variants/", "/api/export/{table}.{fmt}"):
        assert any(p.replace("{id}", "{pk}") == route.replace("{id}", "{pk}") or p == route for p in schema["paths"]), route


def test_a_script_reads_comparisons_with_a_token(client, voted):
    lead = make_user(LEAD)
    token = Token.objects.create(user=lead)
    response = client.get(f"/api/comparisons/?campaign={voted.pk}&page_size=5", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200
    body = response.json()
    assert len(body["results"]) == 5 and body["next"]
    row = body["results"][0]
    stored = Comparison.objects.select_related("candidate_a").get(pk=row["id"])
    assert row["variant_left"] == stored.candidate_a.variant_id and row["campaign"] == voted.pk
    second = client.get(body["next"], HTTP_AUTHORIZATION=f"Token {token.key}").json()
    assert not {r["id"] for r in body["results"]} & {r["id"] for r in second["results"]}
    # An engineer's token is refused, and so is a wrong one.
    engineer_token = Token.objects.create(user=make_user(ENGINEER))
    assert client.get("/api/comparisons/", HTTP_AUTHORIZATION=f"Token {engineer_token.key}").status_code == 403
    assert client.get("/api/comparisons/", HTTP_AUTHORIZATION="Token nope").status_code == 401


def test_bad_filters_get_a_clear_error(client, voted):
    client.force_login(make_user(LEAD))
    response = client.get("/api/comparisons/?campaign=abc")
    assert response.status_code == 400
    assert response.json() == {"campaign": "must be a positive integer id, not 'abc'"}


def test_listing_comparisons_costs_the_same_queries_for_5_or_100_rows(client, voted):
    client.force_login(make_user(LEAD))
    client.get("/api/comparisons/?page_size=1")  # the first request caches the user's permissions
    counts = []
    for size in (5, 24):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/api/comparisons/?page_size={size}").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_statistics_are_served_from_the_stored_report_with_their_freshness(client, voted, django_capture_on_commit_callbacks):
    client.force_login(make_user(LEAD))
    body = client.get(f"/api/campaigns/{voted.pk}/statistics/").json()
    assert body["computed_at"] is None and body["stale"] and body["refresh_queued"]
    compute_and_store(voted.pk)
    body = client.get(f"/api/campaigns/{voted.pk}/statistics/").json()
    assert not body["stale"] and not body["refresh_queued"] and body["comparison_count"] == 24
    assert body["report"]["win_rates"]["overall"]["first"] == 16
    with CaptureQueriesContext(connection) as queries:
        client.get(f"/api/campaigns/{voted.pk}/statistics/")
    # The user's active flag and password (labeling_app.authentication), the session user,
    # campaign, report: never the comparisons.
    assert len(queries) <= 5
    assert client.get("/api/statistics/").status_code == 200


def test_a_refresh_is_queued_once_however_many_requests_ask(client, voted, monkeypatch, django_capture_on_commit_callbacks):
    sent = []
    monkeypatch.setattr("labeling_app.queue.send_task_now", lambda name, *args, countdown=None: sent.append((name, args)))
    client.force_login(make_user(LEAD))
    with django_capture_on_commit_callbacks(execute=True):
        for _ in range(3):
            client.get(f"/api/campaigns/{voted.pk}/statistics/")
    assert sent == [("workers.stats.refresh_statistics", (voted.pk,))]
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/api/campaigns/{voted.pk}/statistics/refresh/")  # a lead's explicit request always queues
    assert len(sent) == 2
    assert StatisticsReport.objects.get(campaign=voted).requested_at is not None


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_every_table_exports_whole(client, voted, fmt):
    client.force_login(make_user(LEAD))
    index = client.get("/api/export/").json()
    assert set(index) == set(exportable_models())
    assert {"comparison", "campaign", "agentvariant", "preferencesnapshot", "trainingjob", "auditlogentry"} <= set(index)
    for table, model in exportable_models().items():
        response = client.get(f"/api/export/{table}.{fmt}")
        assert response.status_code == 200, table
        text = b"".join(response.streaming_content).decode()
        if fmt == "csv":
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0] == index[table]["columns"]
            assert len(rows) - 1 == model.objects.count(), table
        else:
            rows = json.loads(text)
            assert len(rows) == model.objects.count(), table
    rows = json.loads(b"".join(client.get("/api/export/comparison.json").streaming_content))
    assert {r["id"] for r in rows} == set(Comparison.objects.values_list("id", flat=True))
    assert client.get(f"/api/export/nonsense.{fmt}").status_code == 404
