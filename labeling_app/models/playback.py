"""Playback evidence: what of a candidate's clip the server sent to its annotator, and when.

A vote is proof that a person watched both responses only if the server saw both clips go out
and enough time pass; the page's own play counters are kept as extra information, never as
proof (a script can post any number). ``Round.compare_served_at`` holds the other half.
"""

from django.db import models


class ClipServing(models.Model):
    """The byte ranges of one candidate's clip served to one viewer (the author or a reviewer).

    ``served_ranges`` is a sorted list of disjoint ``[start, end)`` intervals of bytes the web
    server actually handed to the connection (not merely asked for: a request dropped early
    counts only what went out); ``served_bytes`` is their total length.
    """

    candidate = models.ForeignKey(
        "labeling_app.Candidate", on_delete=models.PROTECT, related_name="servings"
    )
    # Null: served to the round's author; else to the reviewer holding this review assignment.
    assignment = models.ForeignKey(
        "labeling_app.Assignment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    size_bytes = models.PositiveBigIntegerField(help_text="Size of the clip when it was served.")
    served_ranges = models.JSONField(default=list)
    served_bytes = models.PositiveBigIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)
    first_served_at = models.DateTimeField()
    last_served_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["candidate"], condition=models.Q(assignment__isnull=True), name="clip_serving_once_for_author"
            ),
            models.UniqueConstraint(fields=["candidate", "assignment"], name="clip_serving_once_per_reviewer"),
            models.CheckConstraint(
                condition=models.Q(served_bytes__lte=models.F("size_bytes")), name="clip_serving_within_size"
            ),
        ]

    def __str__(self) -> str:
        return f"clip of candidate {self.candidate_id}: {self.served_bytes}/{self.size_bytes} bytes served"
