"""Run the whole embedded deployment: migrate, then the web servers and one Celery worker.

``manage.py serve`` is what ``./dev run`` ends in. Its children (the web servers of
``labeling_app.webserver``, one per core, and a Celery worker consuming ``sampling``, ``jobs``
and ``stats``) are supervised (``labeling_app.supervisor``): one that dies is started again
with backoff while the others keep serving, and every start and exit is logged with its pid.
Ctrl-C or SIGTERM stops them all. The worker is a separate process talking through the
configured broker, exactly as in the scale-out mode; nothing runs inline.
"""

import os
import signal
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from labeling_app.demo import ensure_demo_content
from labeling_app.supervisor import Child, ChildKeepsFailing, Supervisor
from labeling_app.webserver import (
    REPO_ROOT,
    PortInUse,
    check_processes,
    default_processes,
    ensure_port_free,
    web_server_command,
)


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

        processes = default_processes() if web_processes is None else web_processes
        try:
            check_processes(processes)
            ensure_port_free(host, port)
        except (PortInUse, ValueError) as error:
            raise CommandError(str(error)) from None
        children = [Child(f"web-{n}", web_server_command(host, port), {"cwd": REPO_ROOT})
                    for n in range(1, processes + 1)]
        if not no_worker:
            # The same node name on every restart: the new process's sweeper queues again what
            # the dead one left running, at once (workers.sweeper).
            children.append(Child("worker", [
                sys.executable, "-m", "celery", "-A", "workers", "worker",
                "-Q", "sampling,jobs,stats", "--concurrency", str(worker_concurrency),
                "--loglevel", "INFO", "--hostname", "embedded@%h",
            ], {"cwd": REPO_ROOT}))

        def log(line: str) -> None:
            self.stdout.write(f"serve: {line}")
            self.stdout.flush()

        stopping = False

        def stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        supervisor = Supervisor(children, log)
        supervisor.start()
        self.stdout.write(self.style.SUCCESS(f"Site: http://{host}:{port}/  (Ctrl-C stops everything)"))
        self.stdout.flush()
        try:
            while not stopping:
                supervisor.poll()
                time.sleep(0.5)
        except ChildKeepsFailing as error:
            self.stderr.write(f"Stopping: {error}")
            sys.exit(1)
        finally:
            supervisor.stop()
