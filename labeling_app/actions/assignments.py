"""Assignments: handing an item (a scenario) to an annotator under an expiring lock.

One rule decides who holds an item (``holding``): an assignment holds one of the item's
``Campaign.overlap`` slots while it is completed, or active and either unexpired or waiting
for its round's candidates (sampling time is not the annotator's time; when the candidates are
done, ``extend_lock_after_sampling`` starts the lock again). An active assignment whose lock
lapsed is *lapsed*, not lost: it stops holding, so someone else may take the slot, but it stays
the annotator's (resumed by "next", accepted on upload and vote) until the slot is taken. Only
then is it lost (marked expired). The (scenario, annotator) unique constraint means the
annotator never gets that item back.

Review items (``models.reviews``) go through the same rule with their own slots: a review
assignment holds one of the review's ``reviewers`` slots, is unique per (review, annotator),
and is never offered to the round's author. "Next" offers a free review before a scenario:
it needs no recording and its clips exist, so agreement data grows without waiting for workers.
"""

from __future__ import annotations

from datetime import timedelta
from secrets import SystemRandom

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling_app.actions import Refused
from labeling_app.models import Assignment, Campaign, Candidate, ReviewItem, Scenario

PENDING = (Candidate.Status.QUEUED, Candidate.Status.RUNNING)


def holding(now) -> Q:
    """Assignments that occupy one of an item's ``overlap`` slots at ``now``."""
    sampling = Exists(Candidate.objects.filter(round__assignment=OuterRef("pk"), status__in=PENDING))
    return Q(status=Assignment.Status.COMPLETED) | Q(status=Assignment.Status.ACTIVE) & (
        Q(expires_at__gt=now) | sampling
    )


def do_claim_next_assignment(annotator) -> tuple[Assignment | None, bool]:
    """Resume the annotator's own assignment, else claim the first free item.

    Returns ``(assignment, resumed)``, or ``(None, False)`` when no active campaign has an item
    for this annotator. An assignment that still holds its slot is resumed as it is; a lapsed one
    whose slot nobody took is resumed with a new lock, one whose slot was taken is marked expired.

    Locks, in this order: the annotator's user row (one claim at a time per person, so a double
    click cannot hold two items), then one candidate scenario row at a time (``SKIP LOCKED`` on
    PostgreSQL, so concurrent claimers spread over items instead of queueing, waiting only when
    every free item is being claimed; on SQLite the IMMEDIATE transaction already serialises
    writers). The holders of a locked scenario are counted again *after* the lock is taken, in a
    new statement, so a claim committed meanwhile is seen; a scenario found full that way is
    left out and the next one tried, until none is left, so contention alone never answers "no
    item". Locks are ``FOR NO KEY UPDATE``: they exclude other claimers but not the foreign-key
    checks of rows inserted elsewhere for the same scenario.
    """
    now = timezone.now()
    # Resuming reads only the annotator's own rows: no lock, no transaction (the common case).
    current = _current_assignment(annotator, now)
    if current is not None:
        return current, True
    with transaction.atomic():
        users = get_user_model().objects.select_for_update(no_key=True)
        list(users.filter(pk=annotator.pk).values_list("pk"))
        current = _current_assignment(annotator, now)  # a concurrent claim of this annotator's
        if current is not None:
            return current, True
        lapsed = (
            Assignment.objects.filter(annotator=annotator, status=Assignment.Status.ACTIVE,
                                      scenario__campaign__status=Campaign.Status.ACTIVE)
            .select_related("scenario__campaign", "review")
            .order_by("created_at")
        )
        for assignment in lapsed:
            campaign = assignment.scenario.campaign
            if not _slot_taken(assignment, _capacity(assignment, campaign), now):
                _renew(assignment, campaign, now)
                return assignment, True
            assignment.status = Assignment.Status.EXPIRED
            assignment.save(update_fields=["status"])

        review = _claim_free_review(annotator, now, wait=False)
        if review is not None:
            return review, False
        holders = (
            Assignment.objects.filter(holding(now), scenario=OuterRef("pk"), review__isnull=True)
            .order_by()
            .values("scenario")
            .annotate(n=Count("pk"))
            .values("n")
        )
        free = (
            Scenario.objects.filter(campaign__status=Campaign.Status.ACTIVE)
            .exclude(pk__in=Assignment.objects.filter(annotator=annotator, review__isnull=True).values("scenario"))
            .annotate(holders=Coalesce(Subquery(holders), 0))
            .filter(holders__lt=F("campaign__overlap"))
            .order_by("campaign_id", "position", "pk")
        )
        tried: list[int] = []
        while True:  # ends: every turn either claims or leaves one more scenario out
            untried = free.exclude(pk__in=tried)
            # Prefer an item nobody is claiming right now; when every free item is being claimed
            # (one item, overlap 2), wait for the first one's claimer: it may leave a slot.
            row = _lock_first(untried, skip_locked=True) or _lock_first(untried, skip_locked=False)
            if row is None:  # last, a review item every other claimer is taking at this instant
                review = _claim_free_review(annotator, now, wait=True)
                return review, False
            scenario_id, overlap, lock_minutes = row
            if Assignment.objects.filter(holding(now), scenario_id=scenario_id, review__isnull=True).count() < overlap:
                assignment = Assignment.objects.create(
                    scenario_id=scenario_id,
                    annotator=annotator,
                    expires_at=now + timedelta(minutes=lock_minutes),
                )
                return assignment, False
            tried.append(scenario_id)


def _claim_free_review(annotator, now, wait: bool) -> Assignment | None:
    """A new review assignment on the first review item with a free slot that the annotator did
    not author and never held, with this viewer's own random sides; None when there is none.

    Locks review rows as scenarios are locked, counting the holders again under the lock:
    ``SKIP LOCKED`` only, unless ``wait`` (then, when every free review is being claimed, it
    waits for the first one's claimer). Without ``wait`` it costs the common claim one query.
    Precondition: inside the claim's transaction.
    """
    holders = (
        Assignment.objects.filter(holding(now), review=OuterRef("pk"))
        .order_by().values("review").annotate(n=Count("pk")).values("n")
    )
    free = (
        ReviewItem.objects.filter(round__scenario__campaign__status=Campaign.Status.ACTIVE)
        .exclude(round__annotator=annotator)
        .exclude(pk__in=Assignment.objects.filter(annotator=annotator, review__isnull=False).values("review"))
        .annotate(holders=Coalesce(Subquery(holders), 0))
        .filter(holders__lt=F("reviewers"))
        .order_by("pk")
    )
    tried: list[int] = []
    while True:  # ends: every turn either claims or leaves one more review out
        untried = free.exclude(pk__in=tried)
        row = _lock_first_review(untried, skip_locked=True)
        if row is None and wait:
            row = _lock_first_review(untried, skip_locked=False)
        if row is None:
            return None
        review_id, reviewers, scenario_id, lock_minutes = row
        if Assignment.objects.filter(holding(now), review_id=review_id).count() < reviewers:
            return Assignment.objects.create(
                scenario_id=scenario_id, annotator=annotator, review_id=review_id,
                variant_a_on_left=SystemRandom().random() < 0.5,
                expires_at=now + timedelta(minutes=lock_minutes),
            )
        tried.append(review_id)


def _lock_first_review(reviews, skip_locked: bool):
    return (
        reviews.select_for_update(skip_locked=skip_locked, of=("self",), no_key=True)
        .values_list("pk", "reviewers", "round__scenario_id", "round__scenario__campaign__lock_minutes")
        .first()
    )


def _capacity(assignment: Assignment, campaign: Campaign) -> int:
    """How many may hold the assignment's item: the review's reviewers, or the campaign's overlap."""
    return assignment.review.reviewers if assignment.review_id is not None else campaign.overlap


def _current_assignment(annotator, now) -> Assignment | None:
    """The annotator's oldest assignment that holds its slot in an active campaign, if any."""
    return (
        Assignment.objects.filter(
            holding(now),
            annotator=annotator,
            status=Assignment.Status.ACTIVE,
            scenario__campaign__status=Campaign.Status.ACTIVE,
        )
        .order_by("created_at")
        .first()
    )


def _slot_taken(assignment: Assignment, overlap: int, now) -> bool:
    """Whether others hold all ``overlap`` slots of a lapsed assignment's item (it is lost then).

    Locks the scenario (or review) row first, as claimers do, so no claim slips in between count
    and use.
    """
    if assignment.review_id is not None:
        list(ReviewItem.objects.select_for_update(no_key=True).filter(pk=assignment.review_id).values_list("pk"))
        same_item = Q(review_id=assignment.review_id)
    else:
        list(Scenario.objects.select_for_update(no_key=True).filter(pk=assignment.scenario_id).values_list("pk"))
        same_item = Q(scenario_id=assignment.scenario_id, review__isnull=True)
    others = Assignment.objects.filter(holding(now), same_item).exclude(pk=assignment.pk).count()
    return others >= overlap


def _renew(assignment: Assignment, campaign: Campaign, now) -> None:
    assignment.expires_at = now + timedelta(minutes=campaign.lock_minutes)
    assignment.save(update_fields=["expires_at"])


def _lock_first(scenarios, skip_locked: bool):
    return (
        scenarios.select_for_update(skip_locked=skip_locked, of=("self",), no_key=True)
        .values_list("pk", "campaign__overlap", "campaign__lock_minutes")
        .first()
    )


def ensure_still_held(assignment: Assignment, campaign: Campaign, renew: bool) -> None:
    """Raise ``Refused`` unless the annotator may still work on ``assignment``.

    With ``renew`` the lock starts again from now (an upload: sampling time is not the
    annotator's time). A lapsed lock is kept while nobody took the freed slot (``holding``).

    Precondition: the caller holds the assignment's row lock inside a transaction.
    """
    now = timezone.now()
    if assignment.status == Assignment.Status.COMPLETED:
        raise Refused("You already finished this item. Go on to the next one.")
    if assignment.status != Assignment.Status.ACTIVE:
        raise Refused(
            "Your time on this item ran out and it was released. Go on to the next item."
        )
    if campaign.status != Campaign.Status.ACTIVE:
        raise Refused("This campaign is paused or closed; your work on it cannot be saved now.")
    if assignment.expires_at <= now and _slot_taken(assignment, _capacity(assignment, campaign), now):
        raise Refused(
            f"Your time on this item ({campaign.lock_minutes} minutes) ran out and another "
            "annotator took it. Go on to the next item."
        )
    if renew:
        _renew(assignment, campaign, now)


def extend_lock_after_sampling(round_id: int) -> None:
    """Give the annotator a full lock from now, once a candidate of their round is done.

    Called by the workers' transitions to ready or failed: the annotator waited for the
    responses, so their time to watch and judge them starts only now. A lock already longer
    is kept.
    """
    assignment = (
        Assignment.objects.filter(round__pk=round_id, status=Assignment.Status.ACTIVE)
        .values_list("pk", "scenario__campaign__lock_minutes")
        .first()
    )
    if assignment is not None:
        pk, lock_minutes = assignment
        until = timezone.now() + timedelta(minutes=lock_minutes)
        Assignment.objects.filter(pk=pk, expires_at__lt=until).update(expires_at=until)


def do_release_assignment(assignment_id: int, annotator) -> None:
    """Give an unfinished item back (camera broken, a response failed): the slot is freed.

    The annotator does not get the item again (the assignment row stays, marked expired).
    """
    with transaction.atomic():
        assignment = Assignment.objects.select_for_update(no_key=True).get(pk=assignment_id, annotator=annotator)
        if assignment.status == Assignment.Status.COMPLETED:
            raise Refused("You already finished this item; it cannot be given back.")
        if assignment.status == Assignment.Status.ACTIVE:
            assignment.status = Assignment.Status.EXPIRED
            assignment.save(update_fields=["status"])
