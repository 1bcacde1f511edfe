"""A logged-in HTTP session against a running site (``serve``, gunicorn), standard library only.

The tests that start real server processes drive them as a browser's requests would: cookies,
the CSRF token from the cookie, form and multipart posts, and redirects seen, not followed.
"""

from __future__ import annotations

import time
import urllib.request

from alignment.loop.site import Session


class SiteSession(Session):
    """The loop's browser-like session without its retries: a test sees a refused connection as
    it happened (``SiteError``)."""

    def __init__(self, base: str):
        super().__init__(base, timeout=60, retries=0)


def wait_until_answers(base: str, deadline: float, path: str = "/healthz") -> float:
    """Poll ``path`` until it answers 200; the monotonic time it first did."""
    while True:
        try:
            with urllib.request.urlopen(base + path, timeout=3) as answer:
                if answer.status == 200:
                    return time.monotonic()
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{base}{path} did not answer in time")
        time.sleep(0.2)
