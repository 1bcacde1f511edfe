"""The ``sampling`` queue: answer a recorded human turn with one agent variant.

A task takes a candidate id only. It claims the row (idempotent: a finished candidate is left
alone, a running one was abandoned by a dead worker and is sampled again), decodes the round's
media, samples the variant with the model, renders the MP4, stores media and tokens, and marks
the row ready. Bad media or a broken checkpoint is permanent: the row gets a readable error.
A lost database connection is transient: the task retries with backoff.
"""

import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from celery.signals import worker_ready
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import InterfaceError, OperationalError

from labeling_app.actions.candidates import (
    do_claim_candidate,
    do_complete_candidate,
    do_fail_candidate,
    do_report_progress,
    do_requeue_stale_candidates,
)
from labeling_app.models import Candidate
from model.agent import SamplingParams
from model.media import MediaError, decode_audio, write_mp4
from model.render import SceneObject
from model.rollout_store import rollout_to_bytes
from workers import agents
from workers.celery import app

logger = logging.getLogger(__name__)

# A running candidate whose heartbeat is older than this belongs to a dead worker.
STALE_AFTER = timedelta(seconds=settings.HER_CANDIDATE_STALE_SECONDS)
PROGRESS_INTERVAL_SECONDS = 1.0  # at most one progress write per second per candidate


@app.task(
    name="workers.sampling.sample_candidate",
    bind=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=2,
    retry_backoff_max=60,
    max_retries=8,
)
def sample_candidate(self, candidate_id: int) -> str:
    candidate = do_claim_candidate(candidate_id, worker=self.request.hostname or "worker")
    if candidate is None:
        return "nothing to do"
    try:
        response = _respond(candidate)
    except (MediaError, ValueError) as exc:
        logger.warning("candidate %s failed permanently: %s", candidate_id, exc)
        do_fail_candidate(candidate_id, f"The agent could not answer this turn: {exc}")
        return "failed"
    media_name, tokens_name = _store(candidate, response)
    do_complete_candidate(
        candidate_id, attempt=candidate.attempts, media_name=media_name, tokens_name=tokens_name,
        duration_seconds=response.duration_seconds, sample_seconds=response.sample_seconds,
        render_seconds=response.render_seconds,
    )
    return "ready"


def _respond(candidate: Candidate):
    """Decode the round's turn and sample the candidate's variant on it."""
    round_, variant, scenario = candidate.round, candidate.variant, candidate.round.scenario
    responder = agents.responder(variant.checkpoint)
    with round_.media.open("rb") as media, tempfile.NamedTemporaryFile(suffix="." + round_.media_extension) as tmp:
        tmp.write(media.read())
        tmp.flush()
        if round_.has_audio:
            wave = decode_audio(tmp.name, responder.codec.sample_rate)
        else:  # a silent clip: the agent hears silence for the clip's duration
            wave = np.zeros(max(1, int(round_.duration_seconds * responder.codec.sample_rate)), dtype="float32")
    params = SamplingParams(
        audio_temperature=variant.audio_temperature,
        visual_temperature=variant.visual_temperature,
        top_k=variant.top_k or None,
        diffusion_steps=variant.diffusion_steps,
        seed=candidate.seed,
    )
    objects = [scene_object(item) for item in scenario.scene_objects]
    last_report = [0.0]

    def progress(fraction: float) -> None:
        now = time.monotonic()
        if now - last_report[0] >= PROGRESS_INTERVAL_SECONDS:
            last_report[0] = now
            do_report_progress(candidate.pk, fraction)

    return responder.respond(wave, scenario.agent_prompt, scenario.identity, objects, params, progress)


def scene_object(item: dict) -> SceneObject:
    """A scenario's JSON object (validated by the site) as the renderer's SceneObject."""
    return SceneObject(kind=item["kind"], position=tuple(item["position"]),
                       colour=tuple(item.get("colour", (210, 60, 50))), size=item.get("size", 0.1))


def _store(candidate: Candidate, response) -> tuple[str, str]:
    """Write the MP4 and the rollout to default storage under the candidate's opaque id."""
    base = f"candidates/{candidate.public_id}"
    media_name, tokens_name = f"{base}/response.mp4", f"{base}/rollout.safetensors"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "response.mp4"
        write_mp4(path, response.frames, response.fps, response.audio, response.sample_rate)
        # A redelivered task overwrites what an earlier, dead attempt may have left.
        for name in (media_name, tokens_name):
            if default_storage.exists(name):
                default_storage.delete(name)
        with open(path, "rb") as handle:
            media_name = default_storage.save(media_name, File(handle))
    tokens_name = default_storage.save(tokens_name, ContentFile(rollout_to_bytes(response.rollout)))
    return media_name, tokens_name


@worker_ready.connect
def requeue_abandoned_candidates(sender=None, **kwargs) -> None:
    """On start, queue again the candidates a dead worker left running (filesystem broker)."""
    requeued = do_requeue_stale_candidates(STALE_AFTER)
    if requeued:
        logger.info("queued %d abandoned candidates again: %s", len(requeued), requeued)
