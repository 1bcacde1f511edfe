"""Manipulation: asked for an object that is in the scene, the agent's hand reaches it and holds it;
not asked, its hands stay with its body.

Why this exists: "pick up the red cup" is a demo scenario. The scene's objects reach the agent as
positions, so success is geometric: forward kinematics (model.motion) on the identity's own
proportions gives the hands' positions, which are compared with the object's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from model.metrics.activity import true_runs
from model.motion import IDENTITIES, SKELETON, forward_kinematics, rest_positions
from model.render import OBJECT_KINDS, SceneObject
from model.render.scene import GRASP_MARGIN_METRES, HOLD_SECONDS

if TYPE_CHECKING:  # the exchange module uses requested_object
    from model.metrics.exchange import Exchange

REACH_FORWARD_METRES = 0.25  # conversational gestures bring a hand ~0.1 m forward; reaching out, further
_HANDS = (SKELETON.index("hand_l"), SKELETON.index("hand_r"))
_REQUEST = re.compile(r"\b(pick|grab|take|hand me|give me|get|bring|lift|hold|fetch|reach)\b")


def requested_object(prompt: str, objects: Sequence[SceneObject]) -> int | None:
    """Index of the scene object the prompt asks the agent to pick up, or None when it asks for none
    or the one it names is not in the scene ("pick up the cup" with a cup at index 1 -> 1)."""
    text = (prompt or "").lower()
    if not _REQUEST.search(text):
        return None
    for kind in OBJECT_KINDS:
        if re.search(rf"\b{kind}\b", text):
            matches = [i for i, obj in enumerate(objects) if obj.kind == kind]
            return matches[0] if matches else None
    return None


def hand_positions(poses: np.ndarray, identity: int) -> np.ndarray:
    """World positions (T, 2, 3) of the left and right hand in metres, on the identity's proportions."""
    joints = forward_kinematics(torch.as_tensor(np.asarray(poses, dtype=np.float32)), identity=IDENTITIES[identity])
    return joints[:, list(_HANDS)].numpy()  # (T, 2, 3)


def holds_object(poses: np.ndarray, identity: int, obj: SceneObject, fps: float,
                 hold_seconds: float = HOLD_SECONDS) -> bool:
    """Whether a hand stays within reach of `obj` (half its size + GRASP_MARGIN_METRES) for
    ``hold_seconds`` in a row."""
    distance = np.linalg.norm(hand_positions(poses, identity) - np.asarray(obj.position), axis=-1).min(-1)  # (T,)
    touching = distance <= obj.size / 2 + GRASP_MARGIN_METRES
    return any(end - first >= hold_seconds * fps for first, end in true_runs(touching))


def reaches_out(poses: np.ndarray, identity: int, objects: Sequence[SceneObject] = ()) -> bool:
    """Whether a hand ever moves REACH_FORWARD_METRES in front of where it hangs at rest, or touches
    any scene object."""
    hands = hand_positions(poses, identity)  # (T, 2, 3)
    rest = rest_positions(identity=IDENTITIES[identity])[list(_HANDS)].numpy()  # (2, 3)
    if ((hands[..., 2] - rest[:, 2]) > REACH_FORWARD_METRES).any():
        return True
    for obj in objects:
        if (np.linalg.norm(hands - np.asarray(obj.position), axis=-1) <= obj.size / 2 + GRASP_MARGIN_METRES).any():
            return True
    return False


def grasp_success(exchange: Exchange) -> float:
    """Asked for an object in the scene: 1.0 when a hand reaches it and holds it (`holds_object`),
    0.0 when it does not. NaN when nothing was asked for."""
    if exchange.requested is None:
        return math.nan
    return float(holds_object(exchange.poses, exchange.identity, exchange.objects[exchange.requested], exchange.fps))


def unrequested_reach(exchange: Exchange) -> float:
    """Not asked for anything: 1.0 when the agent reaches out anyway (`reaches_out`), 0.0 when its
    hands stay with its body. NaN when an object was asked for."""
    if exchange.requested is not None:
        return math.nan
    return float(reaches_out(exchange.poses, exchange.identity, exchange.objects))
