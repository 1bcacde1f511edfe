"""Request guards that run around every view: bodies the site cannot decode, ended sessions."""

from __future__ import annotations

import codecs

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse, JsonResponse

# Every form and upload the site reads is UTF-8 (ASCII is a subset of it).
ACCEPTED_CHARSETS = {"utf-8", "ascii"}
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}


def body_problem(request: HttpRequest) -> str:
    """Why the request's body cannot be decoded as the site reads bodies; "" if it can.

    Django reads urlencoded and multipart bodies in the declared charset: an unknown one raises
    LookupError and a non-UTF-8 form raises in the middle of the CSRF check, both 500s. A
    compressed body (``Content-Encoding``) would be parsed as if it were plain.
    """
    encoding = request.META.get("HTTP_CONTENT_ENCODING", "").strip().lower()
    if encoding not in ("", "identity"):
        return (f"The request body is compressed (Content-Encoding: {encoding}); "
                "send it uncompressed.")
    content_type = request.META.get("CONTENT_TYPE", "")
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() not in FORM_TYPES:
        return ""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = value.strip().strip('"').lower()
        try:
            canonical = codecs.lookup(charset).name
        except LookupError:
            return f"The request body's charset {charset!r} is unknown; send the form as UTF-8."
        if canonical not in ACCEPTED_CHARSETS:
            return f"The request body's charset {charset!r} is not accepted; send the form as UTF-8."
    return ""


class BodyEncodingMiddleware:
    """400 with a readable message for a body that cannot be decoded, before anything reads it."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH", "DELETE") and (problem := body_problem(request)):
            if "application/json" in request.headers.get("Accept", ""):
                return JsonResponse({"error": problem}, status=400)
            return HttpResponse(problem, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class EndedSessionMiddleware:
    """A session whose user no longer authenticates (deactivated, deleted, password changed
    however that was written) is flushed on its next request, which goes on as an anonymous one
    (to the login page). Without this the cookie would keep a dormant session that a later
    reactivation would bring back to life."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if SESSION_KEY in request.session and not request.user.is_authenticated:
            request.session.flush()
        return self.get_response(request)
