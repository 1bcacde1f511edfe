"""The engineer's and the lead's part of the loop, through their pages and the REST API.

An engineer freezes a snapshot on ``/jobs/``, launches a reward-model job and then a PPO job with
the launch form's typed fields, and follows each job's page until it ends; the worker on the
``jobs`` queue runs them and registers the PPO policy as a variant. A lead reads the records and
the statistics through ``/api/`` (session authentication), asking for a fresh report first.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable

from alignment.loop.site import Session, SiteError, expect

STATUS = re.compile(r'id="job-status" data-status="([a-z]+)"')
ERROR = re.compile(r'<p class="error" id="job-error">(.*?)</p>', re.S)
NEW_VARIANT = re.compile(r'id="new-variant">New variant: <strong>([^<]+)</strong>')
FINISHED = ("succeeded", "failed", "cancelled")


def options(page: str, field: str) -> dict[str, int]:
    """label -> value of the options of the page's ``<select name=field>``."""
    select = re.search(rf'<select name="{field}"[^>]*>(.*?)</select>', page, re.S)
    if select is None:
        raise SiteError(f"the page has no field {field}")
    return {html.unescape(label).strip(): int(value)
            for value, label in re.findall(r'<option value="(\d+)"[^>]*>(.*?)</option>', select.group(1), re.S)}


class Engineer:
    def __init__(self, session: Session):
        self.session = session

    def freeze_snapshot(self, campaign_id: int, name: str) -> None:
        token = self.session.form_token("/jobs/")
        answer = self.session.post_form("/jobs/snapshots/", {"csrfmiddlewaretoken": token, "snapshot-campaigns": campaign_id,
                                                              "snapshot-name": name, "snapshot-min_confidence": 1})
        if answer.status != 302:
            errors = re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', answer.text, re.S)
            raise SiteError(f"freezing the snapshot answered {answer.status}: {errors or answer.text[:300]}")

    def launch(self, fields: dict) -> int:
        """POST the launch form (``kind``, ``base_variant``... without the ``job-`` prefix); the new job's id."""
        token = self.session.form_token("/jobs/")
        answer = self.session.post_form("/jobs/", {"csrfmiddlewaretoken": token,
                                                   **{f"job-{k}": v for k, v in fields.items()}})
        if answer.status != 302 or not re.match(r"^/jobs/\d+/$", answer.location):
            errors = re.findall(r'<ul class="errorlist[^"]*">(.*?)</ul>', answer.text, re.S)
            raise SiteError(f"launching a {fields.get('kind')} job answered {answer.status}: {errors or answer.text[:500]}")
        return int(answer.location.strip("/").split("/")[-1])

    def wait(self, job_id: int, timeout: float, on_poll: Callable[[str], None] = lambda page: None) -> str:
        """Follow the job's page until it ends; the page's HTML. A failed or cancelled job raises."""
        deadline = time.monotonic() + timeout
        while True:
            page = expect(self.session.get(f"/jobs/{job_id}/"), 200, f"job {job_id}").text
            on_poll(page)
            status = STATUS.search(page).group(1)
            if status == "succeeded":
                return page
            if status in FINISHED:
                found = ERROR.search(page)
                raise SiteError(f"job {job_id} {status}: {html.unescape(found.group(1)) if found else ''}")
            if time.monotonic() > deadline:
                raise SiteError(f"job {job_id} did not finish within {timeout:.0f} s (status {status})")
            time.sleep(3)


class Lead:
    def __init__(self, session: Session):
        self.session = session

    def listing(self, path: str) -> list[dict]:
        """Every row of a cursor-paginated API listing."""
        rows, url = [], path
        while url:
            page = self.session.get_json(url)
            rows += page["results"]
            url = page["next"] and page["next"].split("://", 1)[1].split("/", 1)[1]
            url = url and "/" + url
        return rows

    def statistics(self, campaign_id: int, comparisons: int, timeout: float) -> dict:
        """A freshly computed report of the campaign that counts ``comparisons`` votes."""
        expect(self.session.post_form(f"/api/campaigns/{campaign_id}/statistics/refresh/", {}), 200, "refresh")
        deadline = time.monotonic() + timeout
        while True:
            stored = self.session.get_json(f"/api/campaigns/{campaign_id}/statistics/")
            if stored["error"]:
                raise SiteError(f"the statistics of campaign {campaign_id} failed: {stored['error']}")
            if stored["computed_at"] and not stored["refresh_queued"] and stored["comparison_count"] == comparisons:
                return stored
            if time.monotonic() > deadline:
                raise SiteError(f"no fresh statistics of campaign {campaign_id} within {timeout:.0f} s: {stored}")
            time.sleep(2)
