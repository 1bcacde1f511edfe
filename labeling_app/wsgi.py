"""WSGI entry point (gunicorn labeling_app.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "labeling_app.settings")
application = get_wsgi_application()
