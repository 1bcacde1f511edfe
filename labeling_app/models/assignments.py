"""Assignments: an item (scenario) handed to one annotator under an expiring lock."""

from django.conf import settings
from django.db import models


class Assignment(models.Model):
    """One annotator's claim on one scenario.

    The unique (scenario, annotator) pair is what guarantees an annotator never gets the same
    item twice, even after their lock expired. A review assignment (``review`` set) holds
    another annotator's recorded pair instead of a turn to record: unique per (review,
    annotator), with the sides this viewer sees and when their comparison page was first sent. An active assignment counts against the
    campaign's overlap until ``expires_at``; after that the slot is free for someone else.
    """

    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed"
        EXPIRED = "expired", "Expired"

    scenario = models.ForeignKey(
        "labeling_app.Scenario", on_delete=models.PROTECT, related_name="assignments"
    )
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="assignments"
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    review = models.ForeignKey(
        "labeling_app.ReviewItem", null=True, blank=True, on_delete=models.PROTECT, related_name="assignments"
    )
    # Reviews only (an own item keeps both on its Round): drawn once, at random, at the claim.
    variant_a_on_left = models.BooleanField(null=True, blank=True)
    compare_served_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["scenario", "annotator"], condition=models.Q(review__isnull=True),
                name="assignment_once_per_annotator",
            ),
            models.UniqueConstraint(fields=["review", "annotator"], name="assignment_review_once_per_annotator"),
            models.CheckConstraint(
                condition=models.Q(review__isnull=True) | models.Q(variant_a_on_left__isnull=False),
                name="assignment_review_has_sides",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["active", "completed", "expired"]),
                name="assignment_status_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["scenario", "status", "expires_at"]),
            # "Next item" first looks for the annotator's own active assignment, oldest first.
            models.Index(fields=["annotator", "status", "created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} on {self.scenario_id} ({self.status})"
