"""A review item on the annotator's side: the same blind comparison page, for a pair someone
else recorded, and the vote on it. Nothing on the page says whether the item is gold."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from labeling_app.actions.reviews import (
    REVIEW_NOT_FOUND,
    do_record_review_compare_served,
    do_submit_review_vote,
    own_review_assignment,
    review_sides,
)
from labeling_app.models import DIMENSIONS, Assignment, Candidate, Judgment, Overall
from labeling_app.models.choices import Strength
from labeling_app.views.access import annotator_required, page_error
from labeling_app.views.comparisons import JUDGMENT_KEYS, OVERALL_KEYS, submit_vote
from labeling_app.views.guidelines import GUIDE_BY_KEY
from labeling_app.views.workspace import describe_scene


@require_GET
@annotator_required()
def compare(request: HttpRequest, assignment_id: int) -> HttpResponse:
    assignment = own_review_assignment(request.user, assignment_id)
    if assignment is None:
        return page_error(request, REVIEW_NOT_FOUND, 404)
    if assignment.status == Assignment.Status.COMPLETED:
        return redirect("labeling:workspace")
    if assignment.status == Assignment.Status.EXPIRED:
        return page_error(request, "Your time on this item ran out and it was released. "
                          "Go back to the workspace for the next item.", 410)
    scenario = assignment.review.round.scenario
    campaign = scenario.campaign
    left, right = review_sides(assignment, campaign.variant_a_id)
    if left.status != Candidate.Status.READY or right.status != Candidate.Status.READY:
        return page_error(request, "This pair's responses are not available. Go back to the workspace.", 409)
    do_record_review_compare_served(assignment)  # the vote must come at least the longer clip's duration later
    return render(request, "labeling/compare.html", {
        "scenario": scenario,
        "scene": describe_scene(scenario.scene_objects),
        "campaign_guidelines": campaign.guidelines,
        "left_url": reverse("labeling:candidate-media", args=[left.public_id]),
        "right_url": reverse("labeling:candidate-media", args=[right.public_id]),
        "dimensions": [GUIDE_BY_KEY[d] for d in DIMENSIONS if d in campaign.dimensions],
        "judgment_choices": [(value, label, JUDGMENT_KEYS[value]) for value, label in Judgment.choices],
        "overall_choices": [(value, label, OVERALL_KEYS[value]) for value, label in Overall.choices],
        "strength_choices": Strength.choices,
        "confidence_choices": range(1, 6),
        "submission_token": uuid.uuid4(),
        "vote_url": reverse("labeling:review-vote", args=[assignment.pk]),
        "assignment_id": assignment.pk,
    })


@require_POST
@annotator_required(json=True)
def vote(request: HttpRequest, assignment_id: int) -> JsonResponse:
    """As ``comparisons.vote``, for a review assignment."""
    return submit_vote(request, lambda validated: do_submit_review_vote(request.user, assignment_id, validated))
