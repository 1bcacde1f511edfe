"""Who may open the annotator workspace, and the one shape of its error responses."""

from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

LABEL_PERMISSION = "labeling_app.label_campaign"
# Every annotator request checks the permission; two queries each time are most of a vote's
# cost. The answer is cached per process this long, so a revoked role takes effect within it.
PERMISSION_CACHE_SECONDS = 60
NOT_AN_ANNOTATOR = (
    "Only annotators can use the labeling workspace. Ask a lead to give your account the "
    "annotator role."
)


def json_error(message: str, status: int, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def page_error(request: HttpRequest, message: str, status: int) -> HttpResponse:
    return render(request, "labeling/error.html", {"message": message}, status=status)


def annotator_required(json: bool = False):
    """Log in first (pages redirect, JSON answers 401), then hold ``label_campaign`` (403)."""

    def decorator(view):
        @wraps(view)
        def wrapped(request: HttpRequest, *args, **kwargs):
            if not request.user.is_authenticated:
                if json:
                    return json_error("Your session ended. Log in again.", 401)
                return redirect_to_login(request.get_full_path())
            if not can_label(request.user):
                if json:
                    return json_error(NOT_AN_ANNOTATOR, 403)
                return page_error(request, NOT_AN_ANNOTATOR, 403)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


def can_label(user) -> bool:
    """Whether ``user`` holds the annotator permission (cached; see PERMISSION_CACHE_SECONDS)."""
    # date_joined tells apart users that reuse a primary key (a test database, a restored dump).
    key = f"can-label:{user.pk}:{user.date_joined.timestamp()}"
    allowed = cache.get(key)
    if allowed is None:
        allowed = user.has_perm(LABEL_PERMISSION)
        cache.set(key, allowed, PERMISSION_CACHE_SECONDS)
    return allowed


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")
