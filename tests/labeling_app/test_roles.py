"""Roles are groups with permissions; a command creates users with a role."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling_app.roles import ROLE_PERMISSIONS, ROLES, create_user_with_role

pytestmark = pytest.mark.django_db


def test_every_role_exists_with_exactly_its_permissions():
    for role in ROLES:
        group = Group.objects.get(name=role)
        held = {f"{app}.{codename}" for app, codename in
                group.permissions.values_list("content_type__app_label", "codename")}
        assert held == {name if "." in name else f"labeling_app.{name}" for name in ROLE_PERMISSIONS[role]}


def test_create_role_user_command(monkeypatch):
    monkeypatch.setenv("NEW_USER_PASSWORD", "correct-horse-battery")
    call_command("create_role_user", "zoe", role="engineer", password_env="NEW_USER_PASSWORD")
    user = get_user_model().objects.get(username="zoe")
    assert list(user.groups.values_list("name", flat=True)) == ["engineer"]
    assert user.check_password("correct-horse-battery")
    assert user.is_staff
    assert user.has_perm("labeling_app.add_trainingjob")
    assert not user.has_perm("labeling_app.label_campaign")


def test_create_role_user_rejects_a_missing_password(monkeypatch):
    monkeypatch.delenv("NOPE", raising=False)
    with pytest.raises(CommandError, match="NOPE is empty or not set"):
        call_command("create_role_user", "x", role="lead", password_env="NOPE")
    assert not get_user_model().objects.filter(username="x").exists()


def test_unknown_role_is_refused():
    with pytest.raises(ValueError, match="Unknown role 'boss'"):
        create_user_with_role("y", "long-enough-pw", "boss")


def test_annotator_cannot_open_the_admin_but_a_lead_can(client):
    create_user_with_role("ann", "annotator-pass-1", "annotator")
    create_user_with_role("boss", "lead-pass-12345", "lead")
    # Through the login form, as a browser does (login throttling needs the request).
    client.post("/accounts/login/", {"username": "ann", "password": "annotator-pass-1"})
    assert client.get("/admin/").status_code == 302  # redirected to the admin login
    client.logout()
    assert client.post("/accounts/login/", {"username": "boss", "password": "lead-pass-12345"}).status_code == 302
    response = client.get("/admin/labeling_app/comparison/")
    assert response.status_code == 200
    # Leads read comparisons but can neither add nor delete them.
    assert client.get("/admin/labeling_app/comparison/add/").status_code == 403


def test_login_page_answers(client):
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    assert b"Log in" in response.content
