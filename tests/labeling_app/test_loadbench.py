"""The annotator load benchmark runs end to end at a tiny scale and checks its own integrity.

Its figures are not asserted (speed is for the benchmark, not for tests); what is asserted is
that it drives the real server, counts every vote it sent and finds each one stored once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO_ROOT, embedded_env, require_service, tcp_reachable

VOTES = 12


def run_loadbench(tmp_path, *database: str) -> dict:
    out = tmp_path / "loadbench.json"
    result = subprocess.run(
        [sys.executable, "-m", "labeling_app.loadbench", *database, "--clients", "2,3", "--votes", str(VOTES),
         "--seconds", "60", "--json", str(out)],
        cwd=REPO_ROOT, env=embedded_env(), capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Integrity:" in result.stdout
    return json.loads(out.read_text())


def check(results: dict, vendor: str) -> None:
    assert results["database"] == vendor
    assert results["integrity_ok"] and results["duplicate_rows"] == 0
    assert [level["clients"] for level in results["levels"]] == [2, 3]
    for level in results["levels"]:
        assert level["votes_acknowledged"] == level["votes_stored"] == VOTES
        for endpoint, count in (("bare request", VOTES), ("next item", VOTES), ("compare page", VOTES),
                                ("clip", 2 * VOTES), ("vote", VOTES)):
            stats = level["endpoints"][endpoint]
            assert stats["count"] == count and stats["errors"] == 0
            assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"]
        for ratio in level["ratios"].values():
            assert ratio["per_second"] > 0 and ratio["p99"] > 0


@pytest.mark.slow
def test_the_benchmark_on_the_embedded_sqlite_mode(tmp_path):
    check(run_loadbench(tmp_path), "sqlite")


@pytest.mark.slow
@pytest.mark.postgres
def test_the_benchmark_on_postgresql_in_a_database_of_its_own(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    require_service("PostgreSQL", url.startswith("postgres") and tcp_reachable(url, 5432),
                    f"DATABASE_URL={url!r} is not a reachable PostgreSQL server")
    import psycopg

    admin = urlparse(url)._replace(path="/postgres").geturl()

    def loadbench_databases() -> set[str]:
        with psycopg.connect(admin, autocommit=True) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'her_loadbench_%'").fetchall()
        return {name for (name,) in rows}

    before = loadbench_databases()
    check(run_loadbench(tmp_path, "--database", url), "postgresql")
    assert loadbench_databases() == before  # its own database was dropped afterwards
