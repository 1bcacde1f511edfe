"""Objects placed in the scene: what the agent looks at, reaches for and picks up."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from model.motion import SKELETON, Identity, forward_kinematics

OBJECT_KINDS = ("cup", "ball", "box")  # what the renderer can draw and prompts can name


@dataclass(frozen=True)
class SceneObject:
    """One object: its kind, world position (metres, y up, +z towards the camera), colour, size."""

    kind: str
    position: tuple[float, float, float]
    colour: tuple[int, int, int] = (210, 60, 50)  # RGB 0..255
    size: float = 0.1  # metres: a cup's height, a ball's diameter, a box's side

    def __post_init__(self):
        if self.kind not in OBJECT_KINDS:
            raise ValueError(f"unknown object kind {self.kind!r}; expected one of {', '.join(OBJECT_KINDS)}")
        if len(self.position) != 3:
            raise ValueError(f"position must be (x, y, z) in metres, got {self.position!r}")
        if not self.size > 0:
            raise ValueError(f"object size must be positive metres, got {self.size}")


GRASP_MARGIN_METRES = 0.08  # a hand within half the object's size plus this is touching it
HOLD_SECONDS = 0.3  # a hand that stays that long is grasping, not sweeping past


def carried_positions(poses: np.ndarray | torch.Tensor, identity: Identity, objects: tuple[SceneObject, ...],
                      fps: float, hold_seconds: float = HOLD_SECONDS) -> np.ndarray:
    """Object positions (T, N, 3) computed from the motion: each object stays where it is until a
    hand grasps it (touches it for `hold_seconds` in a row), then moves with that hand, keeping
    the offset it had at the grasp, on the identity's proportions."""
    joints = forward_kinematics(torch.as_tensor(np.asarray(poses, dtype=np.float32)), identity=identity)
    hands = joints[:, [SKELETON.index("hand_l"), SKELETON.index("hand_r")]].numpy()  # (T, 2, 3)
    frames, need = len(hands), max(1, round(hold_seconds * fps))
    out = np.tile(np.array([o.position for o in objects], dtype=np.float32).reshape(1, len(objects), 3),
                  (frames, 1, 1))
    for n, obj in enumerate(objects):
        touching = np.linalg.norm(hands - np.asarray(obj.position), axis=-1) <= obj.size / 2 + GRASP_MARGIN_METRES
        for hand in range(2):
            run = 0
            for t in range(frames):
                run = run + 1 if touching[t, hand] else 0
                if run == need:
                    start = t - need + 1
                    out[start:, n] = hands[start:, hand] + (np.asarray(obj.position) - hands[start, hand])
                    break
            else:
                continue
            break
    return out
