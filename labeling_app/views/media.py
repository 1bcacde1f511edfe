"""Media of rounds and candidates, served only to their annotator or to staff allowed to view.

Files are never served from a public directory. Every response carries a fixed content type
(``video/mp4`` for candidates, the sniffed type for rounds), ``X-Content-Type-Options:
nosniff`` and ``Content-Disposition: inline`` with a fixed file name, so neither the stored
name nor the bytes can make a browser treat the file as a page. Single byte ranges are
honoured: browsers need them to seek (restarting both clips of a pair).

A candidate's clip sent to its own annotator is playback evidence: the bytes that actually
went out (counted as the server hands them over, so a dropped request counts only what it
got) are recorded with ``actions.playback``, and a vote needs both clips served.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.views.decorators.http import require_safe

from labeling_app.actions.playback import do_record_clip_served
from labeling_app.media_checks import content_type_for
from labeling_app.models import Assignment, Candidate, Round

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
CHUNK = 64 * 1024


def _may_view(user, owner_id: int, permission: str) -> bool:
    if not user.is_authenticated:
        return False
    return user.pk == owner_id or (user.is_staff and user.has_perm(permission))


def _serve(request: HttpRequest, field_file, content_type: str, filename: str,
           on_sent: Callable[[int, int, int], None] | None = None) -> HttpResponse:
    """The file, or the requested byte range of it; ``on_sent(size, start, sent)`` is called
    once the body is done (finished or dropped) with the bytes that went out."""
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
    if request.method == "HEAD":
        handle.close()
        body = iter(())
    else:
        handle.seek(start)
        body = _read(handle, end - start + 1, (lambda sent: on_sent(size, start, sent)) if on_sent else None)
    response = StreamingHttpResponse(body, status=206 if partial else 200, content_type=content_type)
    if partial:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _read(handle, length: int, on_sent: Callable[[int], None] | None):
    """Up to ``length`` bytes of ``handle`` in blocks; a block counts as sent once the server
    asks for the next one (it was written), so a client that hangs up is not credited with it."""
    sent = 0
    try:
        while sent < length:
            block = handle.read(min(CHUNK, length - sent))
            if not block:
                break
            yield block
            sent += len(block)
    finally:
        handle.close()
        if on_sent is not None:
            on_sent(sent)


@require_safe
def candidate_media(request: HttpRequest, candidate_id) -> HttpResponse:
    candidate = (
        Candidate.objects.filter(public_id=candidate_id, status=Candidate.Status.READY)
        .select_related("round")
        .only("media", "round_id", "round__annotator_id")
        .first()
    )
    if candidate is None or not candidate.media:
        raise Http404("No such response.")
    # Only what the round's own annotator, or a reviewer holding it, receives is evidence that
    # they watched it; a reviewer's is kept under their review assignment.
    own = request.user.is_authenticated and request.user.pk == candidate.round.annotator_id
    review = None if own or not request.user.is_authenticated else (
        Assignment.objects.filter(annotator=request.user, review__round_id=candidate.round_id)
        .exclude(status=Assignment.Status.EXPIRED).values_list("pk", flat=True).first()
    )
    if not (own or review or _may_view(request.user, candidate.round.annotator_id, "labeling_app.view_candidate")):
        raise Http404("No such response.")

    def record(size: int, start: int, sent: int) -> None:
        do_record_clip_served(candidate.pk, size, start, sent, assignment_id=review)

    return _serve(request, candidate.media, "video/mp4", "response.mp4",
                  on_sent=record if own or review else None)


@require_safe
def round_media(request: HttpRequest, round_id) -> HttpResponse:
    round_ = Round.objects.filter(public_id=round_id).only(
        "media", "media_extension", "has_video", "annotator_id"
    ).first()
    if round_ is None or not _may_view(request.user, round_.annotator_id, "labeling_app.view_round"):
        raise Http404("No such recording.")
    content_type = content_type_for(round_.media_extension, round_.has_video)
    return _serve(request, round_.media, content_type, f"turn.{round_.media_extension}")
