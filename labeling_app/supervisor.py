"""Keep ``serve``'s child processes alive: a child that dies is started again, with backoff.

One crashed process must not take the site down. Each child (a web server process, the
worker) runs in a process group of its own; when it exits without being asked to, whatever
is left of its group (a gunicorn worker, a Celery pool process) is killed and the child is
started again after a delay that doubles on each quick failure (1 s, 2 s, 4 s ... at most
``MAX_BACKOFF_SECONDS``) and resets once it has run ``STABLE_SECONDS``. The other children keep
running meanwhile. A child that fails ``GIVE_UP_AFTER`` times in a row right after starting
is broken, not unlucky (a bad setting, a missing module): the supervisor then stops and says so.

Each child also gets SIGTERM from the kernel when ``serve`` itself dies, however it died
(``PR_SET_PDEATHSIG``): its own process group no longer shares ``serve``'s fate otherwise, and a
web server left behind would hold the port.

The worker is restarted under the same node name, so its sweeper's first act
(``workers.sweeper``) queues again whatever the dead process left running, without waiting
for the stale-heartbeat timeout.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
# A child that ran this long before exiting was working; its next restart starts the backoff over.
STABLE_SECONDS = 60.0
# Exits within QUICK_EXIT_SECONDS of the start, this many in a row: the child cannot start at all.
QUICK_EXIT_SECONDS = 10.0
GIVE_UP_AFTER = 5
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class ChildKeepsFailing(RuntimeError):
    """A child exited right after starting ``GIVE_UP_AFTER`` times in a row."""


@dataclass
class Child:
    """One supervised command. ``popen_kwargs`` go to ``subprocess.Popen`` on every start."""

    name: str
    command: list[str]
    popen_kwargs: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    failures: int = 0  # exits in a row, each before it ran STABLE_SECONDS
    quick_exits: int = 0  # exits in a row, each within QUICK_EXIT_SECONDS of its start
    restart_at: float | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


def backoff_seconds(failures: int) -> float:
    """The wait before restart number ``failures`` (1, 2, ...) of a child that keeps dying.

    >>> [backoff_seconds(n) for n in (1, 2, 3, 6, 7)]
    [1.0, 2.0, 4.0, 30.0, 30.0]
    """
    return min(MIN_BACKOFF_SECONDS * 2 ** (failures - 1), MAX_BACKOFF_SECONDS)


class Supervisor:
    """Start, watch and stop ``children``; ``log`` receives one line per event."""

    def __init__(self, children: list[Child], log: Callable[[str], None]):
        self.children = children
        self.log = log

    def start(self) -> None:
        for child in self.children:
            self._spawn(child)

    def _spawn(self, child: Child) -> None:
        # Its own process group: the whole child (gunicorn's worker, Celery's pool) can be
        # cleaned up after it died, and a Ctrl-C in the terminal reaches only ``serve``.
        child.process = subprocess.Popen(child.command, process_group=0, preexec_fn=_die_with_parent,
                                         **child.popen_kwargs)
        child.started_at = time.monotonic()
        child.restart_at = None
        self.log(f"{child.name} started (pid {child.process.pid})")

    def poll(self) -> None:
        """Notice dead children and restart those whose backoff is over; call it often."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is not None:
                if now >= child.restart_at:
                    self._spawn(child)
                continue
            code = child.process.poll()
            if code is None:
                continue
            _kill_group(child.process.pid)
            ran = now - child.started_at
            child.failures = 1 if ran >= STABLE_SECONDS else child.failures + 1
            child.quick_exits = child.quick_exits + 1 if ran < QUICK_EXIT_SECONDS else 0
            if child.quick_exits >= GIVE_UP_AFTER:
                raise ChildKeepsFailing(
                    f"{child.name} exited {child.quick_exits} times in a row within "
                    f"{QUICK_EXIT_SECONDS:g} s of starting (last exit code {code}); it cannot start: "
                    "see its output above.")
            delay = backoff_seconds(child.failures)
            child.restart_at = now + delay
            self.log(f"{child.name} (pid {child.process.pid}) exited with code {code} after {ran:.0f} s; "
                     f"restarting in {delay:g} s")

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM every running child's group, wait up to ``timeout``, then SIGKILL what is left."""
        running = [c.process for c in self.children if c.process is not None and c.process.poll() is None]
        for process in running:
            _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in running:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for child in self.children:
            if child.process is not None:
                _kill_group(child.process.pid)
                child.process.wait()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the supervisor dies."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # the group is gone already


def _kill_group(pgid: int) -> None:
    _signal_group(pgid, signal.SIGKILL)
