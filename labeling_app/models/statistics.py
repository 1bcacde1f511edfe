"""Precomputed statistics: what a worker computed for leads, and when."""

from django.db import models


class StatisticsReport(models.Model):
    """The latest statistics of one campaign (or, with no campaign, across all campaigns).

    Computing a large campaign's report takes longer than a request may (bootstrap, self-joins
    for agreement), so a worker task writes it here and pages read it, showing ``computed_at``.
    ``requested_at`` marks a refresh already queued, so many page views queue one task.
    """

    campaign = models.OneToOneField(
        "labeling_app.Campaign", null=True, blank=True, on_delete=models.PROTECT, related_name="statistics"
    )
    payload = models.JSONField(default=dict)
    comparison_count = models.PositiveBigIntegerField(default=0)
    computed_at = models.DateTimeField(null=True, blank=True)
    compute_seconds = models.FloatField(null=True, blank=True)
    requested_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        constraints = [
            # One overall row (NULLs are distinct under a plain unique constraint): a unique
            # index on a constant over the rows without a campaign.
            models.UniqueConstraint(
                models.Value(1), condition=models.Q(campaign__isnull=True), name="statistics_single_overall_row"
            ),
        ]

    def __str__(self) -> str:
        return f"statistics of {self.campaign or 'all campaigns'} at {self.computed_at}"
