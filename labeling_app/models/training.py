"""What engineers train on (frozen preference snapshots) and what they run (training jobs)."""

from django.conf import settings
from django.db import models


class PreferenceSnapshot(models.Model):
    """A frozen, hashed export of comparisons: the exact data a reward model was trained on.

    The export directory (a JSONL manifest plus the token files it references) is written once;
    ``sha256`` is the hash of the manifest so a model card can name its data unambiguously.
    """

    name = models.SlugField(max_length=120, unique=True)
    campaigns = models.ManyToManyField("labeling_app.Campaign", related_name="snapshots")
    filters = models.JSONField(default=dict, blank=True, help_text="How comparisons were selected.")
    path = models.CharField(max_length=500, help_text="Export directory, relative to the var dir.")
    sha256 = models.CharField(max_length=64)
    comparison_count = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["sha256"], name="snapshot_content_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class TrainingJob(models.Model):
    """A reward-model, PPO or SFT run launched on the ``jobs`` queue as a DeepSpeed subprocess.

    The lifecycle fields (status, attempts, worker, progress, error, heartbeat and the
    timestamps) move only through ``labeling_app.lifecycle``: queued -> running -> succeeded |
    failed | cancelled. ``cancel_requested`` asks the worker of a running job to stop.
    """

    class Kind(models.TextChoices):
        REWARD = "reward", "Reward model"
        PPO = "ppo", "PPO"
        SFT = "sft", "Supervised fine-tuning"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    config = models.JSONField(default=dict, help_text="Validated job configuration.")
    snapshot = models.ForeignKey(
        PreferenceSnapshot, null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    base_variant = models.ForeignKey(
        "labeling_app.AgentVariant", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reward_job = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="ppo_jobs",
        help_text="For PPO: the reward-model job whose model scores rollouts.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0)
    output_dir = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True, help_text="The worker node of the current attempt.")
    cancel_requested = models.BooleanField(default=False)
    sent_at = models.DateTimeField(null=True, blank=True, help_text="When its message was last sent again.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=["reward", "ppo", "sft"]), name="job_kind_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(
                    status__in=["queued", "running", "succeeded", "failed", "cancelled"]
                ),
                name="job_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="job_progress_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job {self.pk} ({self.status})"


class TrainingMetric(models.Model):
    """One logged scalar of a job at one step (``reward/accuracy``, ``ppo/kl``...): the curves."""

    job = models.ForeignKey(TrainingJob, on_delete=models.PROTECT, related_name="metrics")
    step = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    value = models.FloatField()
    logged_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["job", "name", "step"]
        constraints = [
            models.UniqueConstraint(fields=["job", "name", "step"], name="metric_once_per_step"),
        ]

    def __str__(self) -> str:
        return f"{self.name}@{self.step}={self.value:.4g}"
