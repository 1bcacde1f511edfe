"""Snapshots from the site: the file format alignment.snapshot reads, its hash, and refusals."""

from __future__ import annotations

import uuid

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command

from alignment.snapshot import Snapshot
from labeling_app.actions import Refused
from labeling_app.actions.snapshots import create_snapshot, snapshot_directory
from labeling_app.models import Comparison, PreferenceSnapshot
from model.agent import AgentConfig, AgentModel, SamplingParams
from model.rollout_store import rollout_to_bytes
from tests.labeling_app.conftest import make_campaign, make_ready_round, make_user

pytestmark = pytest.mark.django_db


def campaign_with_votes(rounds: int, agent: AgentModel | None = None, checkpoint: str = "default"):
    """A campaign whose ``rounds`` scenarios each have a voted round with real rollout tokens
    (sampled from ``agent``, the debug agent by default); overall prefers the brighter clip."""
    torch.manual_seed(0)
    agent = agent or AgentModel(AgentConfig.named("debug"))
    campaign = make_campaign(scenarios=rounds, dimensions=["speaking", "listening"])
    for variant in (campaign.variant_a, campaign.variant_b):
        variant.checkpoint = checkpoint
        variant.save(update_fields=["checkpoint"])
    annotator = make_user()
    config = agent.config
    for i, scenario in enumerate(campaign.scenarios.all()):
        round_ = make_ready_round(scenario, annotator)
        human = torch.randint(0, config.codebook_size, (config.num_codebooks, 4 * config.audio_frames_per_video_frame))
        means = []
        candidates = sorted(round_.candidates.all(), key=lambda c: c.variant_id)
        for k, candidate in enumerate(candidates):
            rollout = agent.generate(4, SamplingParams(visual_temperature=0.5 + k, diffusion_steps=2, seed=i * 7 + k),
                                     human_audio=human)
            means.append(float(rollout.visual_tokens[..., 0].mean()))
            candidate.tokens.save("tokens.safetensors", ContentFile(rollout_to_bytes(rollout)))
        better = "a" if means[0] > means[1] else "b"
        Comparison.objects.create(
            submission_token=uuid.uuid4(), annotator=annotator, scenario=scenario, round=round_,
            candidate_a=candidates[0], candidate_b=candidates[1], speaking=better, listening="na",
            manipulation="na", identity="na", qa_safety="na", overall=better, strength=2, confidence=4,
            time_spent_ms=9000, plays_a=1, plays_b=1)
    return campaign


def test_snapshot_round_trips_through_alignment_with_its_hash(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    campaign = campaign_with_votes(4)
    snapshot, created = create_snapshot([campaign])
    assert created and snapshot.comparison_count == 4
    loaded = Snapshot.load(snapshot_directory(snapshot))
    assert loaded.sha256 == snapshot.sha256
    assert loaded.dimensions == ("listening", "speaking")
    pairs = loaded.pairs()
    assert len(pairs) == 4 and all(p.labels["listening"] == "na" and p.labels["speaking"] == "chosen" for p in pairs)
    assert {p.round for p in pairs} == {str(r) for r in campaign.scenarios.values_list("rounds__public_id", flat=True)}
    again, created_again = create_snapshot([campaign])
    assert (again.pk, created_again) == (snapshot.pk, False)
    # Files are copies: deleting a candidate's tokens in the site leaves the snapshot loadable.
    for comparison in Comparison.objects.filter(scenario__campaign=campaign):
        comparison.candidate_a.tokens.delete()
    Snapshot.load(snapshot_directory(snapshot))


def test_a_campaign_without_usable_pairs_is_refused(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    campaign = make_campaign()
    with pytest.raises(Refused, match="nothing to snapshot"):
        create_snapshot([campaign])
    with pytest.raises(CommandError, match="nothing to snapshot"):
        call_command("snapshot", campaign.slug)
    with pytest.raises(CommandError, match="No campaign with slug nope"):
        call_command("snapshot", "nope")
    assert not PreferenceSnapshot.objects.exists()


def test_manage_py_snapshot_prints_the_directory(settings, tmp_path, capsys):
    settings.STORAGES = {**settings.STORAGES, "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}}}
    campaign = campaign_with_votes(2)
    call_command("snapshot", campaign.slug)
    snapshot = PreferenceSnapshot.objects.get()
    assert snapshot_directory(snapshot) in capsys.readouterr().out
    assert Snapshot.load(snapshot_directory(snapshot)).sha256 == snapshot.sha256
