"""Sessions and users come from a cache shared by all processes, and go away from it at once."""

import pytest
from django.test import Client
from django.urls import reverse

from labeling_app.authentication import SHARED_CACHE, user_cache_key
from tests.labeling_app.conftest import make_campaign

pytestmark = pytest.mark.django_db


def status_of_next(client: Client) -> int:
    """200 for a logged-in annotator; a logged-out one is sent to the login page (302)."""
    response = client.post(reverse("labeling:next"), HTTP_ACCEPT="application/json")
    if response.status_code == 302:
        assert response.url.startswith(reverse("login"))
    return response.status_code


def logged_in_pair(user) -> tuple[Client, Client]:
    """Two browsers (think: two web processes) holding the same session cookie."""
    first = Client()
    first.force_login(user)
    second = Client()
    second.cookies["sessionid"] = first.cookies["sessionid"].value
    return first, second


def test_a_logout_ends_the_session_for_every_holder_of_the_cookie(annotator):
    make_campaign()
    first, second = logged_in_pair(annotator)
    assert status_of_next(first) == 200
    assert status_of_next(second) == 200  # both served from the cached session and user
    assert first.post(reverse("logout")).status_code == 302
    assert status_of_next(second) == 302


def test_a_deactivated_user_is_refused_on_the_next_request(annotator):
    make_campaign()
    first, second = logged_in_pair(annotator)
    assert status_of_next(first) == 200
    annotator.is_active = False
    annotator.save()
    assert status_of_next(first) == 302
    assert status_of_next(second) == 302


def test_a_password_change_ends_other_sessions(annotator):
    from django.core.cache import caches

    first, _ = logged_in_pair(annotator)
    assert first.get(reverse("labeling:workspace")).status_code == 200
    assert caches[SHARED_CACHE].get(user_cache_key(annotator.pk)) is not None
    annotator.set_password("a-new-long-password")
    annotator.save()
    assert caches[SHARED_CACHE].get(user_cache_key(annotator.pk)) is None
    assert first.get(reverse("labeling:workspace")).status_code == 302  # to the login page


def test_a_cached_request_reads_only_two_columns_of_the_user(annotator, django_assert_num_queries):
    make_campaign()
    client = Client()
    client.force_login(annotator)
    status_of_next(client)  # claims the item and fills the cache
    # Resuming: the session from the cache, the user's is_active and password, the assignment.
    with django_assert_num_queries(2) as queries:
        assert status_of_next(client) == 200
    first = queries.captured_queries[0]["sql"]
    assert "is_active" in first and "password" in first and "django_session" not in first



@pytest.mark.parametrize("how", ["save", "bulk update", "raw SQL"])
def test_every_session_of_a_deactivated_user_ends_however_the_deactivation_was_written(annotator, how):
    from django.contrib.auth import get_user_model
    from django.db import connection

    make_campaign()
    first, second = logged_in_pair(annotator)
    third = Client()
    third.force_login(annotator)  # another session of the same user (another browser)
    for client in (first, second, third):
        assert status_of_next(client) == 200  # everything cached now
    if how == "save":
        annotator.is_active = False
        annotator.save()
    elif how == "bulk update":
        assert get_user_model().objects.filter(pk=annotator.pk).update(is_active=False) == 1
    else:
        with connection.cursor() as cursor:
            cursor.execute("UPDATE auth_user SET is_active = %s WHERE id = %s", [False, annotator.pk])
    for client in (first, second, third):
        assert status_of_next(client) == 302  # to the login page
    # The sessions are gone, not dormant: reactivating the account does not bring them back.
    get_user_model().objects.filter(pk=annotator.pk).update(is_active=True)
    for client in (first, third):
        assert status_of_next(client) == 302


def test_a_password_changed_by_a_bulk_update_ends_the_sessions(annotator):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    client = Client()
    client.force_login(annotator)
    assert client.get(reverse("labeling:workspace")).status_code == 200
    get_user_model().objects.filter(pk=annotator.pk).update(password=make_password("another-password-1"))
    assert client.get(reverse("labeling:workspace")).status_code == 302


def test_a_lead_deactivates_and_reactivates_an_annotator_in_the_admin(annotator, other_annotator, lead, engineer):
    from django.contrib.sessions.models import Session

    make_campaign()
    annotator_client = Client()
    annotator_client.force_login(annotator)
    assert status_of_next(annotator_client) == 200
    lead_client = Client()
    lead_client.force_login(lead)
    changelist = lead_client.get("/admin/auth/user/")
    assert changelist.status_code == 200
    listed = changelist.content.decode()
    # Leads see annotators only: no staff account (engineers, leads, themselves) to edit.
    assert "alice" in listed and "bob" in listed and engineer.username not in listed
    assert lead_client.get(f"/admin/auth/user/{engineer.pk}/change/").status_code == 302  # "does not exist"
    assert lead_client.get(f"/admin/auth/user/{annotator.pk}/password/").status_code == 403

    sessions_before = Session.objects.count()
    response = lead_client.post("/admin/auth/user/", {"action": "deactivate", "_selected_action": [annotator.pk]})
    assert response.status_code == 302
    annotator.refresh_from_db()
    assert not annotator.is_active
    assert Session.objects.count() == sessions_before - 1  # the annotator's session was deleted
    assert status_of_next(annotator_client) == 302

    # A lead cannot grant anything through the change form: only is_active is a field there.
    page = lead_client.get(f"/admin/auth/user/{annotator.pk}/change/").content.decode()
    assert 'name="is_active"' in page
    for field in ("is_superuser", "is_staff", "groups", "user_permissions", "password1"):
        assert f'name="{field}"' not in page, field

    response = lead_client.post("/admin/auth/user/", {"action": "reactivate", "_selected_action": [annotator.pk]})
    assert response.status_code == 302
    annotator.refresh_from_db()
    assert annotator.is_active
    assert status_of_next(annotator_client) == 302  # the old session stays ended: log in again
    annotator_client.force_login(annotator)
    assert status_of_next(annotator_client) == 200
