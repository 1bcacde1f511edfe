"""Objects placed in the scene: what the agent looks at, reaches for and picks up."""

from __future__ import annotations

from dataclasses import dataclass

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
