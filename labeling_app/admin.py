"""Django admin for leads and engineers.

History is read-only here: rounds, candidates, comparisons, snapshots and metrics are written by
the site and the workers, never edited by hand, and nothing can be deleted from the admin.
"""

from django.contrib import admin

from labeling_app.models import (
    AgentVariant,
    Assignment,
    Campaign,
    Candidate,
    Comparison,
    PreferenceSnapshot,
    Round,
    Scenario,
    TrainingJob,
    TrainingMetric,
)


class NoDeleteAdmin(admin.ModelAdmin):
    """History is never deleted through the admin (the database protects it too)."""

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class ReadOnlyAdmin(NoDeleteAdmin):
    """Records written by the system: visible to those with view permission, never edited."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AgentVariant)
class AgentVariantAdmin(NoDeleteAdmin):
    list_display = ("name", "checkpoint", "audio_temperature", "visual_temperature", "top_k",
                    "diffusion_steps", "parent", "status", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("name", "description", "checkpoint")
    readonly_fields = ("created_at", "created_by", "produced_by")
    autocomplete_fields = ("parent",)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class ScenarioInline(admin.TabularInline):
    model = Scenario
    extra = 0
    fields = ("position", "title", "instructions", "agent_prompt", "identity")
    show_change_link = True

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Campaign)
class CampaignAdmin(NoDeleteAdmin):
    list_display = ("name", "slug", "variant_a", "variant_b", "overlap", "status", "created_at")
    list_filter = ("status", "created_at")
    search_fields = ("name", "slug", "guidelines")
    prepopulated_fields = {"slug": ("name",)}
    readonly_fields = ("created_at", "created_by")
    inlines = [ScenarioInline]

    def get_readonly_fields(self, request, obj=None):
        # Once items were handed out, changing the pair would silently relabel history.
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and Assignment.objects.filter(scenario__campaign=obj).exists():
            fields += ["variant_a", "variant_b"]
        return fields

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(Scenario)
class ScenarioAdmin(NoDeleteAdmin):
    list_display = ("title", "campaign", "position", "identity", "created_at")
    list_filter = ("campaign",)
    search_fields = ("title", "instructions", "agent_prompt")


@admin.register(Assignment)
class AssignmentAdmin(NoDeleteAdmin):
    list_display = ("scenario", "annotator", "status", "created_at", "expires_at", "completed_at")
    list_filter = ("status", "scenario__campaign")
    search_fields = ("annotator__username", "scenario__title")
    readonly_fields = ("scenario", "annotator", "created_at", "completed_at")

    def has_add_permission(self, request) -> bool:
        return False


class CandidateInline(admin.TabularInline):
    model = Candidate
    extra = 0
    fields = ("variant", "seed", "status", "progress", "attempts", "worker", "error")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Round)
class RoundAdmin(ReadOnlyAdmin):
    list_display = ("id", "annotator", "scenario", "source", "duration_seconds", "created_at")
    list_filter = ("source", "scenario__campaign", "created_at")
    search_fields = ("annotator__username", "scenario__title", "public_id")
    inlines = [CandidateInline]


@admin.register(Candidate)
class CandidateAdmin(ReadOnlyAdmin):
    list_display = ("id", "round", "variant", "status", "progress", "attempts", "sample_seconds",
                    "render_seconds", "worker")
    list_filter = ("status", "variant", "round__scenario__campaign")
    search_fields = ("public_id", "error", "worker")


@admin.register(Comparison)
class ComparisonAdmin(ReadOnlyAdmin):
    list_display = ("id", "annotator", "scenario", "overall", "strength", "confidence",
                    "speaking", "listening", "manipulation", "identity", "qa_safety",
                    "time_spent_ms", "submitted_at")
    list_filter = ("overall", "confidence", "scenario__campaign", "submitted_at")
    search_fields = ("annotator__username", "rationale", "public_id")
    date_hierarchy = "submitted_at"


@admin.register(PreferenceSnapshot)
class PreferenceSnapshotAdmin(ReadOnlyAdmin):
    list_display = ("name", "comparison_count", "sha256", "created_by", "created_at")
    search_fields = ("name", "sha256")


class TrainingMetricInline(admin.TabularInline):
    model = TrainingMetric
    extra = 0
    fields = ("step", "name", "value", "logged_at")
    readonly_fields = fields
    can_delete = False
    max_num = 0


@admin.register(TrainingJob)
class TrainingJobAdmin(NoDeleteAdmin):
    list_display = ("id", "kind", "status", "progress", "snapshot", "base_variant", "created_by",
                    "created_at", "finished_at")
    list_filter = ("kind", "status", "created_at")
    search_fields = ("error", "output_dir")
    readonly_fields = ("status", "progress", "output_dir", "error", "attempts", "created_by",
                       "created_at", "started_at", "finished_at")


@admin.register(TrainingMetric)
class TrainingMetricAdmin(ReadOnlyAdmin):
    list_display = ("job", "step", "name", "value", "logged_at")
    list_filter = ("name", "job")
