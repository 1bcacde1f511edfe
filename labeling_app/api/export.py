"""Every table of the site as CSV or JSON, streamed: a million comparisons never sit in memory.

Rows are read in primary-key order with a server-side cursor (``iterator``), values only (no
model instances), foreign keys as their ids. JSON is one array of objects; CSV has a header row.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator

from auditlog.models import LogEntry
from django.apps import apps
from django.core.serializers.json import DjangoJSONEncoder
from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

CHUNK = 2000
FORMATS = {"csv": "text/csv; charset=utf-8", "json": "application/json"}


def exportable_models() -> dict:
    """Table name -> model: every model of the site, plus the audit log."""
    models = {model._meta.model_name: model for model in apps.get_app_config("labeling_app").get_models()}
    models["auditlogentry"] = LogEntry
    return dict(sorted(models.items()))


def columns(model) -> list[str]:
    return [field.attname for field in model._meta.concrete_fields]


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_rows(model) -> Iterator[str]:
    writer = csv.writer(_Echo())
    names = columns(model)
    yield writer.writerow(names)
    for row in model.objects.order_by("pk").values_list(*names).iterator(chunk_size=CHUNK):
        yield writer.writerow(json.dumps(v, cls=DjangoJSONEncoder) if isinstance(v, dict | list) else v for v in row)


def json_rows(model) -> Iterator[str]:
    names = columns(model)
    yield "["
    first = True
    for row in model.objects.order_by("pk").values_list(*names).iterator(chunk_size=CHUNK):
        yield ("" if first else ",\n") + json.dumps(dict(zip(names, row)), cls=DjangoJSONEncoder)
        first = False
    yield "]\n"


class ExportIndexView(APIView):
    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="The exportable tables and their columns")
    def get(self, request):
        return Response({
            name: {"columns": columns(model),
                   "csv": request.build_absolute_uri(f"{name}.csv"),
                   "json": request.build_absolute_uri(f"{name}.json")}
            for name, model in exportable_models().items()
        })


class ExportTableView(APIView):
    @extend_schema(responses={200: OpenApiResponse(description="The whole table, as CSV or a JSON array")},
                   summary="Stream one whole table")
    def get(self, request, table: str, fmt: str):
        model = exportable_models().get(table)
        if model is None:
            raise NotFound(f"No table {table!r}; GET /api/export/ lists them.")
        rows = csv_rows(model) if fmt == "csv" else json_rows(model)
        response = StreamingHttpResponse(rows, content_type=FORMATS[fmt])
        response["Content-Disposition"] = f'attachment; filename="{table}.{fmt}"'
        return response
