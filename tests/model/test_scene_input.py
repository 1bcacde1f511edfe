"""The scene as the agent's conditioning (the paper's V_0 as object tokens): off by default, so
checkpoints written before it load; on, it changes what the agent does and travels with its rollouts."""

import dataclasses

import pytest
import torch

from model.agent import AgentConfig, AgentModel, SamplingParams
from model.agent.inputs import SCENE_FEATURES, scene_features
from model.data.dialogue import DialogueConfig
from model.render import SceneObject
from model.rollout_store import rollout_from_bytes, rollout_to_bytes
from model.text import load_text_encoder
from model.train.corpus import build_corpus, window_batch
from model.zoo import load_agent

CUP = SceneObject("cup", (0.35, 0.95, 0.25), (200, 40, 40))


def test_the_scene_input_is_off_by_default_and_the_shipped_agent_loads_without_it():
    assert AgentConfig().scene_objects == 0
    assert not [k for k in AgentModel(AgentConfig.named("debug")).state_dict() if "scene" in k]
    agent = load_agent("default")
    with pytest.raises(ValueError, match="no scene input"):
        agent.session(SamplingParams(), scene=scene_features((CUP,), 1)).step()


def test_scene_features_encode_kind_position_and_colour_and_refuse_too_many_objects():
    rows = scene_features((CUP,), 2)
    assert rows.shape == (2, SCENE_FEATURES) and rows[0, 0] == 1 and (rows[1] == 0).all()
    assert rows[0, 3:6].tolist() == pytest.approx([0.35, 0.95, 0.25])
    with pytest.raises(ValueError, match="at most 1"):
        scene_features((CUP, CUP), 1)


def test_with_the_input_on_the_scene_changes_the_agent_and_its_rollouts_score_as_sampled():
    torch.manual_seed(0)
    model = AgentModel(dataclasses.replace(AgentConfig.named("debug"), scene_objects=1)).eval()
    params = SamplingParams(seed=1, diffusion_steps=4)
    here = model.generate(6, params, scene=scene_features((CUP,), 1))
    moved = SceneObject("cup", (-0.3, 0.9, 0.3), (200, 40, 40))
    there = model.generate(6, params, scene=scene_features((moved,), 1))
    assert not torch.allclose(here.audio_log_probs, there.audio_log_probs)  # untrained visuals sit at the x0 clip
    stored = rollout_from_bytes(rollout_to_bytes(here))
    assert torch.equal(stored.scene, here.scene)
    recomputed = model.log_probs(stored)
    torch.testing.assert_close(recomputed.audio, here.audio_log_probs, atol=1e-4, rtol=0)
    torch.testing.assert_close(recomputed.visual, here.visual_log_probs, atol=1e-3, rtol=0)


def test_training_batches_carry_the_clips_scene_when_the_agent_reads_one(default_codec):
    config = dataclasses.replace(AgentConfig.named("tiny"), scene_objects=1)
    clips = build_corpus(range(1), default_codec, load_text_encoder("default"), config,
                         DialogueConfig(manipulation_share=1.0), progress=False)
    batch = window_batch(clips, 24, config)
    assert torch.equal(batch.scene[0], scene_features(clips[0].objects, 1)) and clips[0].objects
    assert window_batch(clips, 24, AgentConfig.named("tiny")).scene is None
