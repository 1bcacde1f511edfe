"""Forward kinematics and the joint-velocity trajectory signal.

Why this exists: the renderer needs world joint positions, and G's low-level control r is the
joints' velocities (the paper's trajectory), both computed from poses the same way here.
"""

from __future__ import annotations

import torch

from model.motion.identity import DEFAULT_IDENTITY, REFERENCE_HEIGHT, Identity
from model.motion.rotations import rotation_6d_to_matrix
from model.motion.skeleton import SKELETON, Skeleton, split_pose


def rest_offsets(skeleton: Skeleton = SKELETON, identity: Identity | None = None) -> torch.Tensor:
    """Each joint's rest offset from its parent, scaled to the identity, shape (J, 3)."""
    identity = identity or DEFAULT_IDENTITY
    return skeleton.offset_tensor() * identity.bone_scales(skeleton)[:, None]


def root_rest_position(skeleton: Skeleton = SKELETON, identity: Identity | None = None) -> torch.Tensor:
    """Pelvis position (3,) at rest: high enough that the left ankle sits at ankle height."""
    identity = identity or DEFAULT_IDENTITY
    offsets = rest_offsets(skeleton, identity)
    drop = torch.zeros(3)
    joint = skeleton.index("ankle_l")
    while skeleton.parents[joint] >= 0:
        drop += offsets[joint]
        joint = skeleton.parents[joint]
    ankle = skeleton.ankle_height * identity.height / REFERENCE_HEIGHT
    return torch.tensor([0.0, ankle - float(drop[1]), 0.0])


def rest_positions(skeleton: Skeleton = SKELETON, identity: Identity | None = None) -> torch.Tensor:
    """World joint positions (J, 3) of the rest pose, by summing offsets (no rotations)."""
    offsets = rest_offsets(skeleton, identity)
    positions = [root_rest_position(skeleton, identity)]
    for j in range(1, skeleton.num_joints):
        positions.append(positions[skeleton.parents[j]] + offsets[j])
    return torch.stack(positions)


def global_transforms(
    poses: torch.Tensor, skeleton: Skeleton = SKELETON, identity: Identity | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """World rotations (..., J, 3, 3) and positions (..., J, 3) of every joint."""
    root, rot6d = split_pose(poses, skeleton)
    local = rotation_6d_to_matrix(rot6d)  # (..., J, 3, 3)
    offsets = rest_offsets(skeleton, identity).to(poses.dtype)  # (J, 3)
    rotations = [local[..., 0, :, :]]
    positions = [root + root_rest_position(skeleton, identity).to(poses.dtype)]
    for j in range(1, skeleton.num_joints):
        parent = skeleton.parents[j]
        positions.append(positions[parent] + (rotations[parent] @ offsets[j].unsqueeze(-1)).squeeze(-1))
        rotations.append(rotations[parent] @ local[..., j, :, :])
    return torch.stack(rotations, dim=-3), torch.stack(positions, dim=-2)


def forward_kinematics(
    poses: torch.Tensor, skeleton: Skeleton = SKELETON, identity: Identity | None = None
) -> torch.Tensor:
    """Joint positions (..., J, 3) in metres for poses (..., 3 + 6J)."""
    return global_transforms(poses, skeleton, identity)[1]


def joint_velocities(poses: torch.Tensor, fps: float, skeleton: Skeleton = SKELETON) -> torch.Tensor:
    """The trajectory control signal: joint velocities in m/s, (T, J * 3); frame 0 is zero.

    Computed on the reference proportions so the signal means the same motion for every identity.
    """
    if poses.dim() != 2:
        raise ValueError(f"poses must be a sequence of shape (T, {skeleton.pose_dim}), got {tuple(poses.shape)}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    positions = forward_kinematics(poses, skeleton)  # (T, J, 3)
    velocity = torch.zeros_like(positions)
    velocity[1:] = (positions[1:] - positions[:-1]) * fps
    return velocity.flatten(1)  # (T, J * 3)
