"""The ``sampling`` queue: answer a recorded human turn with one agent variant.

A task takes a candidate id only: claim an attempt (nothing to do when the candidate is
finished or another live worker holds it), load the turn, let the model answer it, store the
clip and the rollout under this attempt's own names, and complete the candidate through its
action, which makes those files current only if this attempt still holds the row. Bad media
or a broken checkpoint is permanent: the row gets a readable error. Any other error is retried
with backoff and fails the row after its last attempt (``workers.attempts``). A worker that
dies mid-task is recovered by the sweeper (``workers.sweeper``).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from labeling_app.actions.candidates import (
    do_claim_candidate,
    do_complete_candidate,
    do_fail_candidate,
    do_retry_or_fail_candidate,
)
from labeling_app.lifecycle import Attempt, Heartbeat
from labeling_app.models import Candidate
from model.agent import SamplingParams
from model.media import MediaError, decode_audio, write_mp4
from model.render import SceneObject
from model.respond import AgentResponse
from model.rollout_store import rollout_to_bytes
from workers import agents
from workers.attempts import guarded
from workers.celery import app

logger = logging.getLogger(__name__)

# Errors of the input or the variant itself: another attempt would fail the same way.
PERMANENT = (MediaError, ValueError)


@app.task(name="workers.sampling.sample_candidate", bind=True,
          soft_time_limit=settings.HER_SAMPLING_SOFT_TIME_LIMIT, time_limit=settings.HER_SAMPLING_TIME_LIMIT)
def sample_candidate(self, candidate_id: int) -> str:
    claimed = do_claim_candidate(candidate_id, worker=self.request.hostname or "worker")
    if claimed is None:
        return "nothing to do"
    attempt, candidate = claimed
    guard = guarded(attempt, permanent=PERMANENT, describe=lambda exc: f"The agent could not answer this turn: {exc}",
                    fail=do_fail_candidate, retry_or_fail=do_retry_or_fail_candidate,
                    time_limit=settings.HER_SAMPLING_SOFT_TIME_LIMIT)
    with guard as heartbeat:
        response = respond(candidate, heartbeat)
        heartbeat.check()
        files = StoredFiles.save(candidate, attempt, response)
        if not do_complete_candidate(attempt, **files.fields(response)):
            files.delete()
            return "superseded"
        return "ready"
    return guard.outcome


def respond(candidate: Candidate, heartbeat: Heartbeat) -> AgentResponse:
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

    def progress(fraction: float) -> None:
        heartbeat.check()  # stop sampling for an attempt that lost its row
        heartbeat.progress = fraction

    return responder.respond(wave, scenario.agent_prompt, scenario.identity, objects, params, progress)


def scene_object(item: dict) -> SceneObject:
    """A scenario's JSON object (validated by the site) as the renderer's SceneObject."""
    return SceneObject(kind=item["kind"], position=tuple(item["position"]),
                       colour=tuple(item.get("colour", (210, 60, 50))), size=item.get("size", 0.1))


@dataclass(frozen=True)
class StoredFiles:
    """One attempt's MP4 and rollout in default storage, under names no other attempt uses
    (``candidates/<public id>/<attempt>/...``): an attempt only ever deletes its own files."""

    media_name: str
    tokens_name: str

    @classmethod
    def save(cls, candidate: Candidate, attempt: Attempt, response: AgentResponse) -> StoredFiles:
        base = f"candidates/{candidate.public_id}/{attempt.number}"
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "response.mp4"
            write_mp4(path, response.frames, response.fps, response.audio, response.sample_rate)
            with open(path, "rb") as handle:
                media_name = default_storage.save(f"{base}/response.mp4", File(handle))
        try:
            tokens_name = default_storage.save(f"{base}/rollout.safetensors",
                                               ContentFile(rollout_to_bytes(response.rollout)))
        except BaseException:
            default_storage.delete(media_name)
            raise
        return cls(media_name, tokens_name)

    def fields(self, response: AgentResponse) -> dict:
        return dict(media_name=self.media_name, tokens_name=self.tokens_name,
                    duration_seconds=response.duration_seconds, sample_seconds=response.sample_seconds,
                    render_seconds=response.render_seconds)

    def delete(self) -> None:
        for name in (self.media_name, self.tokens_name):
            default_storage.delete(name)
