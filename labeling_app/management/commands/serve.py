"""Run the whole embedded deployment: migrate, then the web server and one Celery worker.

``manage.py serve`` is what ``./dev run`` ends in. It supervises its child processes (the web
servers of ``labeling_app.webserver``, one per core, and a Celery worker consuming ``sampling``
and ``jobs``) and stops them all when one exits or on Ctrl-C. The worker is a separate process
talking through the configured broker, exactly as in the scale-out mode; nothing runs inline.
"""

import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from labeling_app.demo import ensure_demo_content
from labeling_app.webserver import PortInUse, default_processes, start_web_servers


class Command(BaseCommand):
    help = "Migrate, then run the site (gunicorn, a process per core) and a Celery worker until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HER_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("HER_PORT", "8000")))
        parser.add_argument("--web-processes", type=int, default=None,
                            help="web server processes (default: HER_WEB_PROCESSES, else one per core)")
        parser.add_argument(
            "--worker-concurrency", type=int, default=int(os.environ.get("HER_WORKER_CONCURRENCY", "1"))
        )
        parser.add_argument("--no-worker", action="store_true", help="Run the site only.")

    def handle(self, *args, host, port, web_processes, worker_concurrency, no_worker, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.stdout.write(f"Database: {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}"
                          f" · broker: {settings.CELERY_BROKER_URL.split('://')[0]}")
        if settings.HER_DEMO_USERS:
            users = ensure_demo_content()
            self.stdout.write("Demo users (embedded mode only):")
            for username, password, role in users:
                self.stdout.write(f"  {role:<10} {username:<12} password: {password}")

        try:
            processes = default_processes() if web_processes is None else web_processes
            children = start_web_servers(host, port, processes)
        except (PortInUse, ValueError) as error:
            raise CommandError(str(error)) from None
        if not no_worker:
            children.append(subprocess.Popen([
                sys.executable, "-m", "celery", "-A", "workers", "worker",
                "-Q", "sampling,jobs,stats", "--concurrency", str(worker_concurrency),
                "--loglevel", "INFO", "--hostname", "embedded@%h",
            ]))
        self.stdout.write(self.style.SUCCESS(f"Site: http://{host}:{port}/  (Ctrl-C stops everything)"))
        self.stdout.flush()

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children):
                time.sleep(0.5)
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
        exited = [child.args[2] for child in children if child.returncode not in (0, -signal.SIGTERM)]
        if exited and not stopping:
            self.stderr.write(f"Stopped because a child process failed: {exited}")
            sys.exit(1)
