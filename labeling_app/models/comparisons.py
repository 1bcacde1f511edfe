"""Comparisons: an annotator's judgment of one candidate pair, the raw preference data."""

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from labeling_app.models.choices import DIMENSIONS, Judgment, Overall, Strength

JUDGMENT_FIELD_KWARGS = {
    "max_length": 8,
    "choices": Judgment.choices,
}


class Comparison(models.Model):
    """One annotator's verdict on one pair, in the orientation they saw it.

    ``candidate_a`` is the clip shown on the left, ``candidate_b`` on the right; each judgment
    refers to that orientation ("a" = left better). Exports map sides back to variants.
    Rows are history: they are never edited, and nothing they point to can be deleted.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # The client generates this once per vote form; a retried POST carries the same token.
    submission_token = models.UUIDField(unique=True)
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="comparisons"
    )
    scenario = models.ForeignKey(
        "labeling_app.Scenario", on_delete=models.PROTECT, related_name="comparisons"
    )
    # The round whose pair was judged: by its author (``review`` null, once per round) or by a
    # reviewer of it (``review`` set, once per reviewer).
    round = models.ForeignKey(
        "labeling_app.Round", on_delete=models.PROTECT, related_name="comparisons"
    )
    review = models.ForeignKey(
        "labeling_app.ReviewItem", null=True, blank=True, on_delete=models.PROTECT, related_name="comparisons"
    )
    candidate_a = models.ForeignKey(
        "labeling_app.Candidate", on_delete=models.PROTECT, related_name="+"
    )
    candidate_b = models.ForeignKey(
        "labeling_app.Candidate", on_delete=models.PROTECT, related_name="+"
    )
    speaking = models.CharField(**JUDGMENT_FIELD_KWARGS)
    listening = models.CharField(**JUDGMENT_FIELD_KWARGS)
    manipulation = models.CharField(**JUDGMENT_FIELD_KWARGS)
    identity = models.CharField(**JUDGMENT_FIELD_KWARGS)
    qa_safety = models.CharField(**JUDGMENT_FIELD_KWARGS)
    overall = models.CharField(max_length=8, choices=Overall.choices)
    strength = models.PositiveSmallIntegerField(choices=Strength.choices)
    confidence = models.PositiveSmallIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(5)], help_text="1 (guess) to 5 (certain)."
    )
    rationale = models.TextField(blank=True, max_length=5000)
    time_spent_ms = models.PositiveIntegerField()
    plays_a = models.PositiveIntegerField()
    plays_b = models.PositiveIntegerField()
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-submitted_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["annotator", "scenario"], condition=models.Q(review__isnull=True),
                name="comparison_once_per_annotator_item",
            ),
            models.UniqueConstraint(
                fields=["round"], condition=models.Q(review__isnull=True), name="comparison_once_per_round"
            ),
            models.UniqueConstraint(fields=["review", "annotator"], name="comparison_review_once_per_annotator"),
            models.CheckConstraint(
                condition=~models.Q(candidate_a=models.F("candidate_b")),
                name="comparison_candidates_differ",
            ),
            *[
                models.CheckConstraint(
                    condition=models.Q(**{f"{dimension}__in": Judgment.values}),
                    name=f"comparison_{dimension}_valid",
                )
                for dimension in DIMENSIONS
            ],
            models.CheckConstraint(
                condition=models.Q(overall__in=Overall.values), name="comparison_overall_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(strength__in=Strength.values), name="comparison_strength_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(confidence__gte=1, confidence__lte=5),
                name="comparison_confidence_range",
            ),
            # A tie has no strength beyond "slight": it is recorded as 1 to keep one meaning.
            models.CheckConstraint(
                condition=~models.Q(overall="tie") | models.Q(strength=1),
                name="comparison_tie_has_no_strength",
            ),
        ]
        indexes = [models.Index(fields=["scenario", "submitted_at"])]

    def __str__(self) -> str:
        return f"comparison {self.pk} by {self.annotator}"

    def judgments(self) -> dict[str, str]:
        return {dimension: getattr(self, dimension) for dimension in DIMENSIONS}
