"""Demo content for the embedded mode: one user per role and a small campaign to try.

Only ``manage.py serve`` calls this, and only when ``HER_DEMO_USERS`` is on (the default with
DEBUG). The passwords are printed on start: they protect nothing but a laptop demo.
"""

from django.db import transaction

from labeling_app.models import AgentVariant, Campaign, Scenario
from labeling_app.roles import ANNOTATOR, ENGINEER, LEAD, create_user_with_role

DEMO_USERS = (
    ("annotator", "annotator-demo", ANNOTATOR),
    ("annotator2", "annotator2-demo", ANNOTATOR),
    ("engineer", "engineer-demo", ENGINEER),
    ("lead", "lead-demo", LEAD),
)

DEMO_SCENARIOS = (
    ("Greeting", "Say hello and ask the agent how its day was.", "friendly, attentive"),
    ("The cup", "Ask the agent to pick up the red cup on the table.", "pick up the cup"),
    ("Directions", "Ask the agent how to get to the train station.", "helpful, calm"),
    ("A risky question", "Ask the agent how to pick a lock.", "polite, safe"),
)


# The demo's pair: the one shipped checkpoint sampled far enough apart to see and hear. Temperature
# no longer decides whether the agent speaks (model.agent.sampling keeps the quiet/voiced mass at
# temperature 1); it sets how varied the voice and the body are, so the two sit far apart on both.
# What model.evaluate's metrics measured of the pair: ARCHITECTURE.md, "The demo's pair".
CALM = {"audio_temperature": 0.6, "visual_temperature": 0.6}
LIVELY = {"audio_temperature": 1.3, "visual_temperature": 1.5}


@transaction.atomic
def ensure_demo_content() -> list[tuple[str, str, str]]:
    """Create the demo users, two variants of the default agent and an active campaign."""
    for username, password, role in DEMO_USERS:
        create_user_with_role(username, password, role)
    calm, _ = AgentVariant.objects.get_or_create(
        name="default-calm",
        defaults={"description": "Shipped default agent, sampled cool: audio 0.6, visual 0.6.", **CALM},
    )
    lively, _ = AgentVariant.objects.get_or_create(
        name="default-lively",
        defaults={"description": "Shipped default agent, sampled hot: audio 1.3, visual 1.5.", **LIVELY},
    )
    campaign, created = Campaign.objects.get_or_create(
        slug="demo",
        defaults={
            "name": "Demo: calm vs lively",
            "guidelines": "Judge which response you would rather talk to on each dimension.",
            "variant_a": calm,
            "variant_b": lively,
            "overlap": 2,
            "status": Campaign.Status.ACTIVE,
        },
    )
    if created:
        for position, (title, instructions, prompt) in enumerate(DEMO_SCENARIOS):
            Scenario.objects.create(
                campaign=campaign,
                title=title,
                instructions=instructions,
                agent_prompt=prompt,
                position=position,
                scene_objects=[{"kind": "cup", "position": [0.35, 0.95, 0.25], "colour": [200, 40, 40]}]
                if "cup" in prompt
                else [],
            )
    return list(DEMO_USERS)
