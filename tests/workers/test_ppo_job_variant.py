"""The loop closes: a site-launched PPO job's policy becomes a variant, a campaign pairs it with its
parent, and a real worker samples candidates from it (through a real Redis broker).

Sizes are the smallest the job form accepts (one PPO step of one 8-frame rollout); the policy
is the shipped default agent, because the sampling worker speaks the default codec. The reward
model is an untrained head on the default backbone registered as a succeeded reward job: training
one through a worker is test_jobs' business.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from alignment.reward.model import RewardModel
from labeling_app.actions.jobs import create_job, parse_config
from labeling_app.models import AgentVariant, Candidate, TrainingJob
from model.rollout_store import rollout_from_bytes
from model.zoo import load_agent
from tests.labeling_app.conftest import make_user
from tests.workers.conftest import REDIS_URL, SAMPLE_TASK, make_candidates, redis_client, turn_clip, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reward_job(tmp_path, settings, redis_worker_env) -> TrainingJob:
    """A succeeded reward job whose model (on the default agent's backbone) lies under the allowed roots."""
    settings.CELERY_BROKER_URL = REDIS_URL
    roots = tmp_path / "var" / "checkpoints"  # the worker's HER_VAR_DIR is tmp_path / "var"
    settings.HER_CHECKPOINT_ROOTS = [roots]
    out = roots / "reward"
    RewardModel.from_agent(load_agent("default")).save_pretrained(out)
    parent = AgentVariant.objects.create(name=f"parent-{uuid.uuid4().hex[:6]}", checkpoint="default",
                                         audio_temperature=0.9, diffusion_steps=4)
    return TrainingJob.objects.create(kind=TrainingJob.Kind.REWARD, status=TrainingJob.Status.SUCCEEDED,
                                      output_dir=str(out), base_variant=parent, progress=1.0)


def test_a_ppo_jobs_policy_is_a_variant_a_campaign_pairs_with_its_parent_and_a_worker_samples(
        reward_job, redis_worker_env, start_worker):
    parent = reward_job.base_variant
    worker = start_worker(redis_worker_env, queues="sampling,jobs")
    config = parse_config("ppo", {"total_steps": 1, "batch_size": 1, "mini_batch_size": 1, "episode_frames": 8})
    job = create_job("ppo", config, make_user("engineer"), snapshot=None, base_variant=parent, reward_job=reward_job)
    wait_for(lambda: TrainingJob.objects.filter(pk=job.pk, status__in=["succeeded", "failed"]).exists(), 600, worker)
    job.refresh_from_db()
    assert job.status == "succeeded", job.error

    variant = AgentVariant.objects.get(produced_by=job)
    assert variant.parent == parent
    assert Path(variant.checkpoint).resolve().is_relative_to(Path(job.output_dir).resolve())
    card = json.loads((Path(variant.checkpoint) / "card.json").read_text())
    assert card["kind"] == "ppo-policy" and card["reward_model"]["path"] == reward_job.output_dir
    assert str(reward_job.pk) in variant.description
    assert (variant.audio_temperature, variant.diffusion_steps) == (parent.audio_temperature, parent.diffusion_steps)
    # PPO sampled its rollouts as the parent samples its candidates.
    training = card["training"]
    assert (training["audio_temperature"], training["visual_temperature"], training["diffusion_steps"],
            training["top_k"]) == (0.9, parent.visual_temperature, 4, None)

    # The same seed on both sides: whatever differs between the two clips comes from the weights.
    candidates = make_candidates(turn_clip("Hello there."), variants=(variant, parent), seed=1234)
    campaign = candidates[0].round.scenario.campaign
    assert (campaign.variant_a, campaign.variant_b) == (variant, parent)
    client = redis_client()
    for candidate in candidates:
        client.send_task(SAMPLE_TASK, args=[candidate.pk])
    wait_for(lambda: Candidate.objects.filter(pk__in=[c.pk for c in candidates],
                                              status__in=["ready", "failed"]).count() == 2, 600, worker)
    rollouts = []
    for candidate in candidates:
        candidate.refresh_from_db()
        assert candidate.status == "ready", candidate.error
        with default_storage.open(candidate.tokens.name) as handle:
            rollouts.append(rollout_from_bytes(handle.read()))
    ours, theirs = rollouts
    assert ours.params == theirs.params and ours.params.seed == 1234
    assert not (ours.visual_tokens.shape == theirs.visual_tokens.shape
                and (ours.visual_tokens == theirs.visual_tokens).all()), "the new variant sampled its parent's weights"
