"""3D motion: the skeleton, pose layout, rotations, forward kinematics and identities."""

from model.motion.identity import DEFAULT_IDENTITY, IDENTITIES, Identity
from model.motion.kinematics import (
    forward_kinematics,
    global_transforms,
    joint_velocities,
    rest_positions,
)
from model.motion.rotations import axis_angle_to_matrix, matrix_to_rotation_6d, rotation_6d_to_matrix
from model.motion.skeleton import NUM_JOINTS, POSE_DIM, SKELETON, Skeleton, join_pose, rest_pose, split_pose

__all__ = [
    "DEFAULT_IDENTITY", "IDENTITIES", "Identity", "NUM_JOINTS", "POSE_DIM", "SKELETON", "Skeleton",
    "axis_angle_to_matrix", "forward_kinematics", "global_transforms", "join_pose", "joint_velocities",
    "matrix_to_rotation_6d", "rest_pose", "rest_positions", "rotation_6d_to_matrix", "split_pose",
]
