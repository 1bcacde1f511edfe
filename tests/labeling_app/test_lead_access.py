"""Only leads see statistics: a walk over every URL of the URLconf as annotator and engineer."""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from labeling_app.models import PreferenceSnapshot, TrainingJob
from labeling_app.roles import ANNOTATOR, ENGINEER, LEAD
from tests.labeling_app.conftest import make_campaign, make_user
from tests.labeling_app.votes import Vote, write_votes

pytestmark = pytest.mark.django_db

LEAD_PREFIXES = ("lead/", "api/")


def walk(patterns, prefix="", namespace=""):
    """(route prefix + pattern, namespaced name, keyword names) of every URL pattern."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), f"{namespace}{pattern.name}" if pattern.name else None, \
                set(pattern.pattern.regex.groupindex)


@pytest.fixture
def urls():
    campaign = make_campaign()
    person = make_user(ANNOTATOR)
    (comparison,) = write_votes(campaign, [Vote(person, campaign.scenarios.first(), overall="A")])
    snapshot = PreferenceSnapshot.objects.create(name="s1", path="snapshots/s1", sha256="1" * 64, comparison_count=1)
    job = TrainingJob.objects.create(kind="reward", snapshot=snapshot)
    # A real row behind every detail URL, so a lead's 200 proves the view was reached.
    detail = {"variants": campaign.variant_a_id, "campaigns": campaign.pk, "comparisons": comparison.pk,
              "snapshots": snapshot.pk, "jobs": job.pk}
    values = {"campaign_id": campaign.pk, "user_id": person.pk, "table": "comparison", "fmt": "csv"}
    found = []
    for route, name, keywords in walk(get_resolver().url_patterns):
        route = route.lstrip("^")
        if not route.startswith(LEAD_PREFIXES):
            continue
        assert name, f"{route} has no name, so it cannot be checked"
        kwargs = {k: detail[route.split("/")[1]] if k == "pk" else values[k] for k in keywords}
        found.append(reverse(name, kwargs=kwargs))
    return sorted(set(found))


def test_the_walk_finds_every_lead_page_and_api_endpoint(urls):
    assert len(urls) >= 20
    for expected in ("/lead/", "/lead/audit/", "/api/schema/", "/api/statistics/", "/api/export/comparison.csv"):
        assert expected in urls


@pytest.mark.parametrize("role", [ANNOTATOR, ENGINEER])
@pytest.mark.parametrize("method", ["get", "post"])
def test_annotators_and_engineers_get_403_or_404_everywhere(client, urls, role, method):
    client.force_login(make_user(role))
    refused = {url: getattr(client, method)(url).status_code for url in urls}
    assert {url: code for url, code in refused.items() if code not in (403, 404)} == {}


def test_anonymous_visitors_are_sent_to_log_in_or_refused(client, urls):
    codes = {url: client.get(url).status_code for url in urls}
    assert {url: code for url, code in codes.items() if code not in (302, 401, 403)} == {}


def test_a_lead_reaches_every_one_of_them(client, urls):
    client.force_login(make_user(LEAD))
    codes = {url: client.get(url).status_code for url in urls}
    # 405: the refresh endpoints take POST only; everything else answers.
    assert {url: code for url, code in codes.items() if code not in (200, 405)} == {}
