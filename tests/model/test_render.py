"""The renderer: readable faces that follow jaw and eyes, objects where placed, playable MP4."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from model.media import decode_audio, decode_video, probe, write_mp4
from model.motion import (
    IDENTITIES,
    SKELETON,
    axis_angle_to_matrix,
    forward_kinematics,
    join_pose,
    matrix_to_rotation_6d,
    rest_pose,
    split_pose,
)
from model.render import RENDER, SceneObject, project_points, render_frames

ADA = IDENTITIES[0]


def posed(rotations: dict[str, list[float]]) -> torch.Tensor:
    """One pose (1, 135): rest with some joints' local rotations set from axis-angle vectors."""
    root, rot6d = split_pose(rest_pose().clone())
    for name, axis_angle in rotations.items():
        rot6d[SKELETON.index(name)] = matrix_to_rotation_6d(axis_angle_to_matrix(torch.tensor(axis_angle)))
    return join_pose(root, rot6d)[None]


def changed_pixels(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(y, x) coordinates of pixels that differ visibly between two frames."""
    return np.argwhere(np.abs(a.astype(int) - b.astype(int)).sum(-1) > 30)


def head_box(identity, width: int, height: int) -> tuple[np.ndarray, float]:
    """Pixel centre of the head and a generous radius around it."""
    positions = forward_kinematics(rest_pose(), SKELETON, identity).numpy()
    head = positions[SKELETON.index("head")] + np.array([0.0, 0.11 * identity.height / 1.75, 0.0])
    scale = min(width, height) / RENDER.view_size
    return project_points(head, width, height), 0.2 * scale


@pytest.mark.parametrize("width, height", [(640, 360), (360, 640), (480, 480), (512, 288)])
def test_frames_have_the_requested_resolution(width, height):
    frames = render_frames(rest_pose().repeat(3, 1), ADA, width=width, height=height)
    assert frames.shape == (3, height, width, 3) and frames.dtype == np.uint8
    assert frames.std() > 10  # not a blank image


def test_mouth_opens_with_the_jaw():
    closed = render_frames(posed({}), ADA)[0]
    opened = render_frames(posed({"jaw": [0.35, 0.0, 0.0]}), ADA)[0]
    diff = changed_pixels(closed, opened)
    assert len(diff) > 40, "opening the jaw should visibly change the face"
    center, radius = head_box(ADA, 640, 360)
    assert np.all(np.hypot(diff[:, 1] - center[0], diff[:, 0] - center[1]) < radius), "changes outside the head"
    mouth_colour = np.array([110, 30, 40])

    def mouth_area(frame):
        return int((np.abs(frame.astype(int) - mouth_colour).sum(-1) < 40).sum())

    assert mouth_area(opened) > 3 * mouth_area(closed)


@pytest.mark.parametrize("direction, sign", [([0.0, 0.5, 0.0], 1), ([0.0, -0.5, 0.0], -1)], ids=["left", "right"])
def test_pupils_follow_the_eyes(direction, sign):
    ahead = render_frames(posed({}), ADA)[0]
    turned = render_frames(posed({"eye_l": direction, "eye_r": direction}), ADA)[0]
    diff = changed_pixels(ahead, turned)
    assert len(diff) > 10
    center, radius = head_box(ADA, 640, 360)
    assert np.all(np.hypot(diff[:, 1] - center[0], diff[:, 0] - center[1]) < radius)

    def pupil_x(frame):
        near = frame[int(center[1] - radius): int(center[1] + radius), int(center[0] - radius): int(center[0] + radius)]
        ys, xs = np.nonzero(np.abs(near.astype(int) - np.array([30, 30, 40])).sum(-1) < 40)
        return xs.mean()

    # Yaw about +y turns the gaze towards the character's left, which faces us: image right.
    assert sign * (pupil_x(turned) - pupil_x(ahead)) > 1.5


def test_an_object_appears_where_it_is_placed():
    ball = SceneObject("ball", position=(0.55, 1.3, 0.2), colour=(40, 90, 220), size=0.15)
    without = render_frames(posed({}), ADA)[0]
    with_ball = render_frames(posed({}), ADA, objects=[ball])[0]
    diff = changed_pixels(without, with_ball)
    expected = project_points(np.array(ball.position), 640, 360)
    diameter = ball.size * 360 / RENDER.view_size
    assert np.allclose(diff.mean(0)[::-1], expected, atol=2.0)
    assert diff[:, 1].max() - diff[:, 1].min() == pytest.approx(diameter, abs=3)

    moved = np.array([[[0.2, 1.0, 0.3]], [[-0.5, 0.7, 0.3]]])  # (T=2, N=1, 3): carried along
    frames = render_frames(posed({}).repeat(2, 1), ADA, objects=[ball], object_positions=moved)
    for t in range(2):
        spot = project_points(moved[t, 0], 640, 360).round().astype(int)
        assert np.abs(frames[t, spot[1], spot[0]].astype(int) - np.array(ball.colour)).sum() < 90


def test_identities_look_different():
    a, b = (render_frames(posed({}), identity)[0] for identity in IDENTITIES[:2])
    assert len(changed_pixels(a, b)) > 5000


def test_ten_seconds_of_speech_render_with_a_moving_mouth():
    # Rendering speed is a benchmark matter (python -m model.bench), not a timed test.
    t = torch.arange(240, dtype=torch.float32) / 24
    root, rot6d = split_pose(rest_pose().repeat(240, 1))
    jaw = torch.stack([0.3 * (0.5 + 0.5 * torch.sin(2 * math.pi * 3 * t)), 0 * t, 0 * t], -1)
    rot6d[:, SKELETON.index("jaw")] = matrix_to_rotation_6d(axis_angle_to_matrix(jaw))
    frames = render_frames(join_pose(root, rot6d), ADA, [SceneObject("cup", (0.3, 1.0, 0.3))], 640, 360)
    assert frames.shape == (240, 360, 640, 3)
    # Frame 2 (jaw near its widest) and frame 6 (near shut) differ, and only around the head.
    changed = changed_pixels(frames[2], frames[6])
    centre, radius = head_box(ADA, 640, 360)
    assert len(changed) > 20
    assert (np.linalg.norm(changed[:, ::-1] - centre, axis=1) < radius).all()


def test_render_to_mp4_decodes_back(tmp_path, speech_clip):
    poses = rest_pose().repeat(48, 1)  # 2 s at 24 fps
    frames = render_frames(poses, IDENTITIES[1], [SceneObject("box", (0.4, 0.8, 0.2), (200, 170, 60), 0.2)])
    audio = speech_clip[:48_000].numpy()  # 2 s at 24 kHz
    path = tmp_path / "agent.mp4"
    write_mp4(path, frames, fps=24, audio=audio, sample_rate=24_000)

    info = probe(path)
    assert (info.has_video, info.has_audio, info.width, info.height) == (True, True, 640, 360)
    assert info.fps == 24.0
    assert info.duration == pytest.approx(2.0, abs=0.05)
    decoded = decode_video(path, 24, 640, 360)
    assert decoded.shape == (48, 360, 640, 3)
    assert np.abs(decoded[0].astype(int) - frames[0].astype(int)).mean() < 4  # H.264 keeps the picture
    sound = decode_audio(path, 24_000)
    assert len(sound) / 24_000 == pytest.approx(2.0, abs=0.05)


def test_bad_render_input_gets_clear_errors():
    with pytest.raises(ValueError, match=r"poses must have shape \(T, 135\)"):
        render_frames(torch.zeros(5, 134), ADA)
    with pytest.raises(ValueError, match="NaN"):
        render_frames(torch.full((2, 135), float("nan")), ADA)
    with pytest.raises(ValueError, match="16..4096"):
        render_frames(rest_pose()[None], ADA, width=8)
    with pytest.raises(ValueError, match="unknown object kind 'chair'"):
        SceneObject("chair", (0.0, 1.0, 0.0))
    with pytest.raises(ValueError, match=r"object_positions must have shape \(T, N, 3\) = \(1, 1, 3\)"):
        render_frames(rest_pose()[None], ADA, [SceneObject("ball", (0, 1, 0))], object_positions=np.zeros((2, 1, 3)))
