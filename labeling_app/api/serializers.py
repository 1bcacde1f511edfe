"""What the API returns for each record. Comparisons are given both as shown (sides) and as
variants, so a script never has to redo the orientation."""

from rest_framework import serializers

from labeling_app.models import (
    DIMENSIONS,
    AgentVariant,
    Campaign,
    Comparison,
    PreferenceSnapshot,
    StatisticsReport,
    TrainingJob,
)


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = AgentVariant
        fields = ["id", "name", "description", "checkpoint", "audio_temperature", "visual_temperature", "top_k",
                  "diffusion_steps", "parent", "produced_by", "status", "created_by", "created_at"]


class CampaignSerializer(serializers.ModelSerializer):
    class Meta:
        model = Campaign
        fields = ["id", "name", "slug", "status", "variant_a", "variant_b", "overlap", "dimensions",
                  "lock_minutes", "created_by", "created_at"]


class ComparisonSerializer(serializers.ModelSerializer):
    campaign = serializers.IntegerField(source="scenario.campaign_id", read_only=True)
    annotator_username = serializers.CharField(source="annotator.username", read_only=True)
    variant_left = serializers.IntegerField(source="candidate_a.variant_id", read_only=True)
    variant_right = serializers.IntegerField(source="candidate_b.variant_id", read_only=True)
    clip = serializers.IntegerField(source="candidate_a.round_id", read_only=True,
                                    help_text="The recorded round whose pair was judged (shared by review items).")

    class Meta:
        model = Comparison
        fields = ["id", "public_id", "campaign", "scenario", "round", "clip", "review", "annotator", "annotator_username",
                  "candidate_a", "candidate_b", "variant_left", "variant_right", *DIMENSIONS, "overall",
                  "strength", "confidence", "rationale", "time_spent_ms", "plays_a", "plays_b", "submitted_at"]


class SnapshotSerializer(serializers.ModelSerializer):
    class Meta:
        model = PreferenceSnapshot
        fields = ["id", "name", "campaigns", "filters", "path", "sha256", "comparison_count", "created_by", "created_at"]


class JobSerializer(serializers.ModelSerializer):
    class Meta:
        model = TrainingJob
        fields = ["id", "kind", "status", "progress", "config", "snapshot", "base_variant", "reward_job",
                  "output_dir", "error", "attempts", "created_by", "created_at", "started_at", "finished_at"]


class ReportSerializer(serializers.ModelSerializer):
    """A stored statistics report and how fresh it is."""

    stale = serializers.BooleanField(help_text="Older than HER_STATS_MAX_AGE_SECONDS, or never computed.")
    refresh_queued = serializers.BooleanField(help_text="A worker has been asked to recompute it.")
    report = serializers.JSONField(source="payload", help_text="See labeling_app.stats.campaign for the layout.")

    class Meta:
        model = StatisticsReport
        fields = ["campaign", "computed_at", "compute_seconds", "comparison_count", "stale", "refresh_queued",
                  "error", "report"]
