"""The annotator's workspace: the next item, one item's page, giving an item back, history."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from labeling_app import media_checks
from labeling_app.actions import Refused
from labeling_app.actions.assignments import do_claim_next_assignment, do_release_assignment, holding
from labeling_app.models import Assignment, Campaign, Candidate, Comparison, Round
from labeling_app.views.access import annotator_required, json_error, page_error, wants_json

ITEM_NOT_FOUND = "This item does not exist or is not yours."
NO_ITEM = "No item is waiting for you right now. Thank you! Check again later."
HISTORY_PAGE_SIZE = 50
HISTORY_CHART_DAYS = 14


def describe_scene(scene_objects) -> list[dict]:
    """What the annotator reads about the scene: each object's kind and, when given as
    [r, g, b], a colour swatch (anything else about the object is for the renderer)."""
    described = []
    for item in scene_objects or []:
        if not isinstance(item, dict):
            continue
        colour = item.get("colour")
        valid = isinstance(colour, list) and len(colour) == 3 and all(isinstance(c, int) for c in colour)
        described.append({"kind": str(item.get("kind", "object")),
                          "rgb": ", ".join(str(max(0, min(255, c))) for c in colour) if valid else None})
    return described


def _counts(annotator) -> dict[str, int]:
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    return Comparison.objects.filter(annotator=annotator).aggregate(
        total=Count("pk"), today=Count("pk", filter=Q(submitted_at__gte=start_of_day))
    )


@require_GET
@annotator_required()
def workspace(request: HttpRequest) -> HttpResponse:
    current = (
        Assignment.objects.filter(
            holding(timezone.now()),
            annotator=request.user,
            status=Assignment.Status.ACTIVE,
            scenario__campaign__status=Campaign.Status.ACTIVE,
        )
        .select_related("scenario")
        .order_by("created_at")
        .first()
    )
    return render(
        request,
        "labeling/workspace.html",
        {"current": current, "counts": _counts(request.user), "saved": request.GET.get("saved") == "1"},
    )


@require_POST
@annotator_required()
def next_item(request: HttpRequest) -> HttpResponse:
    """Resume or claim an item. JSON clients (``Accept: application/json``) get
    ``{"item": {"assignment", "url", "resumed", "expires_at"}}`` or ``{"item": null, "message"}``;
    a page is redirected to the item."""
    assignment, resumed = do_claim_next_assignment(request.user)
    if assignment is None:
        if wants_json(request):
            return JsonResponse({"item": None, "message": NO_ITEM})
        return render(request, "labeling/workspace.html", {"current": None, "no_item": NO_ITEM,
                                                           "counts": _counts(request.user)})
    url = reverse("labeling:item", args=[assignment.pk])
    if wants_json(request):
        return JsonResponse({"item": {"assignment": assignment.pk, "url": url, "resumed": resumed,
                                      "expires_at": assignment.expires_at.isoformat()}})
    return redirect(url)


@require_GET
@annotator_required()
def item(request: HttpRequest, assignment_id: int) -> HttpResponse:
    """One item: record or upload the turn, then wait for both responses, then compare."""
    assignment = (
        Assignment.objects.select_related("scenario__campaign")
        .filter(pk=assignment_id, annotator=request.user)
        .first()
    )
    if assignment is None:
        return page_error(request, ITEM_NOT_FOUND, 404)
    round_ = Round.objects.filter(assignment=assignment).first()
    if assignment.status == Assignment.Status.COMPLETED:
        return redirect("labeling:workspace")
    if assignment.status == Assignment.Status.EXPIRED:
        return page_error(request, "Your time on this item ran out and it was released. "
                          "Go back to the workspace for the next item.", 410)
    if assignment.review_id is not None:  # someone else's recorded pair: straight to comparing
        return redirect("labeling:review-compare", assignment.pk)
    if round_ is not None:
        statuses = set(Candidate.objects.filter(round=round_).order_by().values_list("status", flat=True))
        if statuses == {Candidate.Status.READY}:
            return redirect("labeling:compare", round_.public_id)
    scenario = assignment.scenario
    return render(request, "labeling/item.html", {
        "assignment": assignment,
        "scenario": scenario,
        "scene": describe_scene(scenario.scene_objects),
        "campaign_guidelines": scenario.campaign.guidelines,
        "round": round_,
        "max_seconds": media_checks.max_seconds(),
        "max_bytes": media_checks.max_bytes(),
        "max_size": media_checks.size_text(media_checks.max_bytes()),
        "lock_minutes": scenario.campaign.lock_minutes,
    })


@require_POST
@annotator_required()
def release(request: HttpRequest, assignment_id: int) -> HttpResponse:
    if not Assignment.objects.filter(pk=assignment_id, annotator=request.user).exists():
        if wants_json(request):
            return json_error(ITEM_NOT_FOUND, 404)
        return page_error(request, ITEM_NOT_FOUND, 404)
    try:
        do_release_assignment(assignment_id, request.user)
    except Refused as refused:
        if wants_json(request):
            return json_error(refused.message, refused.status)
        return page_error(request, refused.message, refused.status)
    if wants_json(request):
        return JsonResponse({"released": True, "workspace_url": reverse("labeling:workspace")})
    return redirect("labeling:workspace")


@require_GET
@annotator_required()
def history(request: HttpRequest) -> HttpResponse:
    """The annotator's own votes, newest first, a page at a time, with a chart of recent days."""
    comparisons = (
        Comparison.objects.filter(annotator=request.user)
        .select_related("scenario")
        .only("submitted_at", "overall", "strength", "time_spent_ms", "scenario__title")
        .order_by("-submitted_at", "-pk")
    )
    page = Paginator(comparisons, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "labeling/history.html", {
        "page": page, "counts": _counts(request.user), "days": _votes_per_day(request.user, HISTORY_CHART_DAYS),
    })


def _votes_per_day(annotator, days: int) -> list[dict]:
    """Votes on each of the last ``days`` local days, oldest first, each with its bar height
    as a percentage of the busiest day's."""
    today = timezone.localdate()
    first = today - timedelta(days=days - 1)
    counted = dict(
        Comparison.objects.filter(annotator=annotator,
                                  submitted_at__gte=timezone.make_aware(datetime.combine(first, time.min)))
        .annotate(day=TruncDate("submitted_at", tzinfo=timezone.get_current_timezone()))
        .values("day").annotate(votes=Count("pk")).values_list("day", "votes")
    )
    series = [(first + timedelta(days=i), counted.get(first + timedelta(days=i), 0)) for i in range(days)]
    busiest = max((votes for _, votes in series), default=0) or 1
    heights = [(day, votes, round(100 * votes / busiest)) for day, votes in series]
    # Drawn as SVG (no inline styles under the Content-Security-Policy): a bar starts at ``top``.
    return [{"day": day, "votes": votes, "height": height, "top": 100 - height} for day, votes, height in heights]
