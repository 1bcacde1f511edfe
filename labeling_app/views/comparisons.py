"""The blind side-by-side comparison of a round's two responses, and the vote on it."""

from __future__ import annotations

import uuid

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling_app.actions import Refused
from labeling_app.actions.comparisons import do_submit_comparison, loaded_fields
from labeling_app.actions.rounds import left_and_right
from labeling_app.forms import ComparisonForm
from labeling_app.models import DIMENSIONS, Campaign, Candidate, Comparison, Judgment, Overall, Round, Scenario
from labeling_app.models.choices import Strength
from labeling_app.views.access import annotator_required, json_error, page_error
from labeling_app.views.guidelines import GUIDE_BY_KEY
from labeling_app.views.rounds import ROUND_NOT_FOUND
from labeling_app.views.workspace import describe_scene

# Keyboard shortcut of each per-dimension choice; the page shows this table too.
JUDGMENT_KEYS = {Judgment.A: "a", Judgment.B: "b", Judgment.TIE: "t", Judgment.BOTH_BAD: "x",
                 Judgment.NOT_APPLICABLE: "n"}
OVERALL_KEYS = {Overall.A: "a", Overall.B: "b", Overall.TIE: "t"}


def _own_round(request: HttpRequest, round_id) -> Round | None:
    return (
        Round.objects.filter(public_id=round_id, annotator=request.user)
        .select_related("scenario__campaign")
        .first()
    )


def _round_to_vote_on(request: HttpRequest, round_id) -> Round | None:
    """The annotator's round with what a vote reads of it and its campaign, or None.

    One raw statement: the vote is the hottest request, and compiling an ORM query with two
    joins cost more Python than the database spends answering it. The instances hold only these
    fields (any other loads on access, see ``loaded_fields``).
    """
    quote = connection.ops.quote_name
    sql = (
        "SELECT r.id, r.assignment_id, r.scenario_id, r.variant_a_on_left, s.campaign_id, c.status, "
        "c.dimensions, c.variant_a_id, c.overlap, c.lock_minutes "
        f"FROM {quote(Round._meta.db_table)} r "
        f"JOIN {quote(Scenario._meta.db_table)} s ON s.id = r.scenario_id "
        f"JOIN {quote(Campaign._meta.db_table)} c ON c.id = s.campaign_id "
        "WHERE r.public_id = %s AND r.annotator_id = %s"
    )
    public_id = Round._meta.get_field("public_id").get_db_prep_value(round_id, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [public_id, request.user.pk])
        row = cursor.fetchone()
    if row is None:
        return None
    pk, assignment_id, scenario_id, variant_a_on_left, campaign_id, status, dimensions, variant_a_id, overlap, \
        lock_minutes = row
    campaign = loaded_fields(
        Campaign, id=campaign_id, status=status, variant_a_id=variant_a_id, overlap=overlap, lock_minutes=lock_minutes,
        dimensions=Campaign._meta.get_field("dimensions").from_db_value(dimensions, None, connection),
    )
    scenario = loaded_fields(Scenario, id=scenario_id, campaign_id=campaign_id)
    scenario.campaign = campaign
    round_ = loaded_fields(Round, id=pk, public_id=round_id, assignment_id=assignment_id, scenario_id=scenario_id,
                           annotator_id=request.user.pk, variant_a_on_left=bool(variant_a_on_left))
    round_.scenario = scenario
    return round_


@require_GET
@annotator_required()
def compare(request: HttpRequest, round_id) -> HttpResponse:
    round_ = _own_round(request, round_id)
    if round_ is None:
        return page_error(request, ROUND_NOT_FOUND, 404)
    if Comparison.objects.filter(round=round_).exists():
        return redirect("labeling:workspace")
    campaign = round_.scenario.campaign
    left, right = left_and_right(round_, list(Candidate.objects.filter(round=round_).order_by("pk")), campaign.variant_a_id)
    if left.status != Candidate.Status.READY or right.status != Candidate.Status.READY:
        return redirect("labeling:item", round_.assignment_id)
    dimensions = [GUIDE_BY_KEY[d] for d in DIMENSIONS if d in campaign.dimensions]
    return render(request, "labeling/compare.html", {
        "round": round_,
        "scenario": round_.scenario,
        "scene": describe_scene(round_.scenario.scene_objects),
        "campaign_guidelines": campaign.guidelines,
        "left_url": reverse("labeling:candidate-media", args=[left.public_id]),
        "right_url": reverse("labeling:candidate-media", args=[right.public_id]),
        "dimensions": dimensions,
        "judgment_choices": [(value, label, JUDGMENT_KEYS[value]) for value, label in Judgment.choices],
        "overall_choices": [(value, label, OVERALL_KEYS[value]) for value, label in Overall.choices],
        "strength_choices": Strength.choices,
        "confidence_choices": range(1, 6),
        "submission_token": uuid.uuid4(),
        "vote_url": reverse("labeling:vote", args=[round_.public_id]),
        "assignment_id": round_.assignment_id,
    })


@require_POST
@annotator_required(json=True)
def vote(request: HttpRequest, round_id) -> JsonResponse:
    """Form-encoded POST of the vote (fields in ``ComparisonForm``). 201 on the first save, 200
    for a retry with the same ``submission_token``: ``{"comparison", "next_url"}``; 4xx ``{"error",
    "fields"}``."""
    round_ = _round_to_vote_on(request, round_id)
    if round_ is None:
        return json_error(ROUND_NOT_FOUND, 404)
    form = ComparisonForm(request.POST, dimensions=round_.scenario.campaign.dimensions)
    if not form.is_valid():
        fields = {name: [str(e) for e in errors] for name, errors in form.errors.items()}
        return json_error(form.first_error(), 400, fields=fields)
    try:
        comparison, created = do_submit_comparison(round_, request.user, form.vote())
    except Refused as refused:
        return json_error(refused.message, refused.status)
    return JsonResponse(
        {"comparison": str(comparison.public_id), "next_url": reverse("labeling:workspace") + "?saved=1"},
        status=201 if created else 200,
    )
