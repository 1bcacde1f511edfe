"""The lead pages: charts from the stored report, its freshness, the drill-down, the audit trail."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from labeling_app.models import AgentVariant
from labeling_app.roles import LEAD
from labeling_app.stats.refresh import compute_and_store
from tests.labeling_app.conftest import make_campaign, make_user
from tests.labeling_app.votes import Vote, write_votes

pytestmark = pytest.mark.django_db


@pytest.fixture
def campaign_with_votes():
    campaign = make_campaign(scenarios=15, overlap=3)
    people = [make_user(name=f"page{i}") for i in range(2)] + [make_user(name="lefty")]
    votes = [Vote(p, s, overall="A" if i % 4 else "B", a_on_left=i % 2 == 0)
             for p in people[:2] for i, s in enumerate(campaign.scenarios.all())]
    votes += [Vote(people[2], s, overall="A" if i % 2 == 0 else "B", a_on_left=i % 2 == 0)  # always left
              for i, s in enumerate(campaign.scenarios.all())]
    write_votes(campaign, votes)
    return campaign, people


def test_the_campaign_page_says_it_is_computing_then_shows_charts_and_flags(client, campaign_with_votes):
    campaign, people = campaign_with_votes
    client.force_login(make_user(LEAD))
    page = client.get(f"/lead/campaigns/{campaign.pk}/").content.decode()
    assert "Not computed yet" in page and "A worker is recomputing it" in page
    compute_and_store(campaign.pk)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/lead/campaigns/{campaign.pk}/")
    page = response.content.decode()
    assert len(queries) <= 6  # user, campaign, report: never the comparisons
    for chart in ("win-chart", "ratings-chart", "position-chart", "volume-chart", "time-chart"):
        assert re.search(rf'id="{chart}"><svg class="chart"', page), chart
    assert "Computed 0" in page and "from 45 comparisons" in page
    assert "<script>" not in page and "style=" not in page  # strict CSP: no inline script or style
    lefty = people[2]
    assert re.search(rf'href="/lead/campaigns/{campaign.pk}/annotators/{lefty.pk}/">Always one side', page)


def test_the_drill_down_lists_the_annotators_comparisons_by_variant(client, campaign_with_votes):
    campaign, people = campaign_with_votes
    compute_and_store(campaign.pk)
    client.force_login(make_user(LEAD))
    page = client.get(f"/lead/campaigns/{campaign.pk}/annotators/{people[2].pk}/").content.decode()
    assert "Always one side" in page
    rows = re.findall(r"<tr><td>\d{4}-\d\d-\d\d", page)
    assert len(rows) == 15
    # Every vote went to the left clip: the "left was" column equals the overall winner.
    body = page.split('id="comparisons"')[1]
    cells = re.findall(r"<td>Scenario \d+</td>\s*<td>([^<]+)</td>\s*<td>([^<]+)</td>", body)
    assert len(cells) == 15 and all(left == winner for left, winner in cells)


def test_the_dashboard_shows_ratings_and_the_win_matrix(client, campaign_with_votes):
    campaign, _ = campaign_with_votes
    compute_and_store(None)
    client.force_login(make_user(LEAD))
    page = client.get("/lead/?field=speaking").content.decode()
    assert 'id="ratings-chart"><svg' in page and 'id="win-matrix"><svg' in page
    assert campaign.variant_a.name in page
    assert client.get("/lead/?field=nonsense").status_code == 200  # falls back to overall


def test_the_audit_trail_shows_who_changed_a_variant(client):
    lead = make_user(LEAD)
    client.force_login(lead)
    campaign = make_campaign()
    variant = campaign.variant_a
    response = client.post(f"/admin/labeling_app/agentvariant/{variant.pk}/change/", {
        "name": variant.name, "description": "now warmer", "checkpoint": variant.checkpoint,
        "audio_temperature": "1.5", "visual_temperature": variant.visual_temperature, "top_k": variant.top_k,
        "diffusion_steps": variant.diffusion_steps, "status": variant.status,
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    assert AgentVariant.objects.get(pk=variant.pk).audio_temperature == 1.5
    page = client.get("/lead/audit/?model=agentvariant").content.decode()
    assert lead.username in page and "audio_temperature" in page and "1.5" in page
