"""Assignments: handing an item (a scenario) to an annotator under an expiring lock.

An item is *held* by an assignment that is completed, or active and not yet expired. At most
``Campaign.overlap`` assignments hold an item at a time; an expired lock frees its slot for
someone else, and the (scenario, annotator) unique constraint means the annotator whose lock
expired never gets that item back.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from labeling_app.actions import Refused
from labeling_app.models import Assignment, Campaign, Scenario

# Items tried per claim when a locked candidate turns out to be full after the recount (another
# claim committed in between). Each try is two small queries; a few are plenty.
MAX_CLAIM_TRIES = 5


def holding(now) -> Q:
    """Assignments that occupy one of an item's ``overlap`` slots at ``now``."""
    return Q(status=Assignment.Status.COMPLETED) | Q(status=Assignment.Status.ACTIVE, expires_at__gt=now)


def do_claim_next_assignment(annotator) -> tuple[Assignment | None, bool]:
    """Resume the annotator's own unexpired assignment, else claim the first free item.

    Returns ``(assignment, resumed)``, or ``(None, False)`` when no active campaign has an item
    for this annotator. Locks, in this order: the annotator's user row (one claim at a time per
    person, so a double click cannot hold two items), then one candidate scenario row at a time
    (``SKIP LOCKED`` on PostgreSQL, so concurrent claimers spread over items instead of
    queueing, waiting only when every free item is being claimed; on SQLite the IMMEDIATE
    transaction already serialises writers). The holders of a locked scenario are counted again
    *after* the lock is taken, in a new statement, so a claim committed meanwhile is seen. Locks
    are ``FOR NO KEY UPDATE``: they exclude other claimers but not the foreign-key checks of
    rows inserted elsewhere for the same scenario.
    """
    now = timezone.now()
    # Resuming reads only the annotator's own rows: no lock, no transaction (the common case).
    current = _current_assignment(annotator, now)
    if current is not None:
        return current, True
    with transaction.atomic():
        users = get_user_model().objects.select_for_update(no_key=True)
        list(users.filter(pk=annotator.pk).values_list("pk"))
        Assignment.objects.filter(
            annotator=annotator, status=Assignment.Status.ACTIVE, expires_at__lte=now
        ).update(status=Assignment.Status.EXPIRED)
        current = _current_assignment(annotator, now)  # a concurrent claim of this annotator's
        if current is not None:
            return current, True

        holders = (
            Assignment.objects.filter(holding(now), scenario=OuterRef("pk"))
            .order_by()
            .values("scenario")
            .annotate(n=Count("pk"))
            .values("n")
        )
        free = (
            Scenario.objects.filter(campaign__status=Campaign.Status.ACTIVE)
            .exclude(pk__in=Assignment.objects.filter(annotator=annotator).values("scenario"))
            .annotate(holders=Coalesce(Subquery(holders), 0))
            .filter(holders__lt=F("campaign__overlap"))
            .order_by("campaign_id", "position", "pk")
        )
        tried: list[int] = []
        for _ in range(MAX_CLAIM_TRIES):
            untried = free.exclude(pk__in=tried)
            # Prefer an item nobody is claiming right now; when every free item is being claimed
            # (one item, overlap 2), wait for the first one's claimer: it may leave a slot.
            row = _lock_first(untried, skip_locked=True) or _lock_first(untried, skip_locked=False)
            if row is None:
                return None, False
            scenario_id, overlap, lock_minutes = row
            if Assignment.objects.filter(holding(now), scenario_id=scenario_id).count() < overlap:
                assignment = Assignment.objects.create(
                    scenario_id=scenario_id,
                    annotator=annotator,
                    expires_at=now + timedelta(minutes=lock_minutes),
                )
                return assignment, False
            tried.append(scenario_id)
    return None, False


def _current_assignment(annotator, now) -> Assignment | None:
    """The annotator's oldest unexpired assignment in an active campaign, if any."""
    return (
        Assignment.objects.filter(
            annotator=annotator,
            status=Assignment.Status.ACTIVE,
            expires_at__gt=now,
            scenario__campaign__status=Campaign.Status.ACTIVE,
        )
        .order_by("created_at")
        .first()
    )


def _lock_first(scenarios, skip_locked: bool):
    return (
        scenarios.select_for_update(skip_locked=skip_locked, of=("self",), no_key=True)
        .values_list("pk", "campaign__overlap", "campaign__lock_minutes")
        .first()
    )


def ensure_still_held(assignment: Assignment, campaign: Campaign, renew: bool) -> None:
    """Raise ``Refused`` unless the annotator may still work on ``assignment``.

    With ``renew`` the lock starts again from now (an upload: sampling time is not the
    annotator's time).

    Precondition: the caller holds the assignment's row lock inside a transaction. An expired
    lock is forgiven (and renewed) when no one else took the freed slot meanwhile, so slow
    annotators lose their work only when the item really went to someone else.
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
    if assignment.expires_at <= now:
        list(Scenario.objects.select_for_update(no_key=True).filter(pk=assignment.scenario_id).values_list("pk"))
        others = (
            Assignment.objects.filter(holding(now), scenario_id=assignment.scenario_id)
            .exclude(pk=assignment.pk)
            .count()
        )
        if others >= campaign.overlap:
            raise Refused(
                f"Your time on this item ({campaign.lock_minutes} minutes) ran out and another "
                "annotator took it. Go on to the next item."
            )
    if renew:
        assignment.expires_at = now + timedelta(minutes=campaign.lock_minutes)
        assignment.save(update_fields=["expires_at"])


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
