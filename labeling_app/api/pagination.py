"""Cursor pagination: stable pages over tables that grow while a script reads them, with no
COUNT(*) over a million rows per page."""

from rest_framework.pagination import CursorPagination


class Cursor(CursorPagination):
    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 1000
