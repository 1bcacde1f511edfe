"""Settings come from the environment, and production mode refuses unsafe defaults."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT, UNDER_CI


def run_manage(tmp_path, *args, **env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    env.update(HER_VAR_DIR=str(tmp_path / "var"), **env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )


def test_production_mode_refuses_the_default_secret_key(tmp_path):
    result = run_manage(tmp_path, "check", DJANGO_DEBUG="0")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    assert "Production mode" in result.stderr


def test_production_mode_refuses_the_default_key_even_when_set_explicitly(tmp_path):
    from labeling_app.settings import DEFAULT_SECRET_KEY

    result = run_manage(tmp_path, "check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=DEFAULT_SECRET_KEY)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_production_mode_passes_the_deploy_check(tmp_path):
    result = run_manage(
        tmp_path, "check", "--deploy", "--fail-level", "WARNING",
        DJANGO_DEBUG="0", DJANGO_SECRET_KEY="k" * 20 + "0123456789abcdefghijklmnopqrstuvwxyzQWERTY",
        DJANGO_ALLOWED_HOSTS="labeling.example.org",
    )
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_a_malformed_boolean_is_an_error_not_false(tmp_path):
    result = run_manage(tmp_path, "check", DJANGO_DEBUG="maybe")
    assert result.returncode != 0
    assert "DJANGO_DEBUG='maybe' is not a boolean" in result.stderr


def test_embedded_defaults_are_sqlite_and_the_filesystem_broker(tmp_path):
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='labeling_app.settings'; django.setup();"
        "from django.conf import settings as s;"
        "print(s.DATABASES['default']['ENGINE']); print(s.CELERY_BROKER_URL);"
        "print(s.CELERY_BROKER_TRANSPORT_OPTIONS['data_folder_in'])"
    )
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["HER_VAR_DIR"] = str(tmp_path / "var")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.split()
    assert out[0] == "django.db.backends.sqlite3"
    assert out[1] == "filesystem://"
    assert out[2].startswith(str(tmp_path / "var"))


def test_the_suite_runs_on_postgresql_under_ci(django_db_setup, django_db_blocker):
    from django.db import connection

    if UNDER_CI:
        assert connection.vendor == "postgresql", "CI must run the suite against PostgreSQL"
    else:
        assert connection.vendor in {"postgresql", "sqlite"}


def test_production_mode_refuses_a_short_or_repetitive_secret_key_by_name(tmp_path):
    for key, reason in (("x", "has 1 characters; at least 50"),
                        ("ab" * 40, "has 2 distinct characters; at least 5"),
                        ("django-insecure-" + "q1w2e3r4t5y6" * 5, "starts with 'django-insecure-'")):
        result = run_manage(tmp_path, "check", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=key,
                            DJANGO_ALLOWED_HOSTS="labeling.example.org")
        assert result.returncode != 0, key
        assert "DJANGO_SECRET_KEY " + reason in result.stderr, result.stderr[-2000:]
