"""The synthetic dialogue generator: the motion is tied to the audio the way DESIGN.md section 5 asks."""

import math

import pytest
import torch

from model.data.dialogue import DialogueConfig, generate_clip
from model.motion import POSE_DIM, SKELETON, rotation_6d_to_matrix, split_pose

SEEDS = (0, 1, 2)


@pytest.fixture(scope="module")
def clips(default_codec):
    return [generate_clip(seed, default_codec) for seed in SEEDS]


def _pitch(poses: torch.Tensor, joint: str) -> torch.Tensor:
    """Rotation of `joint` about its x axis (T,) in radians, read back from the 6D pose."""
    matrix = rotation_6d_to_matrix(split_pose(poses)[1][:, SKELETON.index(joint)])  # (T, 3, 3)
    return torch.atan2(matrix[:, 2, 1], matrix[:, 1, 1])


def _correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a, b]))[0, 1])


def test_a_clip_puts_audio_codes_and_poses_on_one_timeline(clips, default_codec):
    config = DialogueConfig()
    for clip in clips:
        t = clip.num_frames
        assert clip.poses.shape == (t, POSE_DIM)
        assert clip.human_wave.shape == clip.agent_wave.shape == (t * config.sample_rate // config.fps,)
        assert clip.human_codes.shape == clip.agent_codes.shape == (default_codec.num_codebooks, 4 * t)
        assert 0 <= clip.human_span[0] < clip.human_span[1] <= clip.agent_span[0] < clip.agent_span[1] < t
        assert clip.identity in (0, 1) and clip.prompt and clip.question.endswith("?")


def test_jaw_opening_follows_the_agents_own_speech_energy(clips):
    for clip in clips:
        jaw = _pitch(clip.poses, "jaw")
        assert _correlation(jaw, clip.agent_loudness) > 0.5
        first, end = clip.agent_span
        assert jaw[first:end].max() > 0.25  # a clearly open mouth while it talks


def test_the_agent_is_silent_and_its_jaw_closed_while_the_human_speaks(clips):
    config = DialogueConfig()
    per_frame = config.sample_rate // config.fps
    for clip in clips:
        first, end = clip.human_span
        assert clip.agent_wave[first * per_frame: end * per_frame].abs().max() == 0
        assert _pitch(clip.poses, "jaw")[first:end].abs().max() < 0.01
        assert clip.human_wave[first * per_frame: end * per_frame].abs().max() > 0.1


def test_the_agent_nods_while_listening_and_stays_near_rest(clips):
    for clip in clips:
        first, end = clip.human_span
        assert _pitch(clip.poses, "head")[first:end].max() > 0.05
        root, _ = split_pose(clip.poses)
        assert root.norm(dim=-1).max() < 0.05  # idle sway, not wandering


def test_clips_are_deterministic_by_seed(clips, default_codec):
    again = generate_clip(SEEDS[0], default_codec)
    first = clips[0]
    for name in ("human_wave", "agent_wave", "human_codes", "agent_codes", "poses"):
        assert torch.equal(getattr(again, name), getattr(first, name)), name
    assert (again.question, again.prompt, again.identity) == (first.question, first.prompt, first.identity)
    assert not all(
        math.isclose(a.num_frames, b.num_frames) and torch.equal(a.poses, b.poses) for a, b in zip(clips, clips[1:]))
