"""Lip-sync: does the agent's jaw open when its own voice is loud, and close when it is quiet.

Why this exists: the agent draws its voice and its body from two different heads (codec logits
and the diffusion head); only training ties them together. The corpus's procedural motion opens
the jaw with the agent's loudness (model.data.dialogue.jaw_opening), so a well-trained agent's
jaw follows its own voice, frame by frame.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from model.metrics.activity import ACTIVITY
from model.metrics.exchange import Exchange
from model.motion import SKELETON, rotation_6d_to_matrix, split_pose


def jaw_opening(poses: np.ndarray) -> np.ndarray:
    """Jaw opening (T,) in radians: the jaw joint's local rotation about the x axis (its hinge),
    positive when the mouth opens, 0 at rest."""
    _, rot6d = split_pose(torch.as_tensor(np.asarray(poses, dtype=np.float32)))
    jaw = rotation_6d_to_matrix(rot6d[:, SKELETON.index("jaw")])  # (T, 3, 3)
    return torch.atan2(jaw[:, 2, 1], jaw[:, 1, 1]).numpy().astype(np.float64)


def lip_sync(exchange: Exchange, floor_db: float = ACTIVITY.threshold_db) -> float:
    """Pearson correlation over frames of the jaw's opening with the agent's own loudness (dBFS,
    floored at ``floor_db``, the voice activity threshold: below it is silence, however quiet). 1.0: the jaw is an exact linear function of the voice's level;
    0: unrelated; negative: it opens when quiet. NaN when either never varies (a silent agent,
    a frozen jaw): there is nothing to be in sync with."""
    loudness = np.maximum(exchange.agent_loudness_db, floor_db)
    return pearson(jaw_opening(exchange.poses), loudness)


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Correlation of two equally long series; NaN when either is constant."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or np.ptp(x) < 1e-9 or np.ptp(y) < 1e-9:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])
