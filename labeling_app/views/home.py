"""The landing page each role sees after login, and a health probe for operators."""

from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from labeling_app.roles import role_of


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "labeling/home.html", {"role": role_of(request.user)})


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Answers 200 when the site can reach its database (used by `serve` and load balancers)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok", "database": connection.vendor})
