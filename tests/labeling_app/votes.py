"""Write many comparisons fast for the statistics tests: rows in bulk, no media, no workers.

A vote is given by the variant it prefers (``"A"``/``"B"``/``"tie"``/``"both_bad"`` for the
campaign's variants) and the side the campaign's variant A was shown on, so a test knows the
truth independently of how the site stores sides.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from labeling_app.models import DIMENSIONS, Assignment, Campaign, Candidate, Comparison, Round

SIDE = {("A", True): "a", ("A", False): "b", ("B", True): "b", ("B", False): "a"}


@dataclass
class Vote:
    annotator: object
    scenario: object
    overall: str  # "A", "B" or "tie"
    a_on_left: bool = True
    dimensions: dict[str, str] = field(default_factory=dict)  # "A", "B", "tie", "both_bad", "na"
    time_ms: int = 20_000
    submitted_at: datetime | None = None


def as_side(preference: str, a_on_left: bool) -> str:
    return SIDE.get((preference, a_on_left), {"tie": "tie", "both_bad": "both_bad", "na": "na"}.get(preference))


def write_votes(campaign: Campaign, votes: list[Vote]) -> list[Comparison]:
    now = timezone.now()
    assignments = Assignment.objects.bulk_create([
        Assignment(scenario=v.scenario, annotator=v.annotator, status=Assignment.Status.COMPLETED,
                   expires_at=now + timedelta(minutes=30), completed_at=now) for v in votes])
    rounds = Round.objects.bulk_create([
        Round(assignment=a, annotator=v.annotator, scenario=v.scenario, source="uploaded",
              media=f"rounds/test/{uuid.uuid4().hex}.webm", media_extension="webm", media_sha256="0" * 64,
              size_bytes=1, container="webm", duration_seconds=2.0, has_audio=True, has_video=True,
              variant_a_on_left=v.a_on_left) for a, v in zip(assignments, votes)])
    candidates = Candidate.objects.bulk_create([
        Candidate(round=r, variant=variant, seed=seed, status=Candidate.Status.READY, progress=1.0)
        for r in rounds for variant, seed in ((campaign.variant_a, 1), (campaign.variant_b, 2))])
    comparisons = []
    for index, (r, v) in enumerate(zip(rounds, votes)):
        first, second = candidates[2 * index], candidates[2 * index + 1]  # variant A's, variant B's
        left, right = (first, second) if v.a_on_left else (second, first)
        judgments = {d: as_side(v.dimensions.get(d, v.overall), v.a_on_left) for d in DIMENSIONS}
        overall = as_side(v.overall, v.a_on_left)
        comparisons.append(Comparison(
            submission_token=uuid.uuid4(), annotator=v.annotator, scenario=v.scenario, round=r,
            candidate_a=left, candidate_b=right, overall=overall, strength=1 if overall == "tie" else 2,
            confidence=3, time_spent_ms=v.time_ms, plays_a=1, plays_b=1, **judgments))
    comparisons = Comparison.objects.bulk_create(comparisons)
    stamped = [(c, v.submitted_at) for c, v in zip(comparisons, votes) if v.submitted_at]
    for comparison, when in stamped:  # auto_now_add ignores a value given at creation
        Comparison.objects.filter(pk=comparison.pk).update(submitted_at=when)
    return comparisons
