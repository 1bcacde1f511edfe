"""3D motion: skeleton contract, rotation conversions, forward kinematics, velocities."""

from __future__ import annotations

import math

import pytest
import torch

from model.motion import (
    IDENTITIES,
    POSE_DIM,
    SKELETON,
    Identity,
    axis_angle_to_matrix,
    forward_kinematics,
    join_pose,
    joint_velocities,
    matrix_to_rotation_6d,
    rest_pose,
    rest_positions,
    rotation_6d_to_matrix,
    split_pose,
)

CONTRACT_JOINTS = (
    "pelvis", "spine", "chest", "neck", "head", "jaw", "eye_l", "eye_r",
    "shoulder_l", "elbow_l", "wrist_l", "hand_l", "shoulder_r", "elbow_r", "wrist_r", "hand_r",
    "hip_l", "knee_l", "ankle_l", "hip_r", "knee_r", "ankle_r",
)


def random_rotations(n: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    axis_angle = torch.randn(n, 3, generator=generator)
    return axis_angle_to_matrix(axis_angle)


def posed(rotations: dict[str, torch.Tensor], root=(0.0, 0.0, 0.0)) -> torch.Tensor:
    """The rest pose with some joints' local rotations replaced (axis-angle vectors)."""
    root_t, rot6d = split_pose(rest_pose().clone())
    for name, axis_angle in rotations.items():
        rot6d[SKELETON.index(name)] = matrix_to_rotation_6d(axis_angle_to_matrix(torch.as_tensor(axis_angle)))
    return join_pose(torch.tensor(root), rot6d)


def test_skeleton_matches_the_contract():
    assert SKELETON.names == CONTRACT_JOINTS
    assert POSE_DIM == 3 + 6 * 22 == 135
    assert rest_pose().shape == (135,)
    assert len(IDENTITIES) >= 2 and len({identity.name for identity in IDENTITIES}) == len(IDENTITIES)
    assert all(isinstance(identity, Identity) for identity in IDENTITIES)


def test_6d_matrix_round_trip():
    matrices = random_rotations(64)
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(matrices)), matrices, atol=1e-5)


def test_any_6d_vector_becomes_a_proper_rotation():
    rot6d = torch.randn(64, 6, generator=torch.Generator().manual_seed(1))
    matrices = rotation_6d_to_matrix(rot6d)
    eye = torch.eye(3).expand(64, 3, 3)
    assert torch.allclose(matrices.transpose(-1, -2) @ matrices, eye, atol=1e-5)
    assert torch.allclose(torch.linalg.det(matrices), torch.ones(64), atol=1e-5)
    # Re-encoding a rotation's own 6D is a fixed point.
    assert torch.allclose(rotation_6d_to_matrix(matrix_to_rotation_6d(matrices)), matrices, atol=1e-5)


def test_axis_angle_quarter_turn_about_z_maps_x_to_y():
    matrix = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2]))
    assert torch.allclose(matrix @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)


@pytest.mark.parametrize("identity", [None, *IDENTITIES], ids=lambda i: "reference" if i is None else i.name)
def test_forward_kinematics_of_rest_pose_gives_rest_positions(identity):
    positions = forward_kinematics(rest_pose(), SKELETON, identity)
    assert positions.shape == (22, 3)
    assert torch.allclose(positions, rest_positions(SKELETON, identity), atol=1e-6)
    ankle = positions[SKELETON.index("ankle_l")]
    height = identity.height if identity else 1.75
    assert ankle[1] == pytest.approx(0.07 * height / 1.75, abs=1e-5)  # standing on the floor
    assert positions[SKELETON.index("shoulder_l"), 0] > 0 > positions[SKELETON.index("shoulder_r"), 0]
    assert positions[SKELETON.index("head"), 1] > positions[SKELETON.index("chest"), 1]


def test_identities_differ_in_size():
    heads = [forward_kinematics(rest_pose(), SKELETON, identity)[SKELETON.index("head"), 1] for identity in IDENTITIES]
    assert len({round(float(h), 3) for h in heads}) == len(IDENTITIES)


def test_raising_the_left_arm_sideways_puts_the_hand_at_arm_length():
    pose = posed({"shoulder_l": [0.0, 0.0, math.pi / 2]})  # hanging arm swings out to +x
    positions = forward_kinematics(pose)
    shoulder, hand = positions[SKELETON.index("shoulder_l")], positions[SKELETON.index("hand_l")]
    arm_length = 0.28 + 0.25 + 0.08
    assert torch.allclose(hand - shoulder, torch.tensor([arm_length, 0.0, 0.0]), atol=1e-5)


def test_forward_kinematics_keeps_bone_lengths_for_random_poses():
    rotations = matrix_to_rotation_6d(random_rotations(10 * 22, seed=3)).reshape(10, 22, 6)  # (T, J, 6)
    poses = join_pose(torch.randn(10, 3), rotations)  # (T, 135)
    positions = forward_kinematics(poses)  # (T, J, 3)
    rest = rest_positions()
    for j, parent in enumerate(SKELETON.parents[1:], start=1):
        bone = (positions[:, j] - positions[:, parent]).norm(dim=-1)
        assert torch.allclose(bone, (rest[j] - rest[parent]).norm().expand(10), atol=1e-5)


def test_velocities_of_a_static_pose_are_zero():
    poses = posed({"elbow_l": [-0.8, 0.0, 0.0], "jaw": [0.3, 0.0, 0.0]}).repeat(12, 1)  # (T, 135)
    velocities = joint_velocities(poses, fps=24)
    assert velocities.shape == (12, 22 * 3)
    assert torch.equal(velocities, torch.zeros_like(velocities))


def test_velocities_of_a_walking_root_equal_its_speed():
    speed = torch.tensor([0.5, 0.0, -0.25])  # m/s
    frames = torch.arange(24, dtype=torch.float32)[:, None] / 24  # (T, 1) seconds
    poses = rest_pose().repeat(24, 1)
    poses[:, :3] = frames * speed
    velocities = joint_velocities(poses, fps=24).reshape(24, 22, 3)  # (T, J, 3)
    assert torch.equal(velocities[0], torch.zeros(22, 3))
    assert torch.allclose(velocities[1:], speed.expand(23, 22, 3), atol=1e-4)


def test_bad_poses_get_clear_errors():
    with pytest.raises(ValueError, match="last dimension of 135"):
        forward_kinematics(torch.zeros(10, 134))
    with pytest.raises(ValueError, match=r"shape \(T, 135\)"):
        joint_velocities(rest_pose(), fps=24)
    with pytest.raises(ValueError, match="fps must be positive"):
        joint_velocities(rest_pose()[None], fps=0)
    with pytest.raises(ValueError, match="unknown joint 'nose'"):
        SKELETON.index("nose")
    with pytest.raises(ValueError, match="last dimension of 6"):
        rotation_6d_to_matrix(torch.zeros(4, 5))


def test_docstring_example_of_rotations_holds():
    import doctest

    import model.motion.rotations

    assert doctest.testmod(model.motion.rotations).failed == 0
