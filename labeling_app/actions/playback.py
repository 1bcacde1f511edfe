"""Playback evidence: recording what the server sent, and judging whether a vote may land.

The media view reports every byte range it actually sent to a round's annotator
(``do_record_clip_served``); the comparison page reports when it was first sent
(``do_record_compare_served``). A vote is accepted only when ``playback_problem`` finds both
clips served (``MIN_SERVED_SHARE`` of their bytes) and the longer clip's duration passed since
the page went out, so a script that never fetched the clips, or votes at once, is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from labeling_app.models import ClipServing, Round

# A browser playing a clip to the end fetches all of it; a little slack covers a container's
# trailing bytes a player may skip, never a clip that was only started.
MIN_SERVED_SHARE = 0.9


def do_record_compare_served(round_: Round) -> None:
    """Remember the first time the comparison page of ``round_`` was sent (later loads keep it)."""
    if round_.compare_served_at is None:
        now = timezone.now()
        Round.objects.filter(pk=round_.pk, compare_served_at__isnull=True).update(compare_served_at=now)
        round_.compare_served_at = now


def merge_range(ranges: list[list[int]], start: int, end: int) -> list[list[int]]:
    """``ranges`` (sorted, disjoint ``[start, end)``) with ``[start, end)`` added.

    >>> merge_range([[0, 10], [20, 30]], 5, 25)
    [[0, 30]]
    """
    merged: list[list[int]] = []
    for low, high in sorted([*ranges, [start, end]]):
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    return merged


def do_record_clip_served(candidate_id: int, size_bytes: int, start: int, sent: int,
                          assignment_id: int | None = None) -> None:
    """Add the ``sent`` bytes from ``start`` of the candidate's clip to what its viewer got: the
    round's author, or the reviewer holding review assignment ``assignment_id``.

    The row is locked while the ranges are merged: a browser often has two range requests for
    one clip in flight at once.
    """
    if sent <= 0:
        return
    now = timezone.now()
    with transaction.atomic():
        serving, _ = ClipServing.objects.select_for_update().get_or_create(
            candidate_id=candidate_id, assignment_id=assignment_id,
            defaults={"size_bytes": size_bytes, "first_served_at": now, "last_served_at": now},
        )
        if serving.size_bytes != size_bytes:  # the file changed (never expected): start again
            serving.size_bytes, serving.served_ranges = size_bytes, []
        serving.served_ranges = merge_range(serving.served_ranges, start, min(start + sent, size_bytes))
        serving.served_bytes = sum(high - low for low, high in serving.served_ranges)
        serving.requests += 1
        serving.last_served_at = now
        serving.save()


@dataclass(frozen=True)
class ClipEvidence:
    """What the vote's statement read about one side's clip."""

    side: str  # "A (left)" or "B (right)"
    duration_seconds: float | None
    size_bytes: int | None  # None: never served
    served_bytes: int | None


def playback_problem(compare_served_at: datetime | None, clips: list[ClipEvidence],
                     now: datetime) -> str:
    """Why a vote on this pair cannot count yet, for the annotator; "" when it may."""
    for clip in clips:
        if not clip.size_bytes or (clip.served_bytes or 0) < MIN_SERVED_SHARE * clip.size_bytes:
            return (f"Response {clip.side} was not played: the page has not loaded it from the server. "
                    "Play both responses to the end, then vote.")
    longest = max((clip.duration_seconds or 0.0) for clip in clips)
    if compare_served_at is None:
        return "Open the comparison page and play both responses before you vote."
    elapsed = (now - compare_served_at).total_seconds()
    if elapsed < longest:
        return (f"You voted {elapsed:.0f} s after the comparison page opened, but the longer response lasts "
                f"{math.ceil(longest)} s. Play both responses to the end, then vote.")
    return ""
