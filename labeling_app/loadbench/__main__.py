"""Run the annotator load benchmark: ``python -m labeling_app.loadbench [--database URL]``.

Without ``--database`` it runs on the embedded SQLite mode; with a PostgreSQL URL it creates (and
afterwards drops) a database of its own next to the one named, so it never touches real data.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from tqdm import tqdm

from labeling_app.loadbench.http import Client
from labeling_app.webserver import default_processes, start_web_servers

REPO_ROOT = Path(__file__).resolve().parents[2]
DIMENSIONS = ("speaking", "listening", "manipulation", "identity", "qa_safety")
RETRY_FRACTION = 0.05  # share of votes sent twice with the same token (double click, flaky network)
BASELINE = "bare request"  # /healthz, the floor every figure is also given against


@dataclass
class Phase:
    """What one concurrency level measured."""

    clients: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    acknowledged: set[str] = field(default_factory=set)  # comparison ids the server confirmed
    retries: int = 0
    retry_mismatches: int = 0
    seconds_by_endpoint: dict[str, float] = field(default_factory=dict)
    progress: tqdm | None = None

    def record(self, endpoint: str, started: float) -> None:
        """Record one request to ``endpoint`` sent at ``started`` (``time.perf_counter()``)."""
        self.latencies[endpoint].append(time.perf_counter() - started)
        if self.progress is not None and endpoint in self.seconds_by_endpoint:  # retries and clips are extra
            self.progress.update()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m labeling_app.loadbench", description=__doc__)
    parser.add_argument("--database", default="", help="PostgreSQL URL of a server to bench on; default SQLite")
    parser.add_argument("--clients", default="10,50", help="concurrency levels, comma-separated")
    parser.add_argument("--votes", type=int, default=3000, help="votes per level (bounded count)")
    parser.add_argument("--seconds", type=float, default=60.0, help="time limit per level")
    parser.add_argument("--web-processes", type=int, help="web server processes (default: the site's, one per core)")
    parser.add_argument("--threads", type=int, help="threads per web server process (default: the site's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_database(url: str, workdir: Path) -> tuple[str, callable]:
    """A fresh database URL for the benchmark, and how to drop it afterwards."""
    if not url:
        return f"sqlite:///{workdir / 'loadbench.sqlite3'}", lambda: None
    import psycopg

    parsed = urlparse(url)
    name = f"her_loadbench_{uuid.uuid4().hex[:8]}"
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return parsed._replace(path="/" + name).geturl(), drop


async def login(client: Client, username: str, password: str) -> None:
    page = await client.request("GET", "/accounts/login/")
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1).decode()
    response = await client.request("POST", "/accounts/login/", form={
        "csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/"})
    if response.status != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"login of {username} failed with HTTP {response.status}")


def vote_form(rng: np.random.Generator) -> dict[str, str]:
    overall = str(rng.choice(["a", "b", "tie"]))
    form = {dimension: str(rng.choice(["a", "b", "tie", "both_bad", "na"])) for dimension in DIMENSIONS}
    form.update(submission_token=str(uuid.uuid4()), overall=overall,
                strength="1" if overall == "tie" else str(rng.integers(1, 4)),
                confidence=str(rng.integers(1, 6)), rationale="", time_spent_ms=str(rng.integers(5000, 60000)),
                plays_a="1", plays_b="1")
    return form


async def fetch_health(client: Client, count: int, deadline: float, phase: Phase) -> None:
    """The baseline: ``count`` bare requests through the same server and middleware (one
    ``SELECT 1``, no session), which the annotator endpoints are measured against."""
    for _ in range(count):
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        response = await client.request("GET", "/healthz")
        phase.record(BASELINE, started)
        if response.status != 200:
            phase.errors[BASELINE] += 1


async def fetch_next_items(client: Client, count: int, deadline: float, phase: Phase) -> None:
    """Ask for the next item ``count`` times (the annotator's own active item comes back)."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"}
    for _ in range(count):
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        response = await client.request("POST", "/label/next/", form={}, headers=headers)
        phase.record("next item", started)
        if response.status != 200 or json.loads(response.body).get("item") is None:
            phase.errors["next item"] += 1


async def play_items(client: Client, round_ids: list[str], deadline: float, phase: Phase) -> None:
    """Open each item's comparison page and fetch both clips, as a browser playing them does:
    the site accepts a vote only after it served both (its playback evidence)."""
    for round_id in round_ids:
        if time.monotonic() > deadline:
            return
        started = time.perf_counter()
        page = await client.request("GET", f"/label/round/{round_id}/compare/")
        phase.record("compare page", started)
        clips = re.findall(rb'<video id="video-(?:left|right)"[^>]*src="([^"]+)"', page.body)
        if page.status != 200 or len(clips) != 2:
            phase.errors["compare page"] += 1
            continue
        for clip in clips:
            started = time.perf_counter()
            response = await client.request("GET", clip.decode())
            phase.record("clip", started)
            if response.status != 200 or not response.body:
                phase.errors["clip"] += 1


async def submit_votes(client: Client, round_ids: list[str], deadline: float, phase: Phase,
                       rng: np.random.Generator) -> None:
    """Vote on each of this annotator's items in turn, retrying a few votes with the same token."""
    headers = {"X-CSRFToken": client.cookies["csrftoken"], "Accept": "application/json"}
    for round_id in round_ids:
        if time.monotonic() > deadline:
            return
        vote_path = f"/label/round/{round_id}/vote/"
        form = vote_form(rng)
        started = time.perf_counter()
        response = await client.request("POST", vote_path, form=form, headers=headers)
        phase.record("vote", started)
        if response.status != 201:
            phase.errors["vote"] += 1
            continue
        comparison = json.loads(response.body)["comparison"]
        phase.acknowledged.add(comparison)
        if rng.random() < RETRY_FRACTION:
            started = time.perf_counter()
            retry = await client.request("POST", vote_path, form=form, headers=headers)
            phase.record("vote (retry)", started)
            phase.retries += 1
            if retry.status != 200 or json.loads(retry.body).get("comparison") != comparison:
                phase.retry_mismatches += 1


async def run_level(port: int, usernames: list[str], rounds_by_user: dict[str, list[str]], votes: int,
                    seconds: float, password: str) -> Phase:
    """Log the annotators in, then measure the baseline, next-item fetches, the comparison
    pages with both clips (the playback a vote needs), then vote submissions.

    Each annotator votes on the first ``quota`` of its remaining items, which are then used up.
    """
    from labeling_app.loadbench.seed import CLIP_SECONDS

    phase = Phase(clients=len(usernames))
    clients = [Client("127.0.0.1", port) for _ in usernames]
    await asyncio.gather(*(login(c, u, password) for c, u in zip(clients, usernames)))
    quota = -(-votes // len(clients))

    async def stage(endpoint: str, requests, also: tuple[str, ...] = ()) -> None:
        started = time.monotonic()
        phase.seconds_by_endpoint[endpoint] = 0.0
        with tqdm(total=quota * len(clients), desc=f"{len(clients)} annotators: {endpoint}", unit="req",
                  leave=False, disable=None) as phase.progress:
            await asyncio.gather(*requests(started + seconds))
        phase.progress = None
        for name in (endpoint, *also):  # requests made within the stage share its duration
            phase.seconds_by_endpoint[name] = time.monotonic() - started

    await stage(BASELINE, lambda deadline: (fetch_health(c, quota, deadline, phase) for c in clients))
    await stage("next item", lambda deadline: (fetch_next_items(c, quota, deadline, phase) for c in clients))
    to_judge = [take(rounds_by_user[u], quota) for u in usernames]
    await stage("compare page", lambda deadline: (play_items(c, r, deadline, phase) for c, r in zip(clients, to_judge)),
                also=("clip",))
    await asyncio.sleep(CLIP_SECONDS)  # a vote comes at least one clip's duration after its page
    await stage("vote", lambda deadline: (
        submit_votes(c, r, deadline, phase, np.random.default_rng(i))
        for i, (c, r) in enumerate(zip(clients, to_judge))))
    await asyncio.gather(*(c.close() for c in clients))
    return phase


def take(items: list[str], count: int) -> list[str]:
    """Remove and return the first ``count`` items."""
    taken = items[:count]
    del items[:count]
    return taken


def wait_until_up(port: int, server: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the server exited during start-up")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the server did not answer /healthz in time")


def report(phases: list[Phase], stored: dict[int, int], vendor: str) -> dict:
    rows, results = [], {"database": vendor, "levels": []}
    for phase in phases:
        level = {"clients": phase.clients, "endpoints": {},
                 "votes_acknowledged": len(phase.acknowledged), "votes_stored": stored[phase.clients],
                 "retries": phase.retries, "retry_mismatches": phase.retry_mismatches}
        for endpoint, values in phase.latencies.items():
            ms = np.array(values) * 1000
            seconds = phase.seconds_by_endpoint[endpoint.removesuffix(" (retry)")]
            stats = {"count": len(values), "per_second": round(len(values) / seconds, 1),
                     "p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
                     "p99_ms": round(float(np.percentile(ms, 99)), 1), "errors": phase.errors.get(endpoint, 0)}
            level["endpoints"][endpoint] = stats
            rows.append((phase.clients, endpoint, stats))
        results["levels"].append(level)
    print(f"\nAnnotator load benchmark on {vendor} (gunicorn as `manage.py serve` runs it, loopback)")
    print(f"{'clients':>7}  {'endpoint':<13} {'count':>6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for clients, endpoint, s in rows:
        print(f"{clients:>7}  {endpoint:<13} {s['count']:>6} {s['per_second']:>8} {s['p50_ms']:>8} "
              f"{s['p95_ms']:>8} {s['p99_ms']:>8} {s['errors']:>6}")
    print(f"\nAgainst the {BASELINE} (/healthz: the same server and middleware, one SELECT 1) in the same run:")
    for level in results["levels"]:
        base = level["endpoints"][BASELINE]
        level["ratios"] = {endpoint: {"per_second": round(stats["per_second"] / base["per_second"], 2),
                                      "p99": round(stats["p99_ms"] / base["p99_ms"], 2)}
                           for endpoint, stats in level["endpoints"].items()
                           if endpoint in ("next item", "vote")}
        print(f"  {level['clients']:>3} clients: " + "; ".join(
            f"{endpoint} {r['per_second']}x the requests/s, {r['p99']}x the p99"
            for endpoint, r in level["ratios"].items()))
    print("\nIntegrity:")
    for level in results["levels"]:
        ok = (level["votes_acknowledged"] == level["votes_stored"] and level["retry_mismatches"] == 0)
        level["integrity_ok"] = ok
        print(f"  {level['clients']:>3} clients: acknowledged {level['votes_acknowledged']}, stored "
              f"{level['votes_stored']}, retried {level['retries']} (mismatches {level['retry_mismatches']}): "
              f"{'OK' if ok else 'FAILED'}")
    results["integrity_ok"] = all(level["integrity_ok"] for level in results["levels"])
    return results


def main() -> int:
    args = parse_args()
    levels = [int(x) for x in args.clients.split(",") if x.strip()]
    workdir = Path(tempfile.mkdtemp(prefix="her-loadbench-"))
    database_url, drop_database = bench_database(args.database, workdir)
    env = dict(os.environ, DATABASE_URL=database_url, HER_VAR_DIR=str(workdir / "var"), DJANGO_DEBUG="0",
               DJANGO_SECRET_KEY=secrets.token_urlsafe(64), DJANGO_SECURE_SSL_REDIRECT="0",
               HER_DEMO_USERS="0", DJANGO_SETTINGS_MODULE="labeling_app.settings")
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from labeling_app.loadbench.seed import PASSWORD, USERNAME, seed
    from labeling_app.models import Comparison

    servers: list[subprocess.Popen] = []
    try:
        call_command("migrate", interactive=False, verbosity=0)
        # Annotator i takes part in every level with more than i clients.
        per_level = {n: -(-args.votes // n) for n in levels}
        items = [sum(per_level[n] for n in levels if n > i) for i in range(max(levels))]
        rounds_by_user = seed(items)
        connection.close()
        port = free_port()
        # The site as ``manage.py serve`` starts it, without the access log.
        server_env = dict(env, **({"HER_WEB_THREADS": str(args.threads)} if args.threads else {}))
        processes = args.web_processes or default_processes()
        servers = start_web_servers("127.0.0.1", port, processes, access_log=False, env=server_env,
                                    start_new_session=True)
        for server in servers:
            wait_until_up(port, server)
        phases, stored = [], {}
        for n in levels:
            before = Comparison.objects.count()
            usernames = [USERNAME.format(i) for i in range(n)]
            print(f"{n} simulated annotators: up to {args.votes} votes or {args.seconds:.0f} s ...", flush=True)
            phase = asyncio.run(run_level(port, usernames, rounds_by_user, args.votes, args.seconds, PASSWORD))
            stored[n] = Comparison.objects.count() - before
            phases.append(phase)
        duplicates = (Comparison.objects.values("annotator", "scenario").count()
                      - Comparison.objects.values("annotator", "scenario").distinct().count())
        results = report(phases, stored, connection.vendor)
        results["duplicate_rows"] = duplicates
        print(f"  duplicate (annotator, item) rows: {duplicates}")
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return 0 if results["integrity_ok"] and duplicates == 0 else 1
    finally:
        for server in servers:
            os.killpg(server.pid, signal.SIGTERM)
        for server in servers:
            server.wait(timeout=30)
        connection.close()
        drop_database()


if __name__ == "__main__":
    sys.exit(main())
