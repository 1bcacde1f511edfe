import pytest
import torch

from model.agent import AgentConfig, DCTPixelTokenizer, PoseTokenizer, make_visual_tokenizer
from model.agent.visual_tokens import MOTION_SCALE
from model.motion import NUM_JOINTS, POSE_DIM, rest_pose


def test_docstring_example():
    tokens = PoseTokenizer(pose_dim=5, num_tokens=2, token_dim=3).encode(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert tokens.tolist() == [[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]]


def test_default_pose_round_trip_fits_the_tiny_agent():
    config = AgentConfig.named("tiny")
    tokenizer = make_visual_tokenizer(config.visual_tokenizer)
    poses = torch.randn(2, 7, POSE_DIM)
    tokens = tokenizer.encode(poses)
    assert tokens.shape == (2, 7, config.visual_tokens, config.visual_token_dim)
    assert torch.allclose(tokenizer.decode(tokens), poses, atol=1e-6)


def test_motion_tokens_are_relative_to_the_rest_pose_and_scaled():
    tokenizer = PoseTokenizer.for_motion()
    assert torch.equal(tokenizer.encode(rest_pose()), torch.zeros(5, 27))
    nudged = rest_pose().clone()
    nudged[0] += 0.05  # 5 cm to the side
    assert tokenizer.encode(nudged).flatten()[0].item() == pytest.approx(0.05 / MOTION_SCALE)
    # Unit noise (an untrained agent) stays near the rest pose: the body does not leave the frame.
    noise_pose = tokenizer.decode(torch.randn(100, 5, 27, generator=torch.Generator().manual_seed(0)))
    assert noise_pose[:, :3].abs().max() < 0.5


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


def test_pixel_tokens_keep_a_frame_s_low_frequencies():
    """The paper configuration's "pixel" kind: 32 tokens x 16 dims of a frame's lowest 2D-DCT
    frequencies. A smooth image survives the round trip; fine detail (a checkerboard) does not."""
    config = AgentConfig.named("paper")
    tokenizer = make_visual_tokenizer(config.visual_tokenizer, num_tokens=config.visual_tokens,
                                      token_dim=config.visual_token_dim)
    assert isinstance(tokenizer, DCTPixelTokenizer) and tokenizer.produces == "pixels"
    h, w = tokenizer.grid
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    smooth = torch.stack([x, y, 0.5 + 0.2 * torch.cos(3 * x)], dim=-1)  # (h, w, 3) gradients
    frames = torch.stack([smooth, smooth.flip(-1)])  # (2, h, w, 3)
    tokens = tokenizer.encode(frames)
    assert tokens.shape == (2, 32, 16)
    assert tokens.abs().max() < 10  # about unit scale, as the diffusion head expects
    assert (tokenizer.decode(tokens) - frames).abs().mean() < 0.02
    checker = ((torch.arange(h)[:, None] + torch.arange(w)[None, :]) % 2).float()[..., None].expand(h, w, 3)
    assert (tokenizer.decode(tokenizer.encode(checker)) - checker).abs().mean() > 0.3
    with pytest.raises(ValueError, match=r"\(\.\.\., H, W, 3\)"):
        tokenizer.encode(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="unknown visual tokenizer"):
        make_visual_tokenizer("titok")
