"""A load benchmark of the annotator endpoints: ``python -m labeling_app.loadbench``.

It starts the production server (gunicorn, DEBUG off) on a fresh database of its own, seeds
annotators with items whose candidates are ready, and drives simulated annotators over
loopback: each fetches its next item, opens its comparison page and fetches both clips as a
browser playing them would (the site refuses a vote without that), then submits its vote (retrying a few votes with the same
submission token, as a double click or a flaky network would). It reports requests per second
and p50/p95/p99 latency per endpoint at each concurrency level, and checks integrity at the end:
votes acknowledged = rows stored, no duplicates.
"""
