"""Django admin for leads and engineers.

History is read-only here: rounds, candidates, comparisons, snapshots and metrics are written by
the site and the workers, never edited by hand, and nothing can be deleted from the admin.
Leads deactivate and reactivate annotators here (``AccountAdmin``) and see login lockouts
(django-axes' own admin).
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied

from labeling_app.actions.accounts import do_set_active
from labeling_app.authentication import end_sessions_of
from labeling_app.models import (
    AgentVariant,
    Assignment,
    Campaign,
    Candidate,
    Comparison,
    GoldAnswer,
    PreferenceSnapshot,
    ReviewItem,
    Round,
    Scenario,
    TrainingJob,
    TrainingMetric,
)
from labeling_app.roles import ANNOTATOR, role_of


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


class GoldAnswerInline(admin.StackedInline):
    """Marking a review item as gold: its known answer per field (blank: not checked)."""

    model = GoldAnswer
    extra = 0
    can_delete = False
    fields = ("overall", "speaking", "listening", "manipulation", "identity", "qa_safety")


class ReviewItemForm(forms.ModelForm):
    class Meta:
        model = ReviewItem
        fields = ("round", "reviewers")

    def clean_round(self):
        round_ = self.cleaned_data["round"]
        ready = round_.candidates.filter(status=Candidate.Status.READY).count()
        if ready != 2:
            raise forms.ValidationError("Only a round whose two responses are both ready can be reviewed.")
        return round_


@admin.register(ReviewItem)
class ReviewItemAdmin(NoDeleteAdmin):
    """Leads send a recorded pair to more annotators and mark gold items (the inline)."""

    form = ReviewItemForm
    list_display = ("id", "round", "reviewers", "created_by", "created_at")
    list_filter = ("round__scenario__campaign", "gold__overall")
    raw_id_fields = ("round",)
    inlines = [GoldAnswerInline]

    def get_readonly_fields(self, request, obj=None):
        return ("round",) if obj else ()

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def save_formset(self, request, form, formset, change) -> None:
        for gold in formset.save(commit=False):
            gold.created_by = gold.created_by or request.user
            gold.save()


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


User = get_user_model()
admin.site.unregister(User)


@admin.register(User)
class AccountAdmin(DjangoUserAdmin):
    """Users. Superusers get Django's full user admin. Leads (``change_user``) see annotators
    only, and change nothing but whether the account is active: no passwords, roles, staff
    flags or permissions, and no other staff account. Accounts are deactivated, never deleted
    (their votes are history)."""

    list_display = ("username", "role", "is_active", "last_login", "date_joined")
    list_filter = ("is_active", "groups")
    actions = ["deactivate", "reactivate"]
    LEAD_FIELDS = ("username", "first_name", "last_name", "email", "is_active", "last_login", "date_joined")

    def get_queryset(self, request):
        users = super().get_queryset(request).prefetch_related("groups")
        if request.user.is_superuser:
            return users
        return users.filter(is_superuser=False, is_staff=False, groups__name=ANNOTATOR)

    @admin.display(description="role")
    def role(self, user) -> str:
        return role_of(user) or "-"

    def get_fieldsets(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_fieldsets(request, obj)
        return [(None, {"fields": self.LEAD_FIELDS})]

    def get_readonly_fields(self, request, obj=None):
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return [name for name in self.LEAD_FIELDS if name != "is_active"]

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change and "is_active" in form.changed_data and obj.is_active:
            end_sessions_of(obj.pk)  # reactivated: no session from before comes back (see do_set_active)
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def user_change_password(self, request, id, form_url=""):
        if not request.user.is_superuser:
            raise PermissionDenied("Only an administrator can set another user's password.")
        return super().user_change_password(request, id, form_url)

    @admin.action(description="Deactivate the selected accounts (their sessions end at once)",
                  permissions=["change"])
    def deactivate(self, request, queryset):
        count = do_set_active(list(queryset), active=False)
        self.message_user(request, f"Deactivated {count} account(s); they are logged out everywhere.",
                          messages.SUCCESS)

    @admin.action(description="Reactivate the selected accounts", permissions=["change"])
    def reactivate(self, request, queryset):
        count = do_set_active(list(queryset), active=True)
        self.message_user(request, f"Reactivated {count} account(s); they can log in again.", messages.SUCCESS)
