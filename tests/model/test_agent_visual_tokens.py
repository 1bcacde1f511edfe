import pytest
import torch

from model.agent import AgentConfig, PoseTokenizer, make_visual_tokenizer
from model.motion import NUM_JOINTS, POSE_DIM


def test_docstring_example():
    tokens = PoseTokenizer(pose_dim=5, num_tokens=2, token_dim=3).encode(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert tokens.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]


def test_default_pose_round_trip_fits_the_tiny_agent():
    config = AgentConfig.named("tiny")
    tokenizer = make_visual_tokenizer(config.visual_tokenizer)
    poses = torch.randn(2, 7, POSE_DIM)
    tokens = tokenizer.encode(poses)
    assert tokens.shape == (2, 7, config.visual_tokens, config.visual_token_dim)
    assert torch.equal(tokenizer.decode(tokens), poses)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="cannot hold"):
        PoseTokenizer(pose_dim=135, num_tokens=4, token_dim=27)
    with pytest.raises(ValueError, match="end in dimension 135"):
        PoseTokenizer().encode(torch.zeros(3, 134))
    with pytest.raises(ValueError, match="unknown visual tokenizer"):
        make_visual_tokenizer("pixels")


def test_tiny_agent_follows_the_motion_contract():
    config = AgentConfig.named("tiny")
    assert POSE_DIM == 135 and config.trajectory_dim == 3 * NUM_JOINTS == 66
    with pytest.raises(ValueError, match="unknown visual tokenizer 'pixel'"):
        make_visual_tokenizer(AgentConfig.named("paper").visual_tokenizer)  # pixel video is a later issue
