"""Agent variants: what annotators compare without ever learning which is which."""

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models


class AgentVariant(models.Model):
    """A checkpoint of the agent model G together with the sampling parameters it runs under.

    Two variants may share a checkpoint and differ only in temperature. A policy trained by PPO
    is registered as a new variant whose ``parent`` is the policy it started from, so the next
    campaign can compare it with its parent (iterated RLHF).
    """

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    name = models.SlugField(max_length=80, unique=True)
    description = models.TextField(blank=True)
    # "default" is the tiny agent shipped with the project; otherwise a checkpoint directory
    # (config.json + model.safetensors) on the workers' filesystem.
    checkpoint = models.CharField(max_length=500, default="default")
    audio_temperature = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)])
    visual_temperature = models.FloatField(default=1.0, validators=[MinValueValidator(0.01)])
    top_k = models.PositiveIntegerField(default=0, help_text="0 samples from the whole vocabulary.")
    # Respaced denoising steps per frame; at least 2 so every step has a defined log-density.
    diffusion_steps = models.PositiveIntegerField(default=10, validators=[MinValueValidator(2)])
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    produced_by = models.ForeignKey(
        "labeling_app.TrainingJob",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="produced_variants",
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(audio_temperature__gt=0), name="variant_audio_temperature_positive"
            ),
            models.CheckConstraint(
                condition=models.Q(visual_temperature__gt=0),
                name="variant_visual_temperature_positive",
            ),
            models.CheckConstraint(
                condition=models.Q(diffusion_steps__gte=2), name="variant_diffusion_steps_min_2"
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=["draft", "active", "retired"]),
                name="variant_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def sampling_params(self) -> dict:
        """The parameters a worker hands to the model's sampler (JSON-serialisable)."""
        return {
            "audio_temperature": self.audio_temperature,
            "visual_temperature": self.visual_temperature,
            "top_k": self.top_k,
            "diffusion_steps": self.diffusion_steps,
        }
