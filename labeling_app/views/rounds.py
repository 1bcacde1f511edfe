"""Uploading the annotator's turn, and the status the page polls while the agents respond."""

from __future__ import annotations

import os
import tempfile

from django.core.files.uploadedfile import TemporaryUploadedFile
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from labeling_app import media_checks
from labeling_app.actions import Refused
from labeling_app.actions.rounds import ROUND_NOT_FOUND, do_create_round, left_and_right
from labeling_app.forms import UploadForm
from labeling_app.models import Assignment, Candidate, Round
from labeling_app.views.access import annotator_required, json_error
from labeling_app.views.workspace import ITEM_NOT_FOUND

# What the page shows per candidate status. The worker's own error text stays with engineers
# (admin): it may name a checkpoint, which annotators must never see.
STATUS_MESSAGES = {
    Candidate.Status.QUEUED: "Waiting for a free worker…",
    Candidate.Status.RUNNING: "The agent is responding…",
    Candidate.Status.READY: "Ready.",
    Candidate.Status.FAILED: (
        "The agent could not produce this response. The engineers can see why. "
        "Give this item back and take the next one."
    ),
}


@csrf_exempt
@require_POST
def upload(request: HttpRequest, assignment_id: int) -> JsonResponse:
    """Multipart POST: ``media`` (the clip) and ``source`` (``recorded`` or ``uploaded``).

    201 ``{"round", "status_url", "compare_url"}``; 4xx ``{"error"}`` (411 without
    Content-Length, 413 past the size limit). The size limit is checked
    on Content-Length before the body is read, and again on the bytes received (the upload
    handler below must be installed before anything, CSRF included, parses the body; hence
    csrf_exempt here and csrf_protect on the inner view).
    """
    limit = media_checks.max_bytes()
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        # Django reads no body without a length: the form would look empty and be refused
        # for a field the client did send.
        return json_error(media_checks.length_required_message(), 411)
    if declared > limit + media_checks.MULTIPART_SLACK_BYTES:
        return json_error(media_checks.too_large_message(), 413)
    size_guard = media_checks.SizeLimitUploadHandler(request, limit)
    request.upload_handlers.insert(0, size_guard)
    return _upload(request, assignment_id, size_guard)


@csrf_protect
@annotator_required(json=True)
def _upload(request: HttpRequest, assignment_id: int, size_guard) -> JsonResponse:
    if not Assignment.objects.filter(pk=assignment_id, annotator=request.user).exists():
        return json_error(ITEM_NOT_FOUND, 404)
    form = UploadForm(request.POST)
    if size_guard.exceeded:
        return json_error(media_checks.too_large_message(), 413)
    if not form.is_valid():
        return json_error(form.errors["source"][0], 400)
    media = request.FILES.get("media")
    if media is None:
        return json_error("Attach the clip in the field 'media'.", 400)
    try:
        with _local_copy(media) as path:
            checked = media_checks.check_media_file(path)
            new_round = do_create_round(assignment_id, request.user, form.cleaned_data["source"], checked, path)
    except media_checks.MediaRejected as rejected:
        return json_error(rejected.message, rejected.status)
    except Refused as refused:
        return json_error(refused.message, refused.status)
    return JsonResponse(
        {
            "round": str(new_round.public_id),
            "status_url": reverse("labeling:round-status", args=[new_round.public_id]),
            "compare_url": reverse("labeling:compare", args=[new_round.public_id]),
        },
        status=201,
    )


class _local_copy:
    """A path on local disk holding the upload: Django's own temp file, or a copy of a small
    in-memory upload. Removed on exit (Django removes its own temp files itself)."""

    def __init__(self, uploaded):
        self.uploaded = uploaded
        self.own_path: str | None = None

    def __enter__(self) -> str:
        if isinstance(self.uploaded, TemporaryUploadedFile):
            return self.uploaded.temporary_file_path()
        handle, self.own_path = tempfile.mkstemp(prefix="her-upload-")
        with os.fdopen(handle, "wb") as out:
            for chunk in self.uploaded.chunks():
                out.write(chunk)
        return self.own_path

    def __exit__(self, *exc_info) -> None:
        if self.own_path is not None:
            os.unlink(self.own_path)


def candidate_state(candidate: Candidate) -> dict:
    return {"status": candidate.status, "message": STATUS_MESSAGES[candidate.status]}


def pair_state(left: Candidate, right: Candidate) -> dict:
    """What the waiting page shows: one progress for the pair, symmetric in its two sides.

    Nothing here may tell which side is further along (the first response ready would
    reveal which variant is which): the progress is the mean of both, the message depends
    only on the set of statuses. Only a failure names its side, so the annotator knows why.
    """
    statuses = {left.status, right.status}
    done = [1.0 if c.status in (Candidate.Status.READY, Candidate.Status.FAILED) else c.progress for c in (left, right)]
    if statuses == {Candidate.Status.QUEUED}:
        message = STATUS_MESSAGES[Candidate.Status.QUEUED]
    elif statuses == {Candidate.Status.READY}:
        message = "Both responses are ready."
    else:
        message = "The agent is responding…"
    state = {
        "progress": round(sum(done) / 2, 2),
        "message": message,
        "ready": statuses == {Candidate.Status.READY},
        "failed": Candidate.Status.FAILED in statuses,
    }
    if state["failed"]:
        state["left"], state["right"] = candidate_state(left), candidate_state(right)
    return state


@never_cache
@require_GET
@annotator_required(json=True)
def status(request: HttpRequest, round_id) -> JsonResponse:
    """``{"progress", "message", "ready", "failed", "compare_url"}`` for the pair; when a side
    failed, also ``"left"`` and ``"right"``: ``{status, message}``."""
    round_ = (
        Round.objects.filter(public_id=round_id, annotator=request.user)
        .select_related("scenario__campaign")
        .only("pk", "public_id", "variant_a_on_left", "scenario__campaign__variant_a_id")
        .first()
    )
    if round_ is None:
        return json_error(ROUND_NOT_FOUND, 404)
    candidates = list(Candidate.objects.filter(round=round_).order_by("pk").only("pk", "variant", "status", "progress"))
    left, right = left_and_right(round_, candidates, round_.scenario.campaign.variant_a_id)
    return JsonResponse({**pair_state(left, right), "compare_url": reverse("labeling:compare", args=[round_.public_id])})
