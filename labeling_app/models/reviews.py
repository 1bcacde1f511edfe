"""Review items: a recorded pair shown to more annotators, and gold answers for some of them.

Agreement needs several people judging identical clips. A review item sends one finished
round's two candidates to ``reviewers`` annotators other than its author; each holds it through
an ordinary ``Assignment`` (``Assignment.review``, with its own blind sides) and votes on the
same comparison page, stored as a ``Comparison`` with ``review`` set. A gold item is a review
item with a known answer (``GoldAnswer``); annotators are not told which items are gold.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from labeling_app.models.choices import DIMENSIONS


class ReviewItem(models.Model):
    """One finished round whose pair ``reviewers`` more annotators judge, each once."""

    round = models.OneToOneField("labeling_app.Round", on_delete=models.PROTECT, related_name="review")
    reviewers = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many annotators other than the round's author judge this pair.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(reviewers__gte=1, reviewers__lte=20), name="review_reviewers_range"
            ),
        ]

    def __str__(self) -> str:
        return f"review of round {self.round_id} by {self.reviewers}"


class GoldCategory(models.TextChoices):
    """A known answer, in the campaign's variants (not in sides: every viewer's sides differ)."""

    FIRST = "first", "The campaign's variant A is better"
    SECOND = "second", "The campaign's variant B is better"
    TIE = "tie", "About the same"
    BOTH_BAD = "both_bad", "Both bad"


GOLD_FIELDS = ("overall", *DIMENSIONS)


class GoldAnswer(models.Model):
    """The known answer of a review item, per judged field; a blank field is not checked."""

    review = models.OneToOneField(ReviewItem, on_delete=models.PROTECT, related_name="gold")
    overall = models.CharField(max_length=8, blank=True, choices=GoldCategory.choices[:3])
    speaking = models.CharField(max_length=8, blank=True, choices=GoldCategory.choices)
    listening = models.CharField(max_length=8, blank=True, choices=GoldCategory.choices)
    manipulation = models.CharField(max_length=8, blank=True, choices=GoldCategory.choices)
    identity = models.CharField(max_length=8, blank=True, choices=GoldCategory.choices)
    qa_safety = models.CharField(max_length=8, blank=True, choices=GoldCategory.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(overall__in=["", "first", "second", "tie"]),
                                   name="gold_overall_valid"),
            *[
                models.CheckConstraint(
                    condition=models.Q(**{f"{field}__in": ["", *GoldCategory.values]}), name=f"gold_{field}_valid"
                )
                for field in DIMENSIONS
            ],
        ]

    def __str__(self) -> str:
        return f"gold answer of review {self.review_id}"

    def answers(self) -> dict[str, str]:
        return {field: getattr(self, field) for field in GOLD_FIELDS if getattr(self, field)}
