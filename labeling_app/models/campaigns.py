"""Campaigns and their scenarios: the unit of work a lead plans and annotators complete."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from labeling_app.models.choices import DIMENSIONS


def default_dimensions() -> list[str]:
    return list(DIMENSIONS)


def validate_dimensions(value) -> None:
    if not isinstance(value, list) or not value:
        raise ValidationError("Choose at least one dimension to judge.")
    unknown = [item for item in value if item not in DIMENSIONS]
    if unknown:
        raise ValidationError(
            f"Unknown dimension(s) {unknown}; valid ones are {', '.join(DIMENSIONS)}."
        )
    if len(set(value)) != len(value):
        raise ValidationError("Each dimension may be listed once.")


# What the renderer can draw (model.render.OBJECT_KINDS; the site does not import model).
SCENE_OBJECT_KINDS = ("cup", "ball", "box")


def validate_scene_objects(value) -> None:
    """A list of {"kind", "position": [x, y, z], optional "colour": [r, g, b], optional "size"}."""
    if not isinstance(value, list):
        raise ValidationError("Scene objects must be a list.")
    for index, item in enumerate(value):
        where = f"Scene object {index + 1}"
        if not isinstance(item, dict) or item.get("kind") not in SCENE_OBJECT_KINDS:
            raise ValidationError(f"{where}: 'kind' must be one of {', '.join(SCENE_OBJECT_KINDS)}.")
        position = item.get("position")
        if not (isinstance(position, list) and len(position) == 3
                and all(isinstance(x, (int, float)) for x in position)):
            raise ValidationError(f"{where}: 'position' must be [x, y, z] in metres.")
        colour = item.get("colour", [210, 60, 50])
        if not (isinstance(colour, list) and len(colour) == 3
                and all(isinstance(c, int) and 0 <= c <= 255 for c in colour)):
            raise ValidationError(f"{where}: 'colour' must be [r, g, b] with values 0-255.")
        size = item.get("size", 0.1)
        if not isinstance(size, (int, float)) or not 0 < size <= 2:
            raise ValidationError(f"{where}: 'size' must be a positive number of metres (at most 2).")
        unknown = set(item) - {"kind", "position", "colour", "size"}
        if unknown:
            raise ValidationError(f"{where}: unknown keys {sorted(unknown)}.")


class Campaign(models.Model):
    """One pairwise comparison study: variant A against variant B on a set of scenarios.

    Each scenario is an *item*; ``overlap`` annotators each hold one round with the agent on it
    (recording their own turn) and judge the resulting pair. An item is never given to the same
    annotator twice.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        CLOSED = "closed", "Closed"

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    guidelines = models.TextField(blank=True, help_text="Shown to annotators above the vote form.")
    variant_a = models.ForeignKey(
        "labeling_app.AgentVariant", on_delete=models.PROTECT, related_name="campaigns_as_a"
    )
    variant_b = models.ForeignKey(
        "labeling_app.AgentVariant", on_delete=models.PROTECT, related_name="campaigns_as_b"
    )
    overlap = models.PositiveSmallIntegerField(
        default=1,
        validators=[MinValueValidator(1), MaxValueValidator(20)],
        help_text="How many different annotators complete each scenario.",
    )
    dimensions = models.JSONField(default=default_dimensions, validators=[validate_dimensions])
    lock_minutes = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="An assignment not submitted within this time is released to others.",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [
            ("label_campaign", "Can hold rounds and judge pairs in active campaigns"),
            ("view_campaign_statistics", "Can see statistics and audits of campaigns"),
            ("export_comparisons", "Can export comparisons and freeze preference snapshots"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(variant_a=models.F("variant_b")),
                name="campaign_variants_differ",
            ),
            models.CheckConstraint(
                condition=models.Q(overlap__gte=1, overlap__lte=20), name="campaign_overlap_range"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "active", "paused", "closed"]),
                name="campaign_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Scenario(models.Model):
    """A situation for one question-answer round: what the annotator is asked to do or say,
    the text prompt the agent is conditioned on, and the scene it stands in."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="scenarios")
    title = models.CharField(max_length=200)
    instructions = models.TextField(help_text="Shown to the annotator: what to say or do.")
    agent_prompt = models.TextField(
        blank=True, help_text="Text control given to the agent (e.g. an emotion, 'pick up the cup')."
    )
    scene_objects = models.JSONField(
        default=list, blank=True, validators=[validate_scene_objects],
        help_text='Objects in the scene, e.g. [{"kind": "cup", "position": [0.3, 0.9, 0.2], '
                  '"colour": [200, 40, 40], "size": 0.1}].',
    )
    identity = models.PositiveSmallIntegerField(default=0, help_text="Which agent identity speaks.")
    position = models.PositiveIntegerField(default=0, help_text="Order within the campaign.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "position", "id"]
        indexes = [models.Index(fields=["campaign", "position"])]

    def __str__(self) -> str:
        return f"{self.campaign.slug}: {self.title}"
