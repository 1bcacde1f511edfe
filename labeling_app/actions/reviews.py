"""Reviews: sending recorded pairs to more annotators, gold answers, and a reviewer's vote.

A reviewer's item is an ``Assignment`` with ``review`` set (claimed by
``actions.assignments.do_claim_next_assignment``); their vote is a ``Comparison`` of the same
round's candidates with ``review`` set, in the sides this reviewer saw. Playback evidence is
kept per viewer: ``ClipServing.assignment`` and ``Assignment.compare_served_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from labeling_app.actions import Refused
from labeling_app.actions.assignments import ensure_still_held
from labeling_app.actions.comparisons import Vote
from labeling_app.actions.playback import ClipEvidence, playback_problem
from labeling_app.actions.rounds import left_and_right
from labeling_app.models import Assignment, Campaign, Candidate, ClipServing, Comparison, Round
from labeling_app.models.reviews import GOLD_FIELDS, GoldAnswer, GoldCategory, ReviewItem

REVIEW_NOT_FOUND = "This item does not exist or is not yours."


def reviewable_rounds(campaign: Campaign):
    """The campaign's rounds whose two candidates are both ready and that have no review yet."""
    return (
        Round.objects.filter(scenario__campaign=campaign, review__isnull=True)
        .annotate(ready=Count("candidates", filter=Q(candidates__status=Candidate.Status.READY)))
        .filter(ready=2)
    )


def do_create_reviews(campaign: Campaign, count: int, reviewers: int, by=None) -> list[ReviewItem]:
    """Send up to ``count`` of the campaign's finished, unreviewed rounds (oldest first) to
    ``reviewers`` more annotators each; returns the review items made."""
    if not 1 <= reviewers <= 20:
        raise Refused("A review needs between 1 and 20 reviewers.", 400)
    if count < 1:
        raise Refused("Choose at least one round to send to review.", 400)
    with transaction.atomic():
        rounds = list(reviewable_rounds(campaign).order_by("created_at", "pk")[:count])
        return [ReviewItem.objects.create(round=round_, reviewers=reviewers, created_by=by) for round_ in rounds]


def do_mark_gold(review: ReviewItem, answers: dict[str, str], by=None) -> GoldAnswer:
    """Make ``review`` a gold item with known ``answers`` ({field: GoldCategory value}, fields
    among overall and the campaign's dimensions), replacing earlier answers."""
    campaign = review.round.scenario.campaign
    allowed = ["overall", *campaign.dimensions]
    problems = [f"{field!r} is not judged in this campaign" for field in answers if field not in allowed]
    problems += [f"{field}: {value!r} is not one of {', '.join(GoldCategory.values)}"
                 for field, value in answers.items() if value not in GoldCategory.values]
    if answers.get("overall") == GoldCategory.BOTH_BAD:
        problems.append("overall: 'both_bad' is not an overall answer (first, second or tie)")
    if not answers:
        problems.append("give at least one known answer")
    if problems:
        raise Refused("Gold answer refused: " + "; ".join(problems) + ".", 400)
    values = {field: answers.get(field, "") for field in GOLD_FIELDS}
    with transaction.atomic():
        gold, created = GoldAnswer.objects.select_for_update().get_or_create(
            review=review, defaults={**values, "created_by": by})
        if not created:
            for field, value in values.items():
                setattr(gold, field, value)
            gold.save()  # through save(), so the audit trail records the change
    return gold


def own_review_assignment(annotator, assignment_id: int) -> Assignment | None:
    return (
        Assignment.objects.filter(pk=assignment_id, annotator=annotator, review__isnull=False)
        .select_related("review__round__scenario__campaign")
        .first()
    )


def review_sides(assignment: Assignment, variant_a_id: int) -> tuple[Candidate, Candidate]:
    round_ = assignment.review.round
    candidates = list(Candidate.objects.filter(round=round_).order_by("pk"))
    return left_and_right(round_, candidates, variant_a_id, a_on_left=assignment.variant_a_on_left)


def do_record_review_compare_served(assignment: Assignment) -> None:
    """Remember when this reviewer's comparison page was first sent (later loads keep it)."""
    if assignment.compare_served_at is None:
        now = timezone.now()
        Assignment.objects.filter(pk=assignment.pk, compare_served_at__isnull=True).update(compare_served_at=now)
        assignment.compare_served_at = now


def do_submit_review_vote(annotator, assignment_id: int,
                          vote_for: Callable[[list[str]], Vote]) -> tuple[Comparison, bool]:
    """Save a reviewer's vote on the pair of their review assignment and complete it.

    As ``actions.comparisons.do_submit_comparison``: ``vote_for`` validates against the
    campaign's dimensions once the assignment row is locked; refused without this reviewer's
    own playback evidence; idempotent by ``submission_token``. The ORM is enough here: a
    review is one vote among many, not the hot path of every annotator.
    """
    token: uuid.UUID | None = None
    try:
        with transaction.atomic():
            assignment = (
                Assignment.objects.select_for_update(of=("self",), no_key=True)
                .select_related("review__round__scenario__campaign")
                .filter(pk=assignment_id, annotator=annotator, review__isnull=False)
                .first()
            )
            if assignment is None:
                raise Refused(REVIEW_NOT_FOUND, 404)
            review = assignment.review
            campaign = review.round.scenario.campaign
            vote = vote_for(campaign.dimensions)
            token = vote.submission_token
            if assignment.status == Assignment.Status.COMPLETED:
                prior = Comparison.objects.filter(review=review, annotator=annotator).first()
                if prior is not None and prior.submission_token == vote.submission_token:
                    return prior, False
                raise Refused("You already submitted your judgment of this pair. Go on to the next item.")
            ensure_still_held(assignment, campaign, renew=False)
            left, right = review_sides(assignment, campaign.variant_a_id)
            if left.status != Candidate.Status.READY or right.status != Candidate.Status.READY:
                raise Refused("Both responses must be ready and played before you vote.")
            served = {s.candidate_id: s for s in ClipServing.objects.filter(assignment=assignment)}
            clips = [ClipEvidence(side, candidate.duration_seconds,
                                  getattr(served.get(candidate.pk), "size_bytes", None),
                                  getattr(served.get(candidate.pk), "served_bytes", None))
                     for side, candidate in (("A (left)", left), ("B (right)", right))]
            problem = playback_problem(assignment.compare_served_at, clips, timezone.now())
            if problem:
                raise Refused(problem)
            comparison = Comparison.objects.create(
                submission_token=vote.submission_token, annotator=annotator, scenario_id=review.round.scenario_id,
                round=review.round, review=review, candidate_a=left, candidate_b=right, overall=vote.overall,
                strength=vote.strength, confidence=vote.confidence, rationale=vote.rationale,
                time_spent_ms=vote.time_spent_ms, plays_a=vote.plays_a, plays_b=vote.plays_b, **vote.judgments,
            )
            Assignment.objects.filter(pk=assignment.pk).update(
                status=Assignment.Status.COMPLETED, completed_at=timezone.now())
    except IntegrityError:
        existing = Comparison.objects.filter(submission_token=token).first() if token else None
        if existing is None:
            raise
        if existing.annotator_id == annotator.pk and existing.review_id == assignment.review_id:
            return existing, False
        raise Refused("This vote form was already used for another item. Reload the page and vote again.") from None
    return comparison, True
