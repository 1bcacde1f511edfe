"""The ``stats`` queue: compute the statistics reports leads read (labeling_app.stats.refresh).

The task takes a campaign id (None: the overall report), recomputes from the database and
stores the report; running it twice is harmless. A lost database connection retries with
backoff; any other error is left on the report row for the page to show.
"""

import logging

from django.db import InterfaceError, OperationalError

from labeling_app.stats.refresh import compute_and_store, record_failure
from workers.celery import app

logger = logging.getLogger(__name__)


@app.task(
    name="workers.stats.refresh_statistics",
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=5,
)
def refresh_statistics(campaign_id: int | None) -> str:
    try:
        report = compute_and_store(campaign_id)
    except (OperationalError, InterfaceError):
        raise
    except Exception as exc:
        logger.exception("statistics of campaign %s failed", campaign_id)
        record_failure(campaign_id, f"{type(exc).__name__}: {exc}")
        return "failed"
    if report is None:
        return "campaign gone"
    return f"{report.comparison_count} comparisons in {report.compute_seconds:.2f} s"
