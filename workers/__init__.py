"""Celery workers: the only place where the database meets torch (see ARCHITECTURE.md)."""

from workers.celery import app

__all__ = ["app"]
