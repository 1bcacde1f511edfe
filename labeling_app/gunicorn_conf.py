"""Settings of one web server process: ``gunicorn -c python:labeling_app.gunicorn_conf ...``.

``labeling_app.webserver`` starts one such process per core on one port; read it for why.
Each is a gunicorn master with one threaded worker (gthread): a vote spends most of its time
waiting for the database, which the threads overlap. ``HER_WEB_THREADS`` sets their number.
"""

from __future__ import annotations

from labeling_app.settings import env_int

worker_class = "gthread"
workers = 1
threads = env_int("HER_WEB_THREADS", 6)
# Every process listens on the same port; the kernel spreads new connections over them.
reuse_port = True
# Idle keep-alive connections wait in the worker's poller, not in a thread.
keepalive = 30
backlog = 2048
graceful_timeout = 10

if threads < 1:
    raise SystemExit(f"HER_WEB_THREADS={threads}: a web server process needs at least one thread.")
