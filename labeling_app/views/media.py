"""Media of rounds and candidates, served only to their annotator or to staff allowed to view.

Files are never served from a public directory. Every response carries a fixed content type
(``video/mp4`` for candidates, the sniffed type for rounds), ``X-Content-Type-Options:
nosniff`` and ``Content-Disposition: inline`` with a fixed file name, so neither the stored
name nor the bytes can make a browser treat the file as a page. Single byte ranges are
honoured: browsers need them to seek (restarting both clips of a pair).
"""

from __future__ import annotations

import re

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from labeling_app.media_checks import content_type_for
from labeling_app.models import Candidate, Round

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _may_view(user, owner_id: int, permission: str) -> bool:
    if not user.is_authenticated:
        return False
    return user.pk == owner_id or (user.is_staff and user.has_perm(permission))


def _serve(request: HttpRequest, field_file, content_type: str, filename: str) -> HttpResponse:
    storage = field_file.storage
    size = storage.size(field_file.name)
    handle = storage.open(field_file.name, "rb")
    match = RANGE.match(request.headers.get("Range", "").strip())
    start, end = 0, size - 1
    partial = False
    if match and (match.group(1) or match.group(2)):
        if match.group(1):
            start = int(match.group(1))
            end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
        else:  # a suffix: the last N bytes
            start = max(size - int(match.group(2)), 0)
        if start > end or start >= size:
            handle.close()
            response = HttpResponse(status=416)
            response["Content-Range"] = f"bytes */{size}"
            return response
        partial = True
    if partial:
        handle.seek(start)
        response = StreamingHttpResponse(_read(handle, end - start + 1), status=206, content_type=content_type)
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
        response["Content-Length"] = str(end - start + 1)
    else:
        response = FileResponse(handle, content_type=content_type)
        response["Content-Length"] = str(size)
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _read(handle, length: int):
    try:
        while length > 0:
            block = handle.read(min(CHUNK, length))
            if not block:
                break
            length -= len(block)
            yield block
    finally:
        handle.close()


@require_safe
def candidate_media(request: HttpRequest, candidate_id) -> HttpResponse:
    candidate = (
        Candidate.objects.filter(public_id=candidate_id, status=Candidate.Status.READY)
        .select_related("round")
        .only("media", "round__annotator_id")
        .first()
    )
    if candidate is None or not candidate.media or not _may_view(
        request.user, candidate.round.annotator_id, "labeling_app.view_candidate"
    ):
        raise Http404("No such response.")
    return _serve(request, candidate.media, "video/mp4", "response.mp4")


@require_safe
def round_media(request: HttpRequest, round_id) -> HttpResponse:
    round_ = Round.objects.filter(public_id=round_id).only(
        "media", "media_extension", "has_video", "annotator_id"
    ).first()
    if round_ is None or not _may_view(request.user, round_.annotator_id, "labeling_app.view_round"):
        raise Http404("No such recording.")
    content_type = content_type_for(round_.media_extension, round_.has_video)
    return _serve(request, round_.media, content_type, f"turn.{round_.media_extension}")
