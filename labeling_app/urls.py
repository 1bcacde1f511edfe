from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from labeling_app.views import comparisons, guidelines, home, jobs, lead, media, reviews, rounds, workspace

# The annotator workspace. Rounds and candidates appear in URLs only by their public UUIDs.
labeling_patterns = [
    path("", workspace.workspace, name="workspace"),
    path("next/", workspace.next_item, name="next"),
    path("item/<int:assignment_id>/", workspace.item, name="item"),
    path("item/<int:assignment_id>/upload/", rounds.upload, name="upload"),
    path("item/<int:assignment_id>/release/", workspace.release, name="release"),
    path("round/<uuid:round_id>/status/", rounds.status, name="round-status"),
    path("round/<uuid:round_id>/compare/", comparisons.compare, name="compare"),
    path("round/<uuid:round_id>/vote/", comparisons.vote, name="vote"),
    path("review/<int:assignment_id>/compare/", reviews.compare, name="review-compare"),
    path("review/<int:assignment_id>/vote/", reviews.vote, name="review-vote"),
    path("media/round/<uuid:round_id>/", media.round_media, name="round-media"),
    path("media/response/<uuid:candidate_id>/", media.candidate_media, name="candidate-media"),
    path("guidelines/", guidelines.guidelines, name="guidelines"),
    path("history/", workspace.history, name="history"),
]

# Leads only: statistics, drill-downs and the audit trail (labeling_app.views.lead).
lead_patterns = [
    path("", lead.dashboard, name="dashboard"),
    path("refresh/", lead.refresh_overall, name="refresh"),
    path("campaigns/<int:campaign_id>/", lead.campaign, name="campaign"),
    path("campaigns/<int:campaign_id>/refresh/", lead.refresh_campaign, name="refresh-campaign"),
    path("campaigns/<int:campaign_id>/reviews/", lead.reviews, name="reviews"),
    path("campaigns/<int:campaign_id>/annotators/<int:user_id>/", lead.annotator, name="annotator"),
    path("audit/", lead.audit, name="audit"),
]

# Engineers only: snapshots and training jobs (labeling_app.views.jobs).
job_patterns = [
    path("", jobs.jobs, name="jobs"),
    path("snapshots/", jobs.freeze_snapshot, name="snapshot"),
    path("<int:job_id>/", jobs.job, name="job"),
    path("<int:job_id>/cancel/", jobs.cancel, name="cancel"),
]

urlpatterns = [
    path("", home.home, name="home"),
    path("healthz", home.healthz, name="healthz"),
    path("label/", include((labeling_patterns, "labeling"))),
    path("lead/", include((lead_patterns, "lead"))),
    path("jobs/", include((job_patterns, "jobs"))),
    path("api/", include(("labeling_app.api.urls", "api"))),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
]
