"""Who the agent is: body proportions, colours and voice.

Why this exists: G carries a learned identity embedding, and annotators judge identity
consistency. An identity id indexes `IDENTITIES`; the same preset drives the procedural motion
(proportions), the renderer (proportions + colours) and the speech synthesis (voice).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from model.data.speech import Voice
from model.motion.skeleton import SKELETON, Skeleton

Colour = tuple[int, int, int]  # RGB, 0..255

REFERENCE_HEIGHT = 1.75  # metres: the height the skeleton's rest offsets describe

# Which proportion scales each joint's offset (the bone from its parent) by.
_REGION = {
    "shoulder_l": "shoulders", "shoulder_r": "shoulders",
    "elbow_l": "arms", "wrist_l": "arms", "hand_l": "arms",
    "elbow_r": "arms", "wrist_r": "arms", "hand_r": "arms",
    "knee_l": "legs", "ankle_l": "legs", "knee_r": "legs", "ankle_r": "legs",
    "jaw": "head", "eye_l": "head", "eye_r": "head",
}


@dataclass(frozen=True)
class Identity:
    """One agent persona. Scales are relative to the reference skeleton."""

    name: str
    height: float = REFERENCE_HEIGHT  # metres; scales every bone
    shoulders: float = 1.0  # shoulder width
    arms: float = 1.0  # upper arm, forearm and hand length
    legs: float = 1.0  # thigh and shin length
    head: float = 1.0  # head size, eyes and jaw included
    girth: float = 1.0  # thickness of torso and limbs when rendered
    skin: Colour = (224, 182, 150)  # colours contrast with each other and the light background
    hair: Colour = (60, 40, 30)
    shirt: Colour = (70, 110, 180)
    trousers: Colour = (50, 50, 60)
    voice: Voice = Voice()  # espeak-ng's default voice and pitch

    def bone_scales(self, skeleton: Skeleton = SKELETON) -> torch.Tensor:
        """Multiplier for each joint's rest offset, shape (J,)."""
        overall = self.height / REFERENCE_HEIGHT
        region_scale = {"shoulders": self.shoulders, "arms": self.arms, "legs": self.legs, "head": self.head}
        return torch.tensor(
            [overall * region_scale.get(_REGION.get(name, ""), 1.0) for name in skeleton.names],
            dtype=torch.float32,
        )


DEFAULT_IDENTITY = Identity(name="reference")

IDENTITIES: tuple[Identity, ...] = (
    Identity(
        name="ada", height=1.66, shoulders=0.92, arms=0.97, legs=1.0, head=1.04, girth=0.9,
        skin=(236, 196, 164), hair=(150, 70, 40), shirt=(200, 70, 80), trousers=(40, 50, 90),
        voice=Voice("en-us+f3", pitch=68),
    ),
    Identity(
        name="ben", height=1.84, shoulders=1.08, arms=1.03, legs=1.02, head=0.97, girth=1.12,
        skin=(150, 105, 80), hair=(25, 20, 20), shirt=(60, 140, 90), trousers=(90, 75, 60),
        voice=Voice("en-gb+m3", pitch=38),
    ),
    Identity(
        name="cleo", height=1.72, shoulders=0.96, arms=1.0, legs=1.01, head=1.0, girth=0.95,
        skin=(196, 142, 110), hair=(230, 200, 120), shirt=(230, 160, 40), trousers=(60, 60, 70),
        voice=Voice("en-us+f4", pitch=58),
    ),
    Identity(
        name="dev", height=1.78, shoulders=1.03, arms=1.01, legs=0.99, head=1.02, girth=1.04,
        skin=(110, 75, 55), hair=(40, 30, 25), shirt=(120, 80, 170), trousers=(70, 90, 110),
        voice=Voice("en-us+m2", pitch=44),
    ),
)  # index = identity id used by the agent model's identity embedding
