"""The shipped default agent is trained: it loads from safetensors and keeps a body near rest.

Bound on sampled motion (2 s answering a real question): the root within ROOT_BOUND of its rest
position and every joint within JOINT_BOUND of its rest position. The training data never moves a
joint further than ~0.15 m (nods, gestures, sway); the untrained seed-0 agent, whose diffusion head
saturates at the x0 clip, breaks the same bound, which is checked too so the bound means something.
"""

import json
import math

import pytest
import torch

from model.agent import AgentConfig, AgentModel, PoseTokenizer, SamplingParams
from model.agent.checkpoint import PICKLE_SUFFIXES, check_safetensors
from model.data.speech import synthesize
from model.motion import forward_kinematics, rest_positions, split_pose
from model.text import load_text_encoder
from model.train.corpus import build_corpus, window_batch
from model.zoo import DEFAULT_AGENT_DIR, DEFAULT_AGENT_SEED, load_agent

ROOT_BOUND = 0.3  # metres
JOINT_BOUND = 0.3  # metres
FRAMES = 48  # 2 s at 24 fps


@pytest.fixture(scope="module")
def text_encoder():
    return load_text_encoder("default")


@pytest.fixture(scope="module")
def question_codes(default_codec):
    """The human's channel for FRAMES frames: the question, then silence (as model.respond builds it)."""
    rate = default_codec.sample_rate
    timeline = torch.zeros(FRAMES * rate // 24)
    wave = synthesize("What is your favourite colour?", rate)[: timeline.numel()]
    timeline[: wave.numel()] = wave
    return default_codec.encode(timeline, rate)  # (K, >= FRAMES * R)


def _sample_motion(agent: AgentModel, codes: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """Poses (FRAMES, POSE_DIM) the agent samples while it hears the question."""
    rollout = agent.generate(FRAMES, SamplingParams(seed=0), human_audio=codes, prompt=prompt, identity=0)
    c = agent.config
    return PoseTokenizer.for_motion(c.visual_tokens, c.visual_token_dim).decode(rollout.visual_tokens)


def _losses(agent: AgentModel, batch) -> dict[str, float]:
    """Losses of `batch` with fixed diffusion timesteps and noise, so two agents are compared alike."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(0)
        return {name: value.item() for name, value in agent.eval().loss(batch).items()}


def _largest_deviations(poses: torch.Tensor) -> tuple[float, float]:
    """(root displacement, joint displacement from rest) maxima over the clip, in metres."""
    root, _ = split_pose(poses)
    joints = (forward_kinematics(poses) - rest_positions()).norm(dim=-1)  # (T, J)
    return float(root.norm(dim=-1).max()), float(joints.max())


def test_the_default_agent_is_a_committed_safetensors_checkpoint_with_a_card():
    names = {path.name for path in DEFAULT_AGENT_DIR.iterdir()}
    assert {"config.json", "model.safetensors", "card.json", "README.md"} <= names
    assert not [name for name in names if name.endswith(PICKLE_SUFFIXES)]
    check_safetensors(DEFAULT_AGENT_DIR / "model.safetensors")
    card = json.loads((DEFAULT_AGENT_DIR / "card.json").read_text())
    assert "model.data" in card["data"] and card["steps"] > 0


def test_the_default_agent_predicts_held_out_dialogue_far_better_than_an_untrained_one(default_codec, text_encoder):
    """Measured here, not read from the card: the audio loss on a clip no training run saw."""
    agent = load_agent("default")
    clips = build_corpus(range(10_000, 10_001), default_codec, text_encoder, agent.config)
    batch = window_batch(clips, clips[0].num_frames, agent.config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEFAULT_AGENT_SEED)
        untrained = AgentModel.from_pretrained("tiny").eval()
    trained_loss, untrained_loss = _losses(agent, batch), _losses(untrained, batch)
    assert untrained_loss["audio"] > math.log(agent.config.codebook_size) - 0.5  # about uniform
    assert trained_loss["audio"] < untrained_loss["audio"] - 2.0, (trained_loss, untrained_loss)
    assert trained_loss["diffusion"] < 0.5 * untrained_loss["diffusion"], (trained_loss, untrained_loss)


def test_the_default_agent_keeps_an_upright_body_near_rest(question_codes, text_encoder):
    agent = load_agent("default")
    assert agent.config == AgentConfig.from_dict(json.loads((DEFAULT_AGENT_DIR / "config.json").read_text()))
    prompt = text_encoder.encode(["answer the question"])[0]
    poses = _sample_motion(agent, question_codes, prompt)
    assert torch.isfinite(poses).all()
    root, joints = _largest_deviations(poses)
    assert root < ROOT_BOUND and joints < JOINT_BOUND, (root, joints)


def test_the_same_bound_rejects_an_untrained_agent(question_codes, text_encoder):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(DEFAULT_AGENT_SEED)
        untrained = AgentModel.from_pretrained("tiny").eval()
    root, joints = _largest_deviations(_sample_motion(untrained, question_codes,
                                                      text_encoder.encode(["answer the question"])[0]))
    assert root > ROOT_BOUND or joints > JOINT_BOUND, (root, joints)
