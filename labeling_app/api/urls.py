"""The API's URLs (mounted at /api/): records, statistics, exports, the OpenAPI schema."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from labeling_app.api import export, views

# JSON is the only format, so no ".json" suffix routes.
router = DefaultRouter(use_regex_path=False)
router.include_format_suffixes = False
router.register("variants", views.VariantViewSet, basename="variant")
router.register("campaigns", views.CampaignViewSet, basename="campaign")
router.register("comparisons", views.ComparisonViewSet, basename="comparison")
router.register("snapshots", views.SnapshotViewSet, basename="snapshot")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    path("", include(router.urls)),
    path("statistics/", views.OverallStatisticsView.as_view(), name="statistics"),
    path("statistics/refresh/", views.OverallStatisticsRefreshView.as_view(), name="statistics-refresh"),
    path("export/", export.ExportIndexView.as_view(), name="export-index"),
    re_path(r"^export/(?P<table>[a-z_]+)\.(?P<fmt>csv|json)$", export.ExportTableView.as_view(), name="export"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
]
