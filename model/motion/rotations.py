"""Rotation conversions for poses: 6D <-> matrix, and axis-angle -> matrix.

Why this exists: a pose stores each joint's rotation as the continuous 6D representation of
Zhou et al. (2019), the first two *columns* of the rotation matrix, which a network can regress
without the discontinuities of Euler angles or quaternions. Gram-Schmidt turns any 6 numbers
back into a proper rotation.

    >>> rotation_6d_to_matrix(torch.tensor([1.0, 0, 0, 0, 1, 0]))
    tensor([[1., 0., 0.],
            [0., 1., 0.],
            [0., 0., 1.]])
"""

from __future__ import annotations

import torch

IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # first two columns of the 3x3 identity


def rotation_6d_to_matrix(rot6d: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3): Gram-Schmidt on the two column vectors."""
    if rot6d.shape[-1] != 6:
        raise ValueError(f"6D rotations need a last dimension of 6, got shape {tuple(rot6d.shape)}")
    a1, a2 = rot6d[..., :3], rot6d[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)  # (..., 3, 3) with b1, b2, b3 as columns


def matrix_to_rotation_6d(matrix: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> (..., 6): the first two columns, concatenated."""
    if matrix.shape[-2:] != (3, 3):
        raise ValueError(f"rotation matrices need shape (..., 3, 3), got {tuple(matrix.shape)}")
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def axis_angle_to_matrix(axis_angle: torch.Tensor) -> torch.Tensor:
    """(..., 3) rotation vectors (axis * angle in radians) -> (..., 3, 3), by Rodrigues."""
    if axis_angle.shape[-1] != 3:
        raise ValueError(f"axis-angle vectors need a last dimension of 3, got shape {tuple(axis_angle.shape)}")
    angle = axis_angle.norm(dim=-1, keepdim=True)[..., None]  # (..., 1, 1)
    axis = axis_angle / angle[..., 0].clamp(min=1e-12)
    x, y, z = axis.unbind(-1)
    zero = torch.zeros_like(x)
    skew = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)  # (..., 9)
    skew = skew.reshape(*axis.shape[:-1], 3, 3)  # (..., 3, 3): the cross-product matrix [axis]x
    eye = torch.eye(3, dtype=axis_angle.dtype).expand_as(skew)
    return eye + torch.sin(angle) * skew + (1 - torch.cos(angle)) * (skew @ skew)
