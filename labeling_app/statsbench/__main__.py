"""Benchmark the lead statistics on PostgreSQL: ``python -m labeling_app.statsbench``.

On a database of its own (created next to the one ``--database`` names, dropped afterwards) it
writes a campaign of ``--comparisons`` votes, then times, in the same run:

- the naive baseline: iterate the campaign's comparisons through the ORM and count in Python
  (outcomes per field, left/right picks, per annotator, per day);
- the same numbers by the GROUP BY queries of labeling_app.stats.queries;
- the whole report (those plus agreement self-joins, bootstrap, flags), as the worker runs it;
- the lead pages and every API call a lead's script makes, each with its query count.
Ratios are against the baseline measured here. Figures are medians of ``--repeat`` requests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import urlparse

from tqdm import tqdm

DEFAULT_DATABASE = "postgres://postgres@127.0.0.1:5432/postgres"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m labeling_app.statsbench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=DEFAULT_DATABASE, help="a PostgreSQL server to bench on")
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5, help="requests per page or endpoint")
    parser.add_argument("--skip-export", action="store_true", help="do not stream the whole comparison table")
    parser.add_argument("--json", type=Path, help="also write the results here")
    return parser.parse_args()


def bench_database(url: str):
    import psycopg

    parsed = urlparse(url)
    if parsed.scheme not in ("postgres", "postgresql"):
        sys.exit(f"--database must be a PostgreSQL URL, not {url!r}")
    name = f"her_statsbench_{uuid.uuid4().hex[:8]}"
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return parsed._replace(path="/" + name).geturl(), drop


def naive_baseline(campaign) -> dict:
    """What a first version would do: every row through the ORM, counted in Python."""
    from labeling_app.stats.queries import FIELDS, comparisons_of

    outcomes, sides, per_day = Counter(), Counter(), Counter()
    annotators = defaultdict(Counter)
    rows = comparisons_of(campaign).select_related("candidate_a", "annotator").iterator(chunk_size=5000)
    for c in tqdm(rows, total=comparisons_of(campaign).count(), desc="naive baseline", unit="row", mininterval=2):
        first_left = c.candidate_a.variant_id == campaign.variant_a_id
        for field in FIELDS:
            value = getattr(c, field)
            if value in ("a", "b"):
                outcomes[field, "first" if (value == "a") == first_left else "second"] += 1
                sides[field, value] += 1
            else:
                outcomes[field, value] += 1
        person = annotators[c.annotator.username]
        person["n"] += 1
        person[c.overall] += 1
        person["ms"] += c.time_spent_ms
        per_day[c.submitted_at.date()] += 1
    return {"outcomes": outcomes, "sides": sides, "annotators": annotators, "per_day": per_day}


def timed(function, repeat: int = 1):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, result = [], None
    with CaptureQueriesContext(connection) as queries:
        for _ in range(repeat):
            started = time.perf_counter()
            result = function()
            times.append(time.perf_counter() - started)
    return statistics.median(times), len(queries) // repeat, result


def main() -> int:
    args = parse_args()
    database_url, drop_database = bench_database(args.database)
    os.environ.update(DATABASE_URL=database_url, DJANGO_SETTINGS_MODULE="labeling_app.settings",
                      HER_DEMO_USERS="0", HER_STATS_MAX_AGE_SECONDS="86400")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_test_environment

    from labeling_app.roles import LEAD, create_user_with_role
    from labeling_app.stats import queries
    from labeling_app.stats.refresh import compute_and_store
    from labeling_app.statsbench.seed import seed

    setup_test_environment()  # the in-process client's host, and no real e-mail
    results: dict = {"comparisons": args.comparisons}
    try:
        call_command("migrate", interactive=False, verbosity=0)
        print(f"writing {args.comparisons} comparisons ...", flush=True)
        started = time.perf_counter()
        campaign = seed(args.comparisons)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        results["seed_seconds"] = time.perf_counter() - started

        baseline_s, baseline_q, naive = timed(lambda: naive_baseline(campaign))
        results["naive_baseline"] = {"seconds": baseline_s, "queries": baseline_q}

        def aggregated():
            return queries.outcome_counts(campaign), queries.per_annotator(campaign), queries.per_day(campaign)

        agg_s, agg_q, (counts, annotators, days) = timed(aggregated)
        # The two ways must agree before their times mean anything.
        for field in queries.FIELDS:
            for category in ("first", "second", "tie"):
                assert counts[f"{field}__{category}"] == naive["outcomes"][field, category], (field, category)
        assert sum(d["n"] for d in days) == sum(naive["per_day"].values()) == args.comparisons
        assert {r["username"]: r["n"] for r in annotators} == {k: v["n"] for k, v in naive["annotators"].items()}
        results["aggregation"] = {"seconds": agg_s, "queries": agg_q, "speedup": baseline_s / agg_s}

        report_s, report_q, _ = timed(lambda: compute_and_store(campaign.pk))
        overall_s, overall_q, _ = timed(lambda: compute_and_store(None))
        results["report_refresh"] = {"seconds": report_s, "queries": report_q, "speedup": baseline_s / report_s}
        results["overall_refresh"] = {"seconds": overall_s, "queries": overall_q}

        lead = create_user_with_role(f"bench-lead-{uuid.uuid4().hex[:6]}", "bench-lead-password", LEAD)
        client = Client()
        client.force_login(lead)
        annotator_id = annotators[0]["annotator_id"]
        endpoints = {
            "page: campaign": f"/lead/campaigns/{campaign.pk}/",
            "page: dashboard": "/lead/",
            "page: annotator drill-down": f"/lead/campaigns/{campaign.pk}/annotators/{annotator_id}/",
            "page: audit trail": "/lead/audit/",
            "page: review and gold items": f"/lead/campaigns/{campaign.pk}/reviews/",
            "api: campaign statistics": f"/api/campaigns/{campaign.pk}/statistics/",
            "api: overall statistics": "/api/statistics/",
            "api: comparisons (page of 100)": f"/api/comparisons/?campaign={campaign.pk}&page_size=100",
            "api: an annotator's comparisons": f"/api/comparisons/?annotator={annotator_id}&page_size=100",
            "api: variants": "/api/variants/",
            "api: campaigns": "/api/campaigns/",
            "api: snapshots": "/api/snapshots/",
            "api: jobs": "/api/jobs/",
            "api: export index": "/api/export/",
        }
        client.get(endpoints["page: campaign"])  # warm the permission and session caches
        results["requests"] = {}
        for name, url in tqdm(endpoints.items(), desc="pages and API", unit="endpoint"):
            def get(url=url):
                response = client.get(url)
                assert response.status_code == 200, (url, response.status_code)
                return response
            seconds, count, _ = timed(get, args.repeat)
            results["requests"][name] = {"seconds": seconds, "queries": count, "speedup": baseline_s / seconds}
        if not args.skip_export:
            def export():
                return sum(len(chunk) for chunk in client.get("/api/export/comparison.csv").streaming_content)
            seconds, count, size = timed(export)
            results["export_comparisons_csv"] = {"seconds": seconds, "megabytes": size / 1e6,
                                                 "rows_per_second": args.comparisons / seconds}
    finally:
        connection.close()
        drop_database()

    print(f"\n{args.comparisons} comparisons, written in {results['seed_seconds']:.1f} s")
    print(f"{'what':<36} {'seconds':>9} {'queries':>8} {'x baseline':>11}")
    print(f"{'naive ORM iteration (baseline)':<36} {baseline_s:>9.3f} {baseline_q:>8} {1:>11.1f}")
    rows = [("GROUP BY aggregation", results["aggregation"]), ("whole report (worker)", results["report_refresh"]),
            *results["requests"].items()]
    for name, row in rows:
        print(f"{name:<36} {row['seconds']:>9.3f} {row['queries']:>8} {row['speedup']:>11.1f}")
    print(f"{'overall report from stored ones':<36} {overall_s:>9.3f} {overall_q:>8}")
    if "export_comparisons_csv" in results:
        e = results["export_comparisons_csv"]
        print(f"export of every comparison as CSV: {e['seconds']:.1f} s, {e['megabytes']:.0f} MB, {e['rows_per_second']:.0f} rows/s")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
