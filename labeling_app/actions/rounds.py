"""Rounds: storing an annotator's checked turn and queueing both agents' responses to it."""

from __future__ import annotations

import secrets

from django.core.files import File
from django.db import transaction

from labeling_app.actions import Refused
from labeling_app.actions.assignments import ensure_still_held
from labeling_app.media_checks import CheckedMedia
from labeling_app.models import Assignment, Candidate, Round
from labeling_app.queue import send_task_on_commit

ROUND_NOT_FOUND = "This round does not exist or is not yours."

SAMPLE_TASK = "workers.sampling.sample_candidate"
# Seeds fit a signed 32-bit integer so every sampler (numpy, torch) accepts them as they are.
SEED_LIMIT = 2**31


def do_create_round(assignment_id: int, annotator, source: str, checked: CheckedMedia, path: str) -> Round:
    """Store the turn at ``path`` as the assignment's round, with one queued candidate per variant.

    Preconditions: ``checked`` is what ``media_checks.check_media_file(path)`` returned, and
    the assignment belongs to ``annotator`` (else ``Assignment.DoesNotExist``). The assignment
    row is locked for the transaction. The media file is written to storage only inside the
    transaction and deleted again if the transaction does not commit, so a refused or failed
    upload leaves no file behind. The sampling tasks are sent after commit.
    """
    rng = secrets.SystemRandom()
    stored: Round | None = None
    try:
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update(of=("self",), no_key=True)
                .select_related("scenario__campaign")
                .get(pk=assignment_id, annotator=annotator)
            )
            campaign = assignment.scenario.campaign
            if assignment.review_id is not None:
                raise Refused("This item asks you to judge a recorded pair, not to record a turn.")
            if Round.objects.filter(assignment=assignment).exists():
                raise Refused("You already recorded your turn for this item; its responses are on the way.")
            ensure_still_held(assignment, campaign, renew=True)
            round_ = Round(
                assignment=assignment,
                annotator=annotator,
                scenario=assignment.scenario,
                source=source,
                media_extension=checked.extension,
                media_sha256=checked.sha256,
                size_bytes=checked.size_bytes,
                container=checked.container,
                duration_seconds=checked.duration_seconds,
                has_audio=checked.has_audio,
                has_video=checked.has_video,
                variant_a_on_left=rng.random() < 0.5,
            )
            with open(path, "rb") as handle:
                round_.media.save("turn", File(handle), save=False)
            stored = round_
            round_.save()
            # Queued in random order: with a fixed order the first response ready would tell
            # which variant is which, however the sides are drawn.
            variants = [campaign.variant_a_id, campaign.variant_b_id]
            rng.shuffle(variants)
            for variant_id in variants:
                candidate = Candidate.objects.create(
                    round=round_, variant_id=variant_id, seed=rng.randrange(SEED_LIMIT)
                )
                send_task_on_commit(SAMPLE_TASK, candidate.id)
    except BaseException:
        if stored is not None and stored.media.name:
            stored.media.storage.delete(stored.media.name)
        raise
    return round_


def left_and_right(round_: Round, candidates, variant_a_id: int,
                   a_on_left: bool | None = None) -> tuple[Candidate, Candidate]:
    """The round's two candidates in the order the viewer sees them (left, right): the round's
    sides for its author, ``a_on_left`` (the review assignment's own) for a reviewer."""
    by_variant_a = {candidate.variant_id == variant_a_id: candidate for candidate in candidates}
    if len(by_variant_a) != 2:
        raise Candidate.DoesNotExist(f"Round {round_.pk} does not have one candidate per variant.")
    a, b = by_variant_a[True], by_variant_a[False]
    on_left = round_.variant_a_on_left if a_on_left is None else a_on_left
    return (a, b) if on_left else (b, a)
