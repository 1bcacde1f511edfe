"""The statistics benchmark runs end to end on PostgreSQL (small), and its two ways of counting agree."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, require_service, tcp_reachable

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_the_statistics_benchmark_runs_small(tmp_path):
    url = os.environ.get("DATABASE_URL", "")
    require_service("PostgreSQL", url.startswith("postgres") and tcp_reachable(url, 5432), url or "DATABASE_URL unset")
    out = tmp_path / "bench.json"
    env = dict(os.environ, HER_VAR_DIR=str(tmp_path / "var"))
    run = subprocess.run([sys.executable, "-m", "labeling_app.statsbench", "--database", url, "--comparisons", "3000",
                          "--repeat", "1", "--json", str(out)], cwd=REPO_ROOT, env=env, capture_output=True,
                         text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["comparisons"] == 3000
    assert results["naive_baseline"]["seconds"] > 0
    page = results["requests"]["page: campaign"]
    assert page["queries"] <= 6  # read from the stored report, whatever the campaign's size
    assert "GROUP BY aggregation" in run.stdout
