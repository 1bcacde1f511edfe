"""Django's PostgreSQL backend, with a per-request health check that costs a syscall.

With ``CONN_HEALTH_CHECKS`` Django checks a persistent connection before a request first uses
it, so a connection the server dropped (a restart, ``pg_terminate_backend``, an idle timeout)
is replaced instead of failing the request. Django's check sends ``SELECT 1``: a round trip
on every request, a sixth of the vote's statements. An idle connection has nothing to read
unless the server closed it or sent a fatal error, so this check polls the socket instead.
A connection inside a transaction, or with nothing clear to tell, gets Django's check.
"""

from __future__ import annotations

import select

from django.db.backends.postgresql import base
from psycopg import pq


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        conn = self.connection
        if conn is None or conn.closed or conn.broken:
            return False
        if conn.info.transaction_status != pq.TransactionStatus.IDLE:
            return super().is_usable()
        poller = select.poll()
        poller.register(conn.pgconn.socket, select.POLLIN | select.POLLERR | select.POLLHUP)
        # Anything to read on an idle connection is the server's goodbye (or garbage).
        return not poller.poll(0)
