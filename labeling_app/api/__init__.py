"""The REST API for leads and their scripts (Django REST framework, OpenAPI by drf-spectacular).

permissions  who may call it: leads only (``view_campaign_statistics``), by session or token
serializers  the shapes of variants, campaigns, comparisons, snapshots, jobs and reports
views        read-only endpoints, the statistics reports and their refresh
export       every table of the site as streamed CSV or JSON
urls         the router, the schema and its documentation page
"""
