"""Comparisons: saving an annotator's vote on a pair, exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from labeling_app.actions import Refused
from labeling_app.actions.assignments import ensure_still_held
from labeling_app.actions.playback import ClipEvidence, playback_problem
from labeling_app.actions.rounds import ROUND_NOT_FOUND, left_and_right
from labeling_app.models import Assignment, Campaign, Candidate, ClipServing, Comparison, Round, Scenario


@dataclass(frozen=True)
class Vote:
    """A validated vote, oriented as shown: ``a`` = the left clip, ``b`` = the right one."""

    submission_token: uuid.UUID
    judgments: dict[str, str]  # every dimension; the ones not asked are "na"
    overall: str
    strength: int
    confidence: int
    rationale: str
    time_spent_ms: int
    plays_a: int
    plays_b: int


def do_submit_comparison(annotator, round_public_id: uuid.UUID,
                         vote_for: Callable[[list[str]], Vote]) -> tuple[Comparison, bool]:
    """Save the annotator's vote on their round and complete its assignment.

    Returns ``(comparison, created)``. ``vote_for(dimensions)`` validates the posted vote
    against the campaign's dimensions; it is called once the round is read and locked, and
    whatever it raises (an invalid form) propagates with nothing written.

    Refused unless the server has playback evidence (``actions.playback``): both clips served
    to the annotator and the longer one's duration passed since the comparison page was.

    Idempotent by the vote's ``submission_token``: a retried POST gets the first comparison
    back and creates nothing. The assignment row is locked, which serialises concurrent votes
    on one round (also two POSTs racing with the same token); the unique token is the last guard.
    """
    try:
        with transaction.atomic():
            round_, assignment, candidates = _lock_round(annotator, round_public_id)
            campaign = round_.scenario.campaign
            vote = vote_for(campaign.dimensions)
            # A vote completes its assignment in the same transaction, so only a completed
            # assignment can have a comparison: look for it only then (the hot path skips it).
            if assignment.status == Assignment.Status.COMPLETED:
                prior = Comparison.objects.filter(round=round_, review__isnull=True).first()
                if prior is not None and prior.submission_token == vote.submission_token:
                    return prior, False
                raise Refused("You already submitted your judgment of this pair. Go on to the next item.")
            ensure_still_held(assignment, campaign, renew=False)
            left, right = left_and_right(round_, candidates, campaign.variant_a_id)
            if left.status != Candidate.Status.READY or right.status != Candidate.Status.READY:
                raise Refused("Both responses must be ready and played before you vote.")
            problem = playback_problem(round_.compare_served_at, [
                ClipEvidence("A (left)", *left.evidence), ClipEvidence("B (right)", *right.evidence)],
                timezone.now())
            if problem:
                raise Refused(problem)
            comparison = Comparison(
                submission_token=vote.submission_token,
                annotator=annotator,
                scenario_id=round_.scenario_id,
                round=round_,
                candidate_a=left,
                candidate_b=right,
                overall=vote.overall,
                strength=vote.strength,
                confidence=vote.confidence,
                rationale=vote.rationale,
                time_spent_ms=vote.time_spent_ms,
                plays_a=vote.plays_a,
                plays_b=vote.plays_b,
                **vote.judgments,
            )
            _insert_and_complete(comparison, assignment)
    except IntegrityError:
        # The token is taken: by this vote's concurrent twin (its row is committed by now, the
        # assignment lock ordered us after it) or, wrongly, by a vote on another round.
        existing = _by_token(vote.submission_token)
        if existing is None:
            raise
        return _same_vote_or_refuse(existing, round_, annotator), False
    return comparison, True


def loaded_fields(model, **values):
    """An instance of ``model`` with only ``values`` (by attname) loaded and the rest deferred,
    as ``QuerySet.only()`` builds it; cheaper than ``model(...)``, which computes every default."""
    names = [field.attname for field in model._meta.concrete_fields if field.attname in values]
    return model.from_db(connection.alias, names, [values[name] for name in names])


def _lock_round(annotator, round_public_id: uuid.UUID) -> tuple[Round, Assignment, list[Candidate]]:
    """The annotator's round with its campaign, its assignment (row locked) and its candidates,
    each with its playback evidence (``candidate.evidence``: duration, size and bytes served).

    One statement, where the ORM would take five: the vote is the hottest request, and each
    ORM query costs more Python than the database spends answering it. The instances hold only
    the fields read here; any other loads on access (see ``loaded_fields``). Raises ``Refused``
    (404) when the round does not exist or is not the annotator's.

    The row lock is ``FOR NO KEY UPDATE OF`` the assignment (nothing else is locked); SQLite
    has no row locks, and its IMMEDIATE transaction already serialises writers.
    """
    quote = connection.ops.quote_name
    sql = (
        "SELECT r.id, r.assignment_id, r.scenario_id, r.variant_a_on_left, s.campaign_id, c.status, "
        "c.dimensions, c.variant_a_id, c.overlap, c.lock_minutes, a.status, a.expires_at, "
        "r.compare_served_at, cand.id, cand.variant_id, cand.status, cand.duration_seconds, "
        "cs.size_bytes, cs.served_bytes "
        f"FROM {quote(Round._meta.db_table)} r "
        f"JOIN {quote(Scenario._meta.db_table)} s ON s.id = r.scenario_id "
        f"JOIN {quote(Campaign._meta.db_table)} c ON c.id = s.campaign_id "
        f"JOIN {quote(Assignment._meta.db_table)} a ON a.id = r.assignment_id "
        f"LEFT JOIN {quote(Candidate._meta.db_table)} cand ON cand.round_id = r.id "
        f"LEFT JOIN {quote(ClipServing._meta.db_table)} cs ON cs.candidate_id = cand.id AND cs.assignment_id IS NULL "
        "WHERE r.public_id = %s AND r.annotator_id = %s ORDER BY cand.id"
    )
    if connection.features.has_select_for_update:
        sql += " FOR NO KEY UPDATE OF a" if connection.features.has_select_for_no_key_update else " FOR UPDATE"
    public_id = Round._meta.get_field("public_id").get_db_prep_value(round_public_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [public_id, annotator.pk])
        rows = cursor.fetchall()
    if not rows:
        raise Refused(ROUND_NOT_FOUND, 404)
    (pk, assignment_id, scenario_id, variant_a_on_left, campaign_id, campaign_status, dimensions, variant_a_id,
     overlap, lock_minutes, assignment_status, expires_at, compare_served_at) = rows[0][:13]
    expires_at, compare_served_at = _aware(expires_at), _aware(compare_served_at)
    campaign = loaded_fields(
        Campaign, id=campaign_id, status=campaign_status, variant_a_id=variant_a_id, overlap=overlap,
        lock_minutes=lock_minutes,
        dimensions=Campaign._meta.get_field("dimensions").from_db_value(dimensions, None, connection),
    )
    scenario = loaded_fields(Scenario, id=scenario_id, campaign_id=campaign_id)
    scenario.campaign = campaign
    round_ = loaded_fields(Round, id=pk, public_id=round_public_id, assignment_id=assignment_id,
                           scenario_id=scenario_id, annotator_id=annotator.pk,
                           variant_a_on_left=bool(variant_a_on_left), compare_served_at=compare_served_at)
    round_.scenario = scenario
    # A round's own assignment is never a review one (actions.rounds refuses to record on those).
    assignment = loaded_fields(Assignment, id=assignment_id, scenario_id=scenario_id, status=assignment_status,
                               expires_at=expires_at, review_id=None)
    candidates = []
    for *_, cand_pk, variant_id, status, duration, size_bytes, served_bytes in rows:
        if cand_pk is not None:
            candidate = loaded_fields(Candidate, id=cand_pk, round_id=pk, variant_id=variant_id, status=status,
                                      duration_seconds=duration)
            candidate.evidence = (duration, size_bytes, served_bytes)
            candidates.append(candidate)
    return round_, assignment, candidates


def _aware(value):
    if value is not None and settings.USE_TZ and timezone.is_naive(value):
        return timezone.make_aware(value, UTC)  # SQLite returns naive UTC
    return value


def _insert_and_complete(comparison: Comparison, assignment: Assignment) -> None:
    """Insert ``comparison`` and mark ``assignment`` completed; one statement on PostgreSQL.

    A data-modifying ``WITH`` runs both or neither (a taken token fails the whole statement),
    and saves a round trip and an ORM compilation on every vote. The columns and values come
    from the model's fields, as ``Model.save()`` would send them. Elsewhere: two ORM statements.
    """
    now = timezone.now()
    if connection.vendor != "postgresql":
        comparison.save(force_insert=True)
        Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.COMPLETED, completed_at=now)
        return
    fields = [field for field in Comparison._meta.local_concrete_fields if not field.primary_key]
    values = [field.get_db_prep_save(field.pre_save(comparison, add=True), connection) for field in fields]
    quote = connection.ops.quote_name
    assignments = quote(Assignment._meta.db_table)
    sql = (
        f"WITH completed AS (UPDATE {assignments} SET status = %s, completed_at = %s WHERE id = %s) "
        f"INSERT INTO {quote(Comparison._meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [Assignment.Status.COMPLETED.value, now, assignment.pk, *values])
        comparison.pk = cursor.fetchone()[0]
    comparison._state.adding = False
    comparison._state.db = connection.alias


def _by_token(token: uuid.UUID) -> Comparison | None:
    return Comparison.objects.filter(submission_token=token).only(
        "pk", "public_id", "round_id", "annotator_id", "submission_token"
    ).first()


def _same_vote_or_refuse(existing: Comparison, round_: Round, annotator) -> Comparison:
    if existing.round_id == round_.pk and existing.annotator_id == annotator.pk:
        return existing
    raise Refused("This vote form was already used for another item. Reload the page and vote again.")
