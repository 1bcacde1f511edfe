"""The statistics benchmark: ``python -m labeling_app.statsbench --database postgres://...``.

seed      a campaign with N comparisons written by generate_series (seconds per million rows)
__main__  times the naive ORM baseline, the aggregation, the report, the pages and each API call
"""
