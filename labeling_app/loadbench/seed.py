"""Seed the benchmark database: annotators, and items whose two candidates are ready to judge.

Rounds and candidates are written directly (no upload, no sampling): the benchmark measures
the site's next-item and vote endpoints, not the workers. Every candidate points at one short
stored clip, which the simulated annotators fetch before they vote, as a browser plays it (the
site refuses a vote without that playback evidence).
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from labeling_app.models import AgentVariant, Assignment, Campaign, Candidate, Round, Scenario

PASSWORD = "loadbench-password"
USERNAME = "loadbench-{:03d}"
# The clip every candidate shows: short, so that a vote may follow its fetch almost at once.
CLIP_SECONDS = 0.5
CLIP_BYTES = 48 * 1024


@transaction.atomic
def seed(items_per_annotator: list[int]) -> dict[str, list[str]]:
    """Create ``len(items_per_annotator)`` annotators, annotator i holding that many active items.

    Returns {username: [round public ids, oldest item first]}: what each annotator will judge.
    """
    User = get_user_model()
    group = Group.objects.get(name="annotator")
    password = make_password(PASSWORD)  # hashed once: every bench user shares it
    users = User.objects.bulk_create(
        [User(username=USERNAME.format(i), password=password) for i in range(len(items_per_annotator))]
    )
    group.user_set.add(*users)
    variant_a = AgentVariant.objects.create(name=f"loadbench-a-{uuid.uuid4().hex[:6]}")
    variant_b = AgentVariant.objects.create(name=f"loadbench-b-{uuid.uuid4().hex[:6]}", audio_temperature=0.7)
    campaign = Campaign.objects.create(
        name="Load benchmark", slug=f"loadbench-{uuid.uuid4().hex[:6]}", variant_a=variant_a,
        variant_b=variant_b, overlap=1, status=Campaign.Status.ACTIVE, lock_minutes=24 * 60,
    )
    owners = [user for user, count in zip(users, items_per_annotator) for _ in range(count)]
    clip = default_storage.save("candidates/loadbench/clip.mp4", ContentFile(random.randbytes(CLIP_BYTES)))
    scenarios = Scenario.objects.bulk_create(
        [Scenario(campaign=campaign, title=f"item {n}", instructions="Say hello.", position=n)
         for n in range(len(owners))]
    )
    expires = timezone.now() + timedelta(days=1)
    assignments = Assignment.objects.bulk_create(
        [Assignment(scenario=scenario, annotator=user, expires_at=expires)
         for scenario, user in zip(scenarios, owners)]
    )
    rounds = Round.objects.bulk_create(
        [Round(assignment=assignment, annotator=assignment.annotator, scenario=assignment.scenario,
               source=Round.Source.UPLOADED, media=f"rounds/loadbench/{assignment.pk}.webm", media_extension="webm",
               media_sha256="0" * 64, size_bytes=1, container="webm", duration_seconds=2.0,
               has_audio=True, has_video=True, variant_a_on_left=random.random() < 0.5)
         for assignment in assignments]
    )
    Candidate.objects.bulk_create(
        [Candidate(round=round_, variant=variant, seed=random.randrange(2**31), status=Candidate.Status.READY,
                   progress=1.0, media=clip, duration_seconds=CLIP_SECONDS)
         for round_ in rounds for variant in (variant_a, variant_b)]
    )
    rounds_by_user: dict[str, list[str]] = {user.username: [] for user in users}
    for round_, owner in zip(rounds, owners):
        rounds_by_user[owner.username].append(str(round_.public_id))
    return rounds_by_user
