"""The production web server's settings: ``gunicorn -c python:labeling_app.gunicorn_conf ...``.

``manage.py serve`` and the load benchmark (``python -m labeling_app.loadbench``) both start
gunicorn with this module, so what the benchmark measures is what runs. Why these values, as
measured by that benchmark on a 2-core machine with 50 simulated annotators on PostgreSQL:

- Threaded workers (gthread), one process per core: a vote spends most of its time waiting for
  the database, which threads overlap; processes put both cores to work despite the GIL.
- No keep-alive: every request arrives on a new connection, accepted by whichever worker is
  free first. A keep-alive connection stays for its whole life with the worker that accepted
  it, so a worker that happened to accept more connections queues their requests while the
  other idles; even one gunicorn per core on a ``SO_REUSEPORT`` port (the kernel spreads
  connections by hash) gave 1.3x lower vote throughput and a 1.3x longer p99 than this.
  Behind a TLS-terminating proxy the browser keeps its connection to the proxy anyway.

Set ``HER_WEB_WORKERS`` and ``HER_WEB_THREADS`` to change the process and thread counts.
"""

from __future__ import annotations

import os

from labeling_app.settings import env_int

worker_class = "gthread"
workers = env_int("HER_WEB_WORKERS", os.cpu_count() or 1)
threads = env_int("HER_WEB_THREADS", 8)
keepalive = 0
backlog = 2048
graceful_timeout = 10

if workers < 1 or threads < 1:
    raise SystemExit(f"HER_WEB_WORKERS={workers} and HER_WEB_THREADS={threads} must both be at least 1.")
