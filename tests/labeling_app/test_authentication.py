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


def test_a_cached_request_reads_neither_the_session_nor_the_user(annotator, django_assert_num_queries):
    make_campaign()
    client = Client()
    client.force_login(annotator)
    status_of_next(client)  # claims the item and fills the cache
    with django_assert_num_queries(1):  # resuming: one read of the annotator's own assignment
        assert status_of_next(client) == 200

