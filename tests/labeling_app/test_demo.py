"""The embedded mode's demo: one active campaign pairing the shipped agent under two samplings far
enough apart to see and hear, created once however often the site starts."""

import pytest

from labeling_app.demo import DEMO_SCENARIOS, DEMO_USERS, ensure_demo_content
from labeling_app.models import AgentVariant, Campaign

pytestmark = pytest.mark.django_db


def test_the_demo_pairs_a_calm_and_a_lively_default_agent_once():
    assert ensure_demo_content() == list(DEMO_USERS)
    ensure_demo_content()  # a second start changes nothing
    campaign = Campaign.objects.get(slug="demo")
    assert Campaign.objects.count() == 1 and AgentVariant.objects.count() == 2
    assert campaign.status == Campaign.Status.ACTIVE and campaign.scenarios.count() == len(DEMO_SCENARIOS)
    calm, lively = campaign.variant_a, campaign.variant_b
    assert calm.checkpoint == lively.checkpoint == "default" and calm.top_k == lively.top_k == 0
    # Temperature no longer decides whether the agent speaks, only how varied it is: the pair sits
    # far apart on both the voice's and the body's, the calm one below 1, the lively one above.
    assert calm.audio_temperature <= 0.6 and lively.audio_temperature >= 1.3
    assert calm.visual_temperature <= 0.6 and lively.visual_temperature >= 1.5
