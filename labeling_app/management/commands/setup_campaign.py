"""Set up a study from a JSON spec, with no page for it: users, variants, a campaign and its scenarios.

``manage.py setup_campaign SPEC.json`` (``-`` reads stdin) prints one JSON object with the ids it
created or found. Scripts that drive the site from outside (``python -m alignment.loop``) use it
for what only the admin would otherwise do. Running it again with the same spec changes nothing
(users, variants and the campaign are found by name and slug), so a resumed script may repeat it.

    {"users": [{"username": "sim-1", "password": "...", "role": "annotator"}],
     "variants": [{"name": "default-t1", "checkpoint": "default", "audio_temperature": 1.0}],
     "campaign": {"slug": "loop-1", "name": "...", "variant_a": "default-t1", "variant_b": "default-t07",
                  "overlap": 1, "dimensions": ["listening"], "lock_minutes": 30,
                  "scenarios": [{"title": "...", "instructions": "...", "agent_prompt": "...", "identity": 0}]},
     "close": ["loop-0"]}

A variant named in the campaign but not under ``variants`` must exist already (a PPO job's
policy, registered by its worker). ``close`` closes other campaigns, so their items are no
longer handed out.
"""

import json
import sys

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from labeling_app.models import AgentVariant, Campaign, Scenario
from labeling_app.roles import ROLES, create_user_with_role

VARIANT_FIELDS = ("checkpoint", "description", "audio_temperature", "visual_temperature", "top_k", "diffusion_steps")
CAMPAIGN_FIELDS = ("name", "guidelines", "overlap", "dimensions", "lock_minutes")
SCENARIO_FIELDS = ("title", "instructions", "agent_prompt", "identity", "scene_objects")


class Command(BaseCommand):
    help = "Create (or find) the users, variants, campaign and scenarios of a JSON spec; print their ids as JSON."

    def add_arguments(self, parser):
        parser.add_argument("spec", help="JSON file, or - for stdin")

    def handle(self, *args, spec, **options):
        try:
            data = json.load(sys.stdin if spec == "-" else open(spec))
        except (OSError, json.JSONDecodeError) as exc:
            raise CommandError(f"Cannot read the spec {spec}: {exc}") from None
        if not isinstance(data, dict):
            raise CommandError("The spec must be a JSON object.")
        unknown = set(data) - {"users", "variants", "campaign", "close"}
        if unknown:
            raise CommandError(f"Unknown keys in the spec: {sorted(unknown)}.")
        try:
            with transaction.atomic():
                result = setup(data)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            raise CommandError(f"Bad spec: {exc}") from None
        self.stdout.write(json.dumps(result))


def setup(data: dict) -> dict:
    users = {}
    for user in data.get("users", []):
        if user["role"] not in ROLES:
            raise ValueError(f"role {user['role']!r} is not one of {', '.join(ROLES)}")
        users[user["username"]] = create_user_with_role(user["username"], user["password"], user["role"]).pk
    variants = {}
    for spec in data.get("variants", []):
        _check_keys(spec, {"name", *VARIANT_FIELDS}, "variant")
        variant, created = AgentVariant.objects.get_or_create(
            name=spec["name"], defaults={k: spec[k] for k in VARIANT_FIELDS if k in spec})
        if created:
            variant.full_clean()
        variants[variant.name] = variant.pk
    result = {"users": users, "variants": variants}
    if "campaign" in data:
        result["campaign"] = _campaign(data["campaign"])
        result["variants"].update({name: pk for name, pk in AgentVariant.objects.filter(
            pk__in=[result["campaign"]["variant_a"], result["campaign"]["variant_b"]]).values_list("name", "pk")})
    closed = Campaign.objects.filter(slug__in=data.get("close", [])).exclude(status=Campaign.Status.CLOSED)
    result["closed"] = sorted(closed.values_list("slug", flat=True))
    closed.update(status=Campaign.Status.CLOSED)
    return result


def _campaign(spec: dict) -> dict:
    _check_keys(spec, {"slug", "variant_a", "variant_b", "scenarios", *CAMPAIGN_FIELDS}, "campaign")
    found = {v.name: v for v in AgentVariant.objects.filter(name__in=[spec["variant_a"], spec["variant_b"]])}
    for key in ("variant_a", "variant_b"):
        if spec[key] not in found:
            raise ValueError(f"{key}: no variant is named {spec[key]!r}")
    campaign, created = Campaign.objects.get_or_create(slug=spec["slug"], defaults={
        "variant_a": found[spec["variant_a"]], "variant_b": found[spec["variant_b"]],
        "status": Campaign.Status.ACTIVE, **{k: spec[k] for k in CAMPAIGN_FIELDS if k in spec}})
    if created:
        campaign.full_clean()
        for position, scenario in enumerate(spec["scenarios"]):
            _check_keys(scenario, set(SCENARIO_FIELDS), "scenario")
            row = Scenario(campaign=campaign, position=position, **scenario)
            row.full_clean()
            row.save()
    return {"id": campaign.pk, "slug": campaign.slug, "created": created, "variant_a": campaign.variant_a_id,
            "variant_b": campaign.variant_b_id,
            "scenarios": list(campaign.scenarios.order_by("position").values_list("pk", flat=True))}


def _check_keys(spec: dict, allowed: set[str], what: str) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(f"unknown keys of a {what}: {sorted(unknown)}")
