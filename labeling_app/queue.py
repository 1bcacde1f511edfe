"""The site's only way to reach workers: send a task by name, after the transaction commits.

The site never imports ``workers`` (nor torch): it holds a Celery *client* configured from the
same Django settings the workers read, and names tasks as strings. Sending on commit means a
worker never looks for a row that is not visible yet, and a rolled-back request sends nothing.
"""

from functools import partial

from celery import Celery
from django.db import transaction

client = Celery("labeling_app")
client.config_from_object("django.conf:settings", namespace="CELERY")


def send_task_on_commit(name: str, *args, **kwargs) -> None:
    """Queue ``name(*args)`` once the current transaction commits (immediately outside one)."""
    transaction.on_commit(partial(client.send_task, name, args=args, kwargs=kwargs))
