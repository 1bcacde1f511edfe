"""The blind side-by-side comparison of a round's two responses, and the vote on it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling_app.actions import Refused
from labeling_app.actions.comparisons import Vote, do_submit_comparison
from labeling_app.actions.playback import do_record_compare_served
from labeling_app.actions.rounds import ROUND_NOT_FOUND, left_and_right
from labeling_app.forms import ComparisonForm
from labeling_app.models import DIMENSIONS, Candidate, Comparison, Judgment, Overall, Round
from labeling_app.models.choices import Strength
from labeling_app.views.access import annotator_required, json_error, page_error
from labeling_app.views.guidelines import GUIDE_BY_KEY
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


@require_GET
@annotator_required()
def compare(request: HttpRequest, round_id) -> HttpResponse:
    round_ = _own_round(request, round_id)
    if round_ is None:
        return page_error(request, ROUND_NOT_FOUND, 404)
    if Comparison.objects.filter(round=round_, review__isnull=True).exists():
        return redirect("labeling:workspace")
    campaign = round_.scenario.campaign
    left, right = left_and_right(round_, list(Candidate.objects.filter(round=round_).order_by("pk")), campaign.variant_a_id)
    if left.status != Candidate.Status.READY or right.status != Candidate.Status.READY:
        return redirect("labeling:item", round_.assignment_id)
    dimensions = [GUIDE_BY_KEY[d] for d in DIMENSIONS if d in campaign.dimensions]
    do_record_compare_served(round_)  # the vote must come at least the longer clip's duration later
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


class InvalidVote(Exception):
    """The posted vote does not validate; carries the bound form and its errors."""

    def __init__(self, form: ComparisonForm):
        super().__init__(form.errors.as_text())
        self.form = form


@require_POST
@annotator_required(json=True)
def vote(request: HttpRequest, round_id) -> JsonResponse:
    """Form-encoded POST of the vote (fields in ``ComparisonForm``). 201 on the first save, 200
    for a retry with the same ``submission_token``: ``{"comparison", "next_url"}``; 4xx ``{"error",
    "fields"}``."""
    return submit_vote(request, lambda validated: do_submit_comparison(request.user, round_id, validated))


def submit_vote(request: HttpRequest, submit: Callable[[Callable[[list[str]], Vote]], tuple[Comparison, bool]]
                ) -> JsonResponse:
    """Run ``submit(validated_vote)`` (an action) and answer as ``vote`` documents; shared by
    the author's vote and a reviewer's (``views.reviews``)."""

    def validated_vote(dimensions: list[str]) -> Vote:
        form = ComparisonForm(request.POST, dimensions=dimensions)
        if not form.is_valid():
            raise InvalidVote(form)
        return form.vote()

    try:
        comparison, created = submit(validated_vote)
    except InvalidVote as invalid:
        fields = {name: [str(e) for e in errors] for name, errors in invalid.form.errors.items()}
        return json_error(invalid.form.first_error(), 400, fields=fields)
    except Refused as refused:
        return json_error(refused.message, refused.status)
    return JsonResponse(
        {"comparison": str(comparison.public_id), "next_url": reverse("labeling:workspace") + "?saved=1"},
        status=201 if created else 200,
    )
