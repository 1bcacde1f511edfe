"""The agent's skeleton: 22 joints including jaw and eyes, and the pose layout built on it.

Why this exists: every motion token, trajectory signal and rendered frame refers to the same
joints in the same order. Conventions: metres, y up, the character faces +z (towards the
camera), so its left is +x. Rest pose = arms hanging down, every local rotation the identity.
A pose is the root (pelvis) displacement from its rest position plus one 6D local rotation per
joint: 3 + 6 * 22 = 135 numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.motion.rotations import IDENTITY_6D


@dataclass(frozen=True)
class Skeleton:
    """Joint names, parents (-1 for the root) and rest offsets from the parent joint."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: tuple[tuple[float, float, float], ...]  # metres, in the parent's rest frame
    ankle_height: float = 0.07  # metres from the floor to the ankle joint at rest

    def __post_init__(self):
        if not len(self.names) == len(self.parents) == len(self.offsets):
            raise ValueError("a skeleton needs one parent and one offset per joint name")
        for j, parent in enumerate(self.parents):
            if parent >= j:
                raise ValueError(f"joint {self.names[j]!r} must come after its parent (index {parent})")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    @property
    def pose_dim(self) -> int:
        return 3 + 6 * self.num_joints

    def index(self, name: str) -> int:
        """Position of a joint by name, with a clear error for a typo."""
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"unknown joint {name!r}; joints are {', '.join(self.names)}") from None

    def offset_tensor(self) -> torch.Tensor:
        return torch.tensor(self.offsets, dtype=torch.float32)  # (J, 3)


_JOINTS = (
    # name,        parent,       offset from parent (x: character's left, y: up, z: forward)
    ("pelvis", None, (0.0, 0.0, 0.0)),
    ("spine", "pelvis", (0.0, 0.12, 0.0)),
    ("chest", "spine", (0.0, 0.18, 0.0)),
    ("neck", "chest", (0.0, 0.20, 0.0)),
    ("head", "neck", (0.0, 0.08, 0.0)),
    ("jaw", "head", (0.0, 0.075, 0.03)),
    ("eye_l", "head", (0.04, 0.125, 0.095)),
    ("eye_r", "head", (-0.04, 0.125, 0.095)),
    ("shoulder_l", "chest", (0.17, 0.16, 0.0)),
    ("elbow_l", "shoulder_l", (0.0, -0.28, 0.0)),
    ("wrist_l", "elbow_l", (0.0, -0.25, 0.0)),
    ("hand_l", "wrist_l", (0.0, -0.08, 0.0)),
    ("shoulder_r", "chest", (-0.17, 0.16, 0.0)),
    ("elbow_r", "shoulder_r", (0.0, -0.28, 0.0)),
    ("wrist_r", "elbow_r", (0.0, -0.25, 0.0)),
    ("hand_r", "wrist_r", (0.0, -0.08, 0.0)),
    ("hip_l", "pelvis", (0.09, -0.06, 0.0)),
    ("knee_l", "hip_l", (0.0, -0.41, 0.0)),
    ("ankle_l", "knee_l", (0.0, -0.41, 0.0)),
    ("hip_r", "pelvis", (-0.09, -0.06, 0.0)),
    ("knee_r", "hip_r", (0.0, -0.41, 0.0)),
    ("ankle_r", "knee_r", (0.0, -0.41, 0.0)),
)
_NAMES = tuple(name for name, _, _ in _JOINTS)

SKELETON = Skeleton(
    names=_NAMES,
    parents=tuple(-1 if parent is None else _NAMES.index(parent) for _, parent, _ in _JOINTS),
    offsets=tuple(offset for _, _, offset in _JOINTS),
)
NUM_JOINTS = SKELETON.num_joints
POSE_DIM = SKELETON.pose_dim  # 3 + 6 * 22 = 135


def rest_pose(skeleton: Skeleton = SKELETON) -> torch.Tensor:
    """The rest pose (pose_dim,): no root displacement, identity rotation at every joint."""
    rotations = torch.tensor(IDENTITY_6D).repeat(skeleton.num_joints)  # (6 * J,)
    return torch.cat([torch.zeros(3), rotations])


def split_pose(poses: torch.Tensor, skeleton: Skeleton = SKELETON) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., pose_dim) -> root displacement (..., 3) and 6D rotations (..., J, 6)."""
    if poses.shape[-1] != skeleton.pose_dim:
        raise ValueError(
            f"poses need a last dimension of {skeleton.pose_dim} (3 + 6 x {skeleton.num_joints} joints), "
            f"got shape {tuple(poses.shape)}"
        )
    rot6d = poses[..., 3:].reshape(*poses.shape[:-1], skeleton.num_joints, 6)  # (..., J, 6)
    return poses[..., :3], rot6d


def join_pose(root: torch.Tensor, rot6d: torch.Tensor) -> torch.Tensor:
    """Root displacement (..., 3) and 6D rotations (..., J, 6) -> poses (..., 3 + 6J)."""
    return torch.cat([root, rot6d.flatten(-2)], dim=-1)  # (..., 3 + 6J)
