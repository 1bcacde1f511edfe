"""The lead pages: statistics, the annotator drill-down and the audit trail.

Pages read the precomputed reports (labeling_app.stats.refresh: one query, and a refresh
queued when stale) and say how fresh they are; only the drill-down and the audit trail query
rows, one page at a time. Everyone but a lead gets 403.
"""

from __future__ import annotations

from functools import wraps

from auditlog.models import LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.views import redirect_to_login
from django.core.paginator import Paginator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from labeling_app import charts
from labeling_app.actions import Refused
from labeling_app.actions.reviews import do_create_reviews
from labeling_app.api.permissions import is_lead
from labeling_app.models import Campaign, Comparison, ReviewItem, StatisticsReport
from labeling_app.roles import LEAD
from labeling_app.stats import refresh
from labeling_app.stats.anomalies import FLAG_LABELS
from labeling_app.stats.queries import FIELDS, first_is_left_expression
from labeling_app.views.access import page_error

NOT_A_LEAD = "Only leads can see statistics and audits. Ask an administrator for the lead role."
FIELD_LABELS = {"overall": "Overall", "speaking": "Speaking", "listening": "Listening", "manipulation": "Manipulation",
                "identity": "Identity consistency", "qa_safety": "QA safety"}


def lead_required(view):
    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not is_lead(request.user):
            return page_error(request, NOT_A_LEAD, 403)
        return view(request, *args, **kwargs)

    return wrapped


def _freshness(report: StatisticsReport) -> dict:
    return {"report": report, "stale": refresh.is_stale(report), "computed_at": report.computed_at}


def _field_choice(request: HttpRequest) -> str:
    field = request.GET.get("field", "overall")
    return field if field in FIELDS else "overall"


@lead_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """All campaigns: ratings of every variant with intervals, the win-rate matrix, the list."""
    field = _field_choice(request)
    report = refresh.read(None)
    context = {"role": LEAD, "field": field, "fields": FIELD_LABELS, **_freshness(report)}
    data = report.payload or None
    if data:
        ratings = data["ratings"][field]
        context["ratings_chart"] = charts.interval_chart(
            [{"label": r["name"], "value": r["rating"], "low": r.get("low"), "high": r.get("high")} for r in ratings],
            f"Bradley-Terry ratings ({FIELD_LABELS[field]}), 95% bootstrap intervals",
            low=min([r.get("low", r["rating"]) for r in ratings] + [900]) - 20,
            high=max([r.get("high", r["rating"]) for r in ratings] + [1100]) + 20, reference=1000, fmt="{:.0f}")
        position = {v["id"]: i for i, v in enumerate(data["variants"])}
        cells = {(position[c["row"]], position[c["column"]]): c for c in data["win_matrix"][field]}
        context["matrix_chart"] = charts.matrix_chart([v["name"] for v in data["variants"]], cells,
                                                      f"Win rate of the row variant against the column ({FIELD_LABELS[field]})")
        context["ratings"] = ratings
    stored = {r.campaign_id: r for r in StatisticsReport.objects.filter(campaign__isnull=False).only(
        "campaign_id", "comparison_count", "computed_at")}
    campaigns = list(Campaign.objects.select_related("variant_a", "variant_b").order_by("-created_at"))
    for campaign in campaigns:
        campaign.report = stored.get(campaign.pk)
    context["campaigns"] = campaigns
    return render(request, "lead/dashboard.html", context)


def _interval_rows(section: dict, make) -> list[dict]:
    return [{"label": FIELD_LABELS[f], **make(section[f])} for f in FIELDS]


@lead_required
def campaign(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """One campaign: win rates, ratings, position bias, agreement, volume, annotators and flags."""
    campaign = get_object_or_404(Campaign.objects.select_related("variant_a", "variant_b"), pk=campaign_id)
    report = refresh.read(campaign.pk)
    context = {"role": LEAD, "campaign": campaign, "flag_labels": FLAG_LABELS, **_freshness(report)}
    data = report.payload or None
    if data:
        a, b = (v["name"] for v in data["variants"])
        context["win_chart"] = charts.interval_chart(
            _interval_rows(data["win_rates"], lambda w: {"value": w["rate"], "low": w["low"], "high": w["high"]}),
            f"Win rate of {a} against {b} (ties half), 95% Wilson intervals", 0, 1, reference=0.5)
        ratings = data["ratings"]
        context["ratings_chart"] = charts.interval_chart(
            [{"label": f"{FIELD_LABELS[f]}: {r['name']}", "value": r["rating"], "low": r.get("low"), "high": r.get("high")}
             for f in FIELDS for r in ratings[f]],
            "Bradley-Terry ratings, 95% bootstrap intervals",
            low=min(r.get("low", r["rating"]) for f in FIELDS for r in ratings[f]) - 20,
            high=max(r.get("high", r["rating"]) for f in FIELDS for r in ratings[f]) + 20, reference=1000, fmt="{:.0f}")
        context["position_chart"] = charts.interval_chart(
            _interval_rows(data["position_bias"], lambda p: {"value": p["rate"], "low": p["low"], "high": p["high"]}),
            "Left-pick rate among decided judgments, 95% Wilson intervals", 0, 1, reference=0.5)
        agreement = data["agreement"]
        context["agreement"] = [
            {"item": item, "label": "same clip" if item == "clip" else "same scenario (own turns)",
             "fields": [{"label": FIELD_LABELS[f], **agreement[item]["fields"][f]} for f in FIELDS],
             "chart": charts.line_chart([(w["week"], w["alpha"]) for w in agreement[item]["weekly"]],
                                        f"Krippendorff's alpha per week, overall preference, {item} items")
             if agreement[item]["weekly"] else None,
             "pairs": len(agreement[item]["pairs"])}
            for item in ("clip", "scenario")
        ]
        days = data["throughput"]["per_day"]
        context["volume_chart"] = charts.bar_chart([(d["day"][5:], d["n"]) for d in days], "Comparisons per day")
        context["time_chart"] = charts.bar_chart([(d["day"][5:], (d["mean_ms"] or 0) / 1000) for d in days],
                                                 "Mean seconds per comparison, per day", fmt="{:.1f}")
        gold = data.get("gold") or {}
        if gold.get("fields"):
            context["gold_chart"] = charts.interval_chart(
                [{"label": FIELD_LABELS[f], "value": g["rate"], "low": g["low"], "high": g["high"]}
                 for f, g in gold["fields"].items()],
                "Gold accuracy of all annotators per judgment, 95% Wilson intervals", 0, 1)
        context["annotators"] = data["annotators"]
        context["flagged"] = sum(1 for row in data["annotators"] if row["flags"])
    return render(request, "lead/campaign.html", context)


@lead_required
def reviews(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Review and gold items of a campaign, how far their votes got, and a form that sends
    finished rounds to more annotators (gold answers are set in the admin). Nothing here
    counts the campaign's rounds: on a large campaign that would be a scan per view."""
    campaign = get_object_or_404(Campaign.objects.select_related("variant_a", "variant_b"), pk=campaign_id)
    error, status = "", 200
    if request.method == "POST":
        try:
            count, reviewers = int(request.POST.get("count", "")), int(request.POST.get("reviewers", ""))
        except ValueError:
            error, status = "Give the number of rounds and of reviewers as whole numbers.", 400
        else:
            try:
                made = do_create_reviews(campaign, count, reviewers, by=request.user)
            except Refused as refused:
                error, status = refused.message, refused.status
            else:
                return redirect(f"{request.path}?made={len(made)}")
    items = (ReviewItem.objects.filter(round__scenario__campaign=campaign)
             .select_related("gold").annotate(votes=Count("comparisons")).order_by("-created_at"))
    page = Paginator(items, 50).get_page(request.GET.get("page"))
    return render(request, "lead/reviews.html", {
        "role": LEAD, "campaign": campaign, "page": page, "error": error, "made": request.GET.get("made"),
    }, status=status)


@lead_required
@require_POST
def refresh_campaign(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    refresh.request_refresh(campaign.pk, force=True)
    return redirect("lead:campaign", campaign_id=campaign.pk)


@lead_required
@require_POST
def refresh_overall(request: HttpRequest) -> HttpResponse:
    refresh.request_refresh(None, force=True)
    return redirect("lead:dashboard")


@lead_required
def annotator(request: HttpRequest, campaign_id: int, user_id: int) -> HttpResponse:
    """Drill-down from a flag: the annotator's comparisons in the campaign, newest first, with the
    judgments re-oriented to the variants, and the numbers behind their flags."""
    campaign = get_object_or_404(Campaign.objects.select_related("variant_a", "variant_b"), pk=campaign_id)
    person = get_object_or_404(get_user_model(), pk=user_id)
    report = StatisticsReport.objects.filter(campaign=campaign).first()
    row = next((r for r in (report.payload.get("annotators", []) if report else []) if r["id"] == person.pk), None)
    rows = (Comparison.objects.filter(scenario__campaign=campaign, annotator=person)
            .select_related("scenario").annotate(first_left=first_is_left_expression(campaign))
            .order_by("-submitted_at"))
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    names = {"first": campaign.variant_a.name, "second": campaign.variant_b.name}
    for comparison in page:
        comparison.verdicts = [(FIELD_LABELS[f], _oriented(getattr(comparison, f), comparison.first_left, names))
                               for f in FIELDS]
    return render(request, "lead/annotator.html", {
        "role": LEAD, "campaign": campaign, "person": person, "row": row, "page": page, "flag_labels": FLAG_LABELS,
        "report": report,
    })


def _oriented(value: str, first_left: bool, names: dict) -> str:
    if value in ("a", "b"):
        return names["first"] if (value == "a") == first_left else names["second"]
    return {"tie": "tie", "both_bad": "both bad", "na": "n/a"}[value]


@lead_required
def audit(request: HttpRequest) -> HttpResponse:
    """Who created or changed variants, campaigns, scenarios, gold answers and snapshots, when."""
    entries = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-id")
    model = request.GET.get("model", "")
    if model:
        entries = entries.filter(content_type__model=model)
    page = Paginator(entries, 50).get_page(request.GET.get("page"))
    models = LogEntry.objects.values_list("content_type__model", flat=True).distinct().order_by("content_type__model")
    return render(request, "lead/audit.html", {"role": LEAD, "page": page, "model": model, "models": list(models)})
