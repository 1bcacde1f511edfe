"""Django settings, read from the environment once, here.

Every value an operator may need to change comes from an environment variable with a safe
default for the embedded mode (one laptop, no services: SQLite and kombu's filesystem broker
under ``var/``). The same code scales out by environment alone: see the table in README.md.

Production mode is ``DJANGO_DEBUG=0``. It refuses to start without a real ``DJANGO_SECRET_KEY``
and turns on the HTTPS hardening that ``manage.py check --deploy`` asks for.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    """Parse a boolean environment variable; anything unrecognised is an error, not False."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


# --- Where state lives -------------------------------------------------------------------------

# Everything the embedded mode writes (database, broker messages, media, job outputs) goes here.
VAR_DIR = Path(os.environ.get("HER_VAR_DIR", BASE_DIR / "var")).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

# --- Core ---------------------------------------------------------------------------------------

DEBUG = env_bool("DJANGO_DEBUG", True)

# The embedded default key is public (it is in this file); production refuses it below.
DEFAULT_SECRET_KEY = "embedded-insecure-key-do-not-use-in-production"
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "") or DEFAULT_SECRET_KEY


def secret_key_problem(key: str) -> str:
    """What makes ``key`` unfit for production, by Django's own rule (the deploy check's
    W009, enforced here instead of warned about); "" for a good key."""
    if key == DEFAULT_SECRET_KEY:
        return "is not set (the embedded default is public)"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"has {len(key)} characters; at least {SECRET_KEY_MIN_LENGTH} are needed"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"has {len(set(key))} distinct characters; at least {SECRET_KEY_MIN_UNIQUE_CHARACTERS} are needed"
    if key.startswith(SECRET_KEY_INSECURE_PREFIX):
        return f"starts with {SECRET_KEY_INSECURE_PREFIX!r}, the mark of a generated development key"
    return ""


if not DEBUG and (_problem := secret_key_problem(SECRET_KEY)):
    raise ImproperlyConfigured(
        f"Production mode (DJANGO_DEBUG=0) needs a strong secret key: DJANGO_SECRET_KEY {_problem}. "
        f"Set it to a random string of at least {SECRET_KEY_MIN_LENGTH} characters, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`."
    )

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "auditlog",
    "axes",
    "labeling_app.apps.LabelingAppConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything parses a body (CSRF reads the form): an undecodable one is a 400.
    "labeling_app.middleware.BodyEncodingMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "labeling_app.middleware.EndedSessionMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records who changed an audited record (labeling_app.audit).
    "auditlog.middleware.AuditlogMiddleware",
    # Last: it turns a lockout signalled while logging in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "labeling_app.urls"
WSGI_APPLICATION = "labeling_app.wsgi.application"
ASGI_APPLICATION = "labeling_app.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------

SQLITE_PATH = VAR_DIR / "db.sqlite3"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{SQLITE_PATH}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # The same backend with a health check that polls the socket instead of sending SELECT 1.
    DATABASES["default"]["ENGINE"] = "labeling_app.postgresql"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, worker, tests) share the file: wait for locks instead of failing,
    # and write-ahead logging lets readers proceed while one process writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # Tests start real worker processes, so the test database must be a file they can open.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_db.sqlite3")}
    DATABASES["default"]["CONN_MAX_AGE"] = 0

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Caches and sessions ------------------------------------------------------------------------

# "shared" holds sessions and logged-in users (labeling_app.authentication). It must be one cache
# for every web process, so that a logout or a deactivation takes effect everywhere at once:
# Redis when scaled out, else files under VAR_DIR that every process on this machine reads.
# "default" stays per process: it only holds answers that may be a minute stale (access.py).
HER_CACHE_URL = os.environ.get("HER_CACHE_URL", "")
if HER_CACHE_URL:
    _shared_cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": HER_CACHE_URL}
else:
    _shared_cache = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": str(VAR_DIR / "cache"),
        # Past this many files a write deletes a third of them (found again in the database).
        "OPTIONS": {"MAX_ENTRIES": 20_000},
    }
# Entries are keyed by primary key: databases that share a cache must not share keys.
_shared_cache["KEY_PREFIX"] = f"{DATABASES['default']['HOST']}:{DATABASES['default']['PORT']}:{DATABASES['default']['NAME']}"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": _shared_cache,
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
SESSION_CACHE_ALIAS = "shared"

# --- Auth ---------------------------------------------------------------------------------------

# Axes first: it refuses a locked-out login before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "labeling_app.authentication.CachedModelBackend"]

# Login throttling (django-axes), on the site's login and the admin's alike. Failures are
# counted per username and, separately, per address; the limit-th failure within the cool-off
# locks that username or address out for the cool-off, the right password included. Leads see
# the attempts in the admin (Axes: access attempts) and unlock one by deleting it.
AXES_FAILURE_LIMIT = env_int("HER_LOGIN_FAILURE_LIMIT", 10)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("HER_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_SENSITIVE_PARAMETERS = ["password"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- REST API (labeling_app.api): leads only; sessions for the browser, tokens for scripts -------

REST_FRAMEWORK = {
    # Token first: a script without valid credentials gets 401 with WWW-Authenticate: Token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["labeling_app.api.permissions.IsLead"],
    "DEFAULT_PAGINATION_CLASS": "labeling_app.api.pagination.Cursor",
    "PAGE_SIZE": 100,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only: the browsable renderer would need inline script under the strict CSP.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Her RLHF API",
    "DESCRIPTION": "Statistics, comparisons, snapshots, variants and jobs, for leads and their scripts.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["labeling_app.api.permissions.IsLead"],
    # The five dimensions share one choice set: one schema enum for all of them.
    "ENUM_NAME_OVERRIDES": {"JudgmentEnum": "labeling_app.models.choices.Judgment"},
}

# --- I18N ---------------------------------------------------------------------------------------

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media ---------------------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
MEDIA_ROOT = Path(os.environ.get("HER_MEDIA_ROOT", VAR_DIR / "media")).resolve()
# Media is never served as a public directory: views check ownership and set a fixed,
# safe content type. MEDIA_URL exists only for storage backends that require it.
MEDIA_URL = "/media-internal/"

AWS_STORAGE_BUCKET_NAME = os.environ.get("HER_S3_BUCKET", "")
if AWS_STORAGE_BUCKET_NAME:
    # S3-compatible media storage for the scale-out mode (django-storages, the `s3` extra).
    # Credentials come from the usual AWS_* environment variables read by boto3.
    _media_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": os.environ.get("HER_S3_ENDPOINT_URL") or None,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    _media_storage = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT)},
    }
STORAGES = {
    "default": _media_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- Celery (read by labeling_app.queue and workers.celery, namespace CELERY_) ------------------

BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    for _sub in ("queue", "processed", "control"):
        (BROKER_DIR / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # One folder for both directions: producers and consumers on this machine share it.
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Exchange bindings; kombu's default is a "control" folder in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # A message unacknowledged this long (its worker died) is delivered again.
        "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 600),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {}
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"file://{VAR_DIR / 'results'}")
if CELERY_RESULT_BACKEND.startswith("file://"):
    Path(CELERY_RESULT_BACKEND.removeprefix("file://")).mkdir(parents=True, exist_ok=True)
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Late acknowledgement: a message is acknowledged after its task ran, so a worker that dies
# mid-task leaves it to be delivered again. Tasks are idempotent by row id to make that safe.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "jobs"
CELERY_TASK_ROUTES = {
    "workers.sampling.*": {"queue": "sampling"},
    "workers.jobs.*": {"queue": "jobs"},
    "workers.stats.*": {"queue": "stats"},
}
CELERY_TASK_TRACK_STARTED = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Tasks are never run in the request process: no silent inline fallback.
CELERY_TASK_ALWAYS_EAGER = False

# --- Production hardening ---------------------------------------------------------------------

if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    if env_bool("DJANGO_BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
        # Login throttling counts the client's address, not the proxy's (one trusted hop).
        AXES_IPWARE_PROXY_COUNT = 1
        AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts and styles only from our own files (no inline
# code, no eval), media from our own views or the page's own recording (blob:), nothing framed.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True

# --- The labeling site's own settings ----------------------------------------------------------

# Upload limits, checked server-side before and while a turn is read (labeling_app.media_checks).
# A reverse proxy in front needs a body limit above HER_UPLOAD_MAX_BYTES. The one size limit:
# the page, the error messages and README all show it as media_checks.size_text writes it.
HER_UPLOAD_MAX_BYTES = env_int("HER_UPLOAD_MAX_BYTES", 50_000_000)
HER_UPLOAD_MAX_SECONDS = float(os.environ.get("HER_UPLOAD_MAX_SECONDS") or 60)
# The lifecycle of candidates and training jobs (labeling_app.lifecycle). A running row beats
# every HER_HEARTBEAT_SECONDS; one whose heartbeat is older than its stale limit belongs to a
# dead worker and is queued again. Each worker sweeps every HER_SWEEP_SECONDS; a queued row
# whose message is older than HER_RESEND_SECONDS gets it again (it may have been lost).
HER_HEARTBEAT_SECONDS = float(os.environ.get("HER_HEARTBEAT_SECONDS") or 5)
HER_CANDIDATE_STALE_SECONDS = env_int("HER_CANDIDATE_STALE_SECONDS", 60)
HER_JOB_STALE_SECONDS = env_int("HER_JOB_STALE_SECONDS", 120)
HER_SWEEP_SECONDS = float(os.environ.get("HER_SWEEP_SECONDS") or 15)
HER_RESEND_SECONDS = env_int("HER_RESEND_SECONDS", 120)
HER_SAMPLING_MAX_ATTEMPTS = env_int("HER_SAMPLING_MAX_ATTEMPTS", 3)
# After an unexpected error a row is queued again in this many seconds, doubling per attempt.
HER_RETRY_BACKOFF_SECONDS = float(os.environ.get("HER_RETRY_BACKOFF_SECONDS") or 5)
HER_JOB_MAX_ATTEMPTS = env_int("HER_JOB_MAX_ATTEMPTS", 3)
# Training jobs write under HER_JOB_ROOT (one directory per job and attempt); a job may read
# checkpoints only under HER_CHECKPOINT_ROOTS (labeling_app.actions.jobs.checkpoint_allowed).
HER_JOB_ROOT = Path(os.environ.get("HER_JOB_ROOT", VAR_DIR / "jobs")).resolve()
HER_CHECKPOINT_ROOTS = [HER_JOB_ROOT, *map(Path, env_list("HER_CHECKPOINT_ROOTS", [str(VAR_DIR / "checkpoints")]))]
# Per sampling attempt: the soft limit raises inside the task (the row is retried or failed),
# the hard limit kills the worker process (a hung decode); both in seconds.
HER_SAMPLING_SOFT_TIME_LIMIT = env_int("HER_SAMPLING_SOFT_TIME_LIMIT", 600)
HER_SAMPLING_TIME_LIMIT = env_int("HER_SAMPLING_TIME_LIMIT", 660)
if min(HER_CANDIDATE_STALE_SECONDS, HER_JOB_STALE_SECONDS) < 3 * HER_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured("HER_CANDIDATE_STALE_SECONDS and HER_JOB_STALE_SECONDS must be at least three "
                               f"heartbeats (HER_HEARTBEAT_SECONDS={HER_HEARTBEAT_SECONDS:g}).")
if not 0 < HER_SAMPLING_SOFT_TIME_LIMIT < HER_SAMPLING_TIME_LIMIT:
    raise ImproperlyConfigured("HER_SAMPLING_SOFT_TIME_LIMIT must be positive and below HER_SAMPLING_TIME_LIMIT.")

# Leads' statistics (labeling_app.stats.refresh): a stored report older than this is refreshed
# by a worker when a lead opens it; a refresh is queued at most once per request interval.
HER_STATS_MAX_AGE_SECONDS = env_int("HER_STATS_MAX_AGE_SECONDS", 600)
HER_STATS_REQUEST_SECONDS = env_int("HER_STATS_REQUEST_SECONDS", 120)
HER_STATS_BOOTSTRAP_ROUNDS = env_int("HER_STATS_BOOTSTRAP_ROUNDS", 500)

# Demo users (annotator, engineer, lead) are created by `manage.py serve` in embedded mode only.
HER_DEMO_USERS = env_bool("HER_DEMO_USERS", DEBUG)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("HER_LOG_LEVEL", "INFO")},
    # Axes logs every login at INFO; failures and lockouts are warnings.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}
