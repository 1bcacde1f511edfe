"""Login throttling (django-axes): per username and per address, on the site's login and the
admin's, with a clear message, and a record leads can see."""

from __future__ import annotations

import pytest
from django.test import Client

from labeling_app.roles import ANNOTATOR
from tests.labeling_app.conftest import make_user

pytestmark = pytest.mark.django_db

LIMIT = 10  # settings.AXES_FAILURE_LIMIT


def login(client: Client, username: str, password: str, url: str = "/accounts/login/", address="10.0.0.1"):
    return client.post(url, {"username": username, "password": password, "next": "/"}, REMOTE_ADDR=address)


@pytest.fixture
def carol():
    user = make_user(ANNOTATOR, "carol")
    user.set_password("carols-right-password")
    user.save()
    return user


def test_the_eleventh_login_after_ten_wrong_passwords_is_refused_even_when_right(carol, lead):
    client = Client()
    for attempt in range(LIMIT - 1):
        response = login(client, "carol", f"wrong-{attempt}")
        assert response.status_code == 200, attempt  # the form again, with its error
        assert b"didn't match" in response.content
    assert login(client, "carol", "wrong-again").status_code == 429  # the tenth locks
    refused = login(client, "carol", "carols-right-password")
    assert refused.status_code == 429
    text = refused.content.decode()
    assert "Too many failed logins" in text and "even with the right password" in text
    assert "sessionid" not in client.cookies or not client.cookies["sessionid"].value
    assert client.get("/label/").status_code == 302  # not logged in

    # A lead sees the lockout in the admin.
    lead_client = Client()
    lead_client.force_login(lead)
    page = lead_client.get("/admin/axes/accessattempt/")
    assert page.status_code == 200
    assert "carol" in page.content.decode() and "10.0.0.1" in page.content.decode()


def test_the_lockout_is_per_username_from_any_address_and_per_address_for_any_username(carol):
    other = make_user(ANNOTATOR, "dave")
    other.set_password("daves-right-password")
    other.save()
    for attempt in range(LIMIT):  # each from a different address: only the username adds up
        login(Client(), "carol", f"wrong-{attempt}", address=f"10.0.1.{attempt}")
    assert login(Client(), "carol", "carols-right-password", address="10.0.2.1").status_code == 429
    assert login(Client(), "dave", "daves-right-password", address="10.0.2.1").status_code == 302

    for attempt in range(LIMIT):  # one address trying many usernames
        login(Client(), f"nobody-{attempt}", "guess", address="10.0.3.3")
    assert login(Client(), "dave", "daves-right-password", address="10.0.3.3").status_code == 429
    assert login(Client(), "dave", "daves-right-password", address="10.0.3.4").status_code == 302


def test_the_admin_login_is_throttled_too(lead):
    lead.set_password("leads-right-password")
    lead.save()
    client = Client()
    for attempt in range(LIMIT):
        assert login(client, lead.username, f"wrong-{attempt}", url="/admin/login/").status_code in (200, 429)
    refused = login(client, lead.username, "leads-right-password", url="/admin/login/")
    assert refused.status_code == 429 and b"Too many failed logins" in refused.content


def test_fewer_failures_than_the_limit_do_not_lock_and_a_success_resets_them(carol):
    client = Client()
    for attempt in range(LIMIT - 1):
        login(client, "carol", f"wrong-{attempt}")
    assert login(client, "carol", "carols-right-password").status_code == 302
    client.logout()
    for attempt in range(LIMIT - 1):  # counted from zero again after the success
        login(client, "carol", f"wrong-again-{attempt}")
    assert login(client, "carol", "carols-right-password").status_code == 302
