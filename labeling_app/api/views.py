"""Read-only endpoints over the site's records, and the precomputed statistics reports.

Every view is lead-only (settings.REST_FRAMEWORK's default permission). Listings are cursor
paginated and select their related rows in the same query (the tests count queries).
"""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling_app.api.serializers import (
    CampaignSerializer,
    ComparisonSerializer,
    JobSerializer,
    ReportSerializer,
    SnapshotSerializer,
    VariantSerializer,
)
from labeling_app.models import (
    AgentVariant,
    Campaign,
    Comparison,
    PreferenceSnapshot,
    TrainingJob,
)
from labeling_app.stats import refresh


def report_response(campaign_id: int | None) -> Response:
    report = refresh.read(campaign_id)
    report.stale = refresh.is_stale(report)
    report.refresh_queued = report.requested_at is not None
    return Response(ReportSerializer(report).data)


class VariantViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = AgentVariant.objects.all()
    serializer_class = VariantSerializer


class CampaignViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Campaign.objects.all()
    serializer_class = CampaignSerializer

    @extend_schema(responses=ReportSerializer, summary="The campaign's statistics report and its freshness")
    @action(detail=True, methods=["get"])
    def statistics(self, request, pk=None):
        return report_response(self.get_object().pk)

    @extend_schema(request=None, responses=ReportSerializer, summary="Queue a recomputation now")
    @action(detail=True, methods=["post"], url_path="statistics/refresh")
    def refresh_statistics(self, request, pk=None):
        refresh.request_refresh(self.get_object().pk, force=True)
        return report_response(self.get_object().pk)


def _positive_int(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    if not raw.isdigit():
        raise ValidationError({name: f"must be a positive integer id, not {raw!r}"})
    return int(raw)


@extend_schema(parameters=[
    OpenApiParameter("campaign", OpenApiTypes.INT, description="Only this campaign's comparisons."),
    OpenApiParameter("annotator", OpenApiTypes.INT, description="Only this annotator's comparisons."),
])
class ComparisonViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ComparisonSerializer

    def get_queryset(self):
        rows = Comparison.objects.select_related("scenario", "annotator", "candidate_a", "candidate_b")
        campaign = _positive_int(self.request, "campaign")
        if campaign is not None:
            rows = rows.filter(scenario__campaign_id=campaign)
        annotator = _positive_int(self.request, "annotator")
        if annotator is not None:
            rows = rows.filter(annotator_id=annotator)
        return rows


class SnapshotViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = PreferenceSnapshot.objects.prefetch_related("campaigns")
    serializer_class = SnapshotSerializer


class JobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = TrainingJob.objects.all()
    serializer_class = JobSerializer


class OverallStatisticsView(APIView):
    @extend_schema(responses=ReportSerializer, summary="Ratings and win rates across all campaigns")
    def get(self, request):
        return report_response(None)


class OverallStatisticsRefreshView(APIView):
    @extend_schema(request=None, responses=ReportSerializer, summary="Queue a recomputation of the overall report")
    def post(self, request):
        refresh.request_refresh(None, force=True)
        return report_response(None)
