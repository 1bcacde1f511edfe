"""Precomputed reports: a worker computes and stores them; pages and the API read and request them.

A page never computes a report. It reads the stored one (one query), shows when it was
computed, and when it is missing or older than ``HER_STATS_MAX_AGE_SECONDS`` queues a refresh
by task name. ``requested_at`` is set by a conditional update, so concurrent views queue at
most one task per report and per ``HER_STATS_REQUEST_SECONDS``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from labeling_app.models import Campaign, StatisticsReport
from labeling_app.queue import send_task_on_commit
from labeling_app.stats.campaign import campaign_report, overall_report

TASK = "workers.stats.refresh_statistics"


def _row(campaign_id: int | None) -> StatisticsReport:
    try:
        with transaction.atomic():
            row, _ = StatisticsReport.objects.get_or_create(campaign_id=campaign_id)
    except IntegrityError:  # another process created it between our read and insert
        row = StatisticsReport.objects.get(campaign_id=campaign_id)
    return row


def is_stale(report: StatisticsReport | None) -> bool:
    if report is None or report.computed_at is None:
        return True
    return timezone.now() - report.computed_at > timedelta(seconds=settings.HER_STATS_MAX_AGE_SECONDS)


def request_refresh(campaign_id: int | None, force: bool = False) -> bool:
    """Queue a refresh of one report unless one was queued recently; True when queued."""
    row = _row(campaign_id)
    now = timezone.now()
    recent = now - timedelta(seconds=settings.HER_STATS_REQUEST_SECONDS)
    rows = StatisticsReport.objects.filter(pk=row.pk)
    if not force:
        rows = rows.filter(Q(requested_at__isnull=True) | Q(requested_at__lt=recent))
    claimed = rows.update(requested_at=now)
    if claimed:
        send_task_on_commit(TASK, campaign_id)
    return bool(claimed)


def read(campaign_id: int | None) -> StatisticsReport:
    """The stored report; when it is missing or stale a refresh is queued, and the row returned
    says so (``requested_at``; ``computed_at`` is None until the first computation)."""
    report = StatisticsReport.objects.filter(campaign_id=campaign_id).first()
    if is_stale(report) and request_refresh(campaign_id):
        report = StatisticsReport.objects.get(campaign_id=campaign_id)
    return report or _row(campaign_id)


def record_failure(campaign_id: int | None, error: str) -> None:
    """A refresh that failed leaves its reason on the row (the old numbers stay readable)."""
    StatisticsReport.objects.filter(campaign_id=campaign_id).update(error=error[:5000], requested_at=None)


def compute_and_store(campaign_id: int | None) -> StatisticsReport | None:
    """Compute one report and store it (the worker's side); None when the campaign is gone.

    The overall report is built from the stored campaign reports, computing any that are missing.
    """
    started = time.perf_counter()
    rounds = settings.HER_STATS_BOOTSTRAP_ROUNDS
    if campaign_id is None:
        reports = []
        for campaign in Campaign.objects.select_related("variant_a", "variant_b").order_by("pk"):
            stored = StatisticsReport.objects.filter(campaign=campaign, computed_at__isnull=False).first()
            reports.append(stored.payload if stored else compute_and_store(campaign.pk).payload)
        payload = overall_report(reports, bootstrap_rounds=rounds)
    else:
        campaign = Campaign.objects.select_related("variant_a", "variant_b").filter(pk=campaign_id).first()
        if campaign is None:
            return None
        payload = campaign_report(campaign, bootstrap_rounds=rounds)
    row = _row(campaign_id)
    row.payload = payload
    row.comparison_count = payload["comparisons"]
    row.computed_at = timezone.now()
    row.compute_seconds = time.perf_counter() - started
    row.error = ""
    row.requested_at = None
    row.save(update_fields=["payload", "comparison_count", "computed_at", "compute_seconds", "error", "requested_at"])
    return row
