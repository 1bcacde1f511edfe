"""The Celery application of the worker fleet.

Start a worker with ``celery -A workers worker -Q sampling,jobs,stats``. Configuration comes from
Django settings (``CELERY_*``), the same values the site's client uses, so both ends always
agree on broker, serializer (JSON only) and routing (``workers.sampling.*`` -> ``sampling``,
``workers.jobs.*`` -> ``jobs``, ``workers.stats.*`` -> ``stats``).
"""

import os

import django
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labeling_app.settings")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
django.setup()

app = Celery("workers")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Task modules are listed, not discovered: a reader sees every task the fleet runs here.
app.conf.imports = ("workers.health", "workers.jobs", "workers.sampling", "workers.stats")

from workers.sweeper import Sweeper  # noqa: E402  (needs django.setup() above)

app.steps["worker"].add(Sweeper)
