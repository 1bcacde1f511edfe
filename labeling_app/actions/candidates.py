"""Candidate transitions, called by the sampling workers (and by ``serve`` for a dead worker).

The moves themselves are ``labeling_app.lifecycle``'s (conditional, per attempt); this module
adds what a candidate's end means to the site: once a candidate is ready or failed, its
annotator gets a full lock again to watch, judge or give the item back.
"""

from __future__ import annotations

from labeling_app import lifecycle
from labeling_app.actions.assignments import extend_lock_after_sampling
from labeling_app.lifecycle import CANDIDATES, Attempt
from labeling_app.models import Candidate


def do_claim_candidate(candidate_id: int, worker: str) -> tuple[Attempt, Candidate] | None:
    """Start an attempt on the candidate; None when there is nothing to do (see ``lifecycle.claim``).

    Returns the attempt and the row with its round, scenario and variant.
    """
    attempt = lifecycle.claim(CANDIDATES, candidate_id, worker)
    if attempt is None:
        return None
    candidate = Candidate.objects.select_related("round__scenario", "variant").get(pk=candidate_id)
    return attempt, candidate


def do_complete_candidate(attempt: Attempt, *, media_name: str, tokens_name: str, duration_seconds: float,
                          sample_seconds: float, render_seconds: float) -> bool:
    """Make this attempt's stored files the candidate's and mark it ready; False if superseded
    (then the files are this attempt's alone, and the caller deletes them)."""
    done = lifecycle.complete(attempt, media=media_name, tokens=tokens_name, duration_seconds=duration_seconds,
                              sample_seconds=sample_seconds, render_seconds=render_seconds)
    if done:
        _extend_lock(attempt.pk)
    return done


def do_fail_candidate(attempt: Attempt, error: str) -> bool:
    """Fail the candidate for good with a message engineers can read (annotators see a fixed one)."""
    failed = lifecycle.fail(attempt, error)
    if failed:
        _extend_lock(attempt.pk)
    return failed


def do_retry_or_fail_candidate(attempt: Attempt, error: str, countdown: float) -> str:
    """Queue the candidate again after an unexpected error, or fail it on its last attempt."""
    status = lifecycle.retry_or_fail(attempt, error, countdown)
    if status == lifecycle.FAILED:
        _extend_lock(attempt.pk)
    return status


def _extend_lock(candidate_id: int) -> None:
    extend_lock_after_sampling(Candidate.objects.values_list("round_id", flat=True).get(pk=candidate_id))
