"""Rounds (the annotator's recorded turn) and candidates (the agents' sampled responses)."""

import uuid

from django.conf import settings
from django.db import models


def round_media_path(instance: "Round", filename: str) -> str:
    # The stored name never reuses the uploaded file name: it is ours, opaque and collision-free.
    return f"rounds/{instance.public_id}/turn.{instance.media_extension}"


def candidate_media_path(instance: "Candidate", filename: str) -> str:
    return f"candidates/{instance.public_id}/{filename}"


class Round(models.Model):
    """One question-answer round: the human turn an annotator recorded (or uploaded) for an
    assignment. Both candidates of the pair are responses to exactly this turn."""

    class Source(models.TextChoices):
        RECORDED = "recorded", "Recorded in the browser"
        UPLOADED = "uploaded", "Uploaded file"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    assignment = models.OneToOneField(
        "labeling_app.Assignment", on_delete=models.PROTECT, related_name="round"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="rounds"
    )
    scenario = models.ForeignKey(
        "labeling_app.Scenario", on_delete=models.PROTECT, related_name="rounds"
    )
    source = models.CharField(max_length=16, choices=Source.choices)
    media = models.FileField(upload_to=round_media_path, max_length=300)
    media_extension = models.CharField(max_length=8, help_text="From the sniffed container, not the upload name.")
    media_sha256 = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    container = models.CharField(max_length=32)
    duration_seconds = models.FloatField()
    has_audio = models.BooleanField()
    has_video = models.BooleanField()
    # Which variant is shown on the left is decided once, at random, when the round is made.
    variant_a_on_left = models.BooleanField()
    # When the comparison page was first sent to the annotator: a vote must come at least the
    # longer clip's duration later (playback evidence, with models.playback.ClipServing).
    compare_served_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(duration_seconds__gt=0), name="round_duration_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(has_audio=True) | models.Q(has_video=True),
                name="round_has_a_stream",
            ),
        ]

    def __str__(self) -> str:
        return f"round {self.pk} by {self.annotator}"


class Candidate(models.Model):
    """One agent variant's sampled response to a round, rendered to MP4 for the annotator.

    Workers own the lifecycle fields (status, attempts, worker, progress, error and the
    timestamps), moved only by ``labeling_app.lifecycle``: queued -> running -> ready | failed.
    ``public_id`` is the only identifier that reaches an annotator's browser; it reveals
    nothing about the variant.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    round = models.ForeignKey(Round, on_delete=models.PROTECT, related_name="candidates")
    variant = models.ForeignKey(
        "labeling_app.AgentVariant", on_delete=models.PROTECT, related_name="candidates"
    )
    seed = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    progress = models.FloatField(default=0.0, help_text="0..1, reported by the worker.")
    attempts = models.PositiveIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    media = models.FileField(upload_to=candidate_media_path, max_length=300, blank=True)
    tokens = models.FileField(
        upload_to=candidate_media_path, max_length=300, blank=True,
        help_text="Sampled audio codes, visual tokens and log-probs (safetensors).",
    )
    duration_seconds = models.FloatField(null=True, blank=True)
    sample_seconds = models.FloatField(null=True, blank=True, help_text="Time spent sampling.")
    render_seconds = models.FloatField(null=True, blank=True, help_text="Time spent rendering.")
    error = models.TextField(blank=True)
    queued_at = models.DateTimeField(auto_now_add=True)
    # When a sweeper or a retry last sent the task's message (null: only the one sent on commit).
    sent_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Refreshed every few seconds while an attempt runs; a running candidate whose heartbeat
    # stopped belongs to a worker that died, and is queued again (labeling_app.lifecycle).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["round", "id"]
        constraints = [
            models.UniqueConstraint(fields=["round", "variant"], name="candidate_once_per_variant"),
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "ready", "failed"]),
                name="candidate_status_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1),
                name="candidate_progress_range",
            ),
        ]
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"candidate {self.pk} ({self.status})"
