"""Render motion as video a person can read: a stylised figure with a face, plus objects.

Why this exists: annotators judge the agent by watching it, so the 3D motion tokens must become
frames where a mouth visibly opens with the jaw, pupils follow the eyes, hands reach objects
and body proportions and colours identify the persona. An orthographic camera looks along -z
at the character (which faces +z); shapes are painted back to front by depth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from model.motion.identity import REFERENCE_HEIGHT, Identity
from model.motion.kinematics import global_transforms
from model.motion.skeleton import SKELETON
from model.render.raster import Canvas
from model.render.scene import SceneObject


@dataclass(frozen=True)
class RenderConfig:
    """Camera framing, lighting and the figure's stylised sizes (metres at reference height)."""

    view_size: float = 1.5  # metres across the image's shorter side: landscape shows the upper body
    view_top: float = 2.0  # world y at the top edge, above the tallest preset's head
    lowest_center: float = 0.92  # tall (portrait) frames centre on the whole body instead
    view_x: float = 0.0  # world x at the image centre
    sky_top: tuple[int, int, int] = (228, 234, 242)  # background gradient, light so the figure stands out
    sky_bottom: tuple[int, int, int] = (196, 204, 216)  # a slight gradient gives a sense of space
    floor: tuple[int, int, int] = (170, 160, 150)  # below y = 0, visible in portrait framing
    depth_shading: float = 0.8  # brightness change per metre of depth: near parts lighter, far darker
    head_radii: tuple[float, float] = (0.105, 0.125)  # a slightly large head keeps the face legible
    eye_radius: float = 0.026  # cartoon-sized eyes so gaze reads at 360 px
    pupil_radius: float = 0.012  # under half the eye, so the pupil has room to move
    max_gaze: float = 0.6  # radians of eye rotation that put the pupil at the eye's rim
    mouth_half_width: float = 0.032  # metres; the opening's height comes from the jaw, not from here
    limb_radii: tuple[float, float, float] = (0.045, 0.038, 0.045)  # upper arm, forearm, hand
    leg_radii: tuple[float, float] = (0.07, 0.055)  # thigh, shin
    torso_radii: tuple[float, float, float] = (0.14, 0.12, 0.07)  # belly, chest, shoulder bar


RENDER = RenderConfig()

_SHOE = (45, 42, 40)
_EYE_WHITE = (250, 250, 250)
_PUPIL = (30, 30, 40)
_MOUTH = (110, 30, 40)
_Z = np.array([0.0, 0.0, 1.0])
_J = {name: i for i, name in enumerate(SKELETON.names)}


class _Camera:
    """Orthographic projection from world metres to pixel coordinates."""

    def __init__(self, width: int, height: int, config: RenderConfig):
        self.scale = min(width, height) / config.view_size  # pixels per metre
        center_y = max(config.view_top - height / self.scale / 2, config.lowest_center)
        self.cx = width / 2 - config.view_x * self.scale
        self.cy = height / 2 + center_y * self.scale

    def __call__(self, point: np.ndarray) -> np.ndarray:
        return np.array([self.cx + point[0] * self.scale, self.cy - point[1] * self.scale], dtype=np.float32)


def project_points(points: np.ndarray, width: int, height: int, config: RenderConfig = RENDER) -> np.ndarray:
    """World points (..., 3) in metres -> pixel coordinates (..., 2) in a width x height render."""
    camera = _Camera(width, height, config)
    points = np.asarray(points, dtype=np.float64)
    return np.stack([camera.cx + points[..., 0] * camera.scale, camera.cy - points[..., 1] * camera.scale], axis=-1)


def _shade(colour, depth: float, config: RenderConfig) -> np.ndarray:
    factor = np.clip(1.0 + config.depth_shading * depth, 0.7, 1.12)
    return np.clip(np.asarray(colour, dtype=np.float32) * factor, 0, 255)


def _background(width: int, height: int, camera: _Camera, config: RenderConfig) -> np.ndarray:
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]  # (H, 1)
    sky = (1 - ramp) * np.array(config.sky_top, np.float32) + ramp * np.array(config.sky_bottom, np.float32)
    image = np.repeat(sky[:, None, :], width, axis=1)  # (H, W, 3)
    floor_row = int(np.clip(camera.cy, 0, height))
    image[floor_row:] = config.floor
    return image


def render_frames(
    poses: torch.Tensor,
    identity: Identity,
    objects: Sequence[SceneObject] = (),
    width: int = 640,
    height: int = 360,
    object_positions: np.ndarray | None = None,
    config: RenderConfig = RENDER,
) -> np.ndarray:
    """Poses (T, 135) -> RGB frames uint8 (T, height, width, 3).

    `object_positions` (T, N, 3), if given, moves the N objects per frame (an object carried
    by a hand); otherwise each stays at its own `position`.
    """
    poses = torch.as_tensor(poses, dtype=torch.float32)
    if poses.dim() != 2 or poses.shape[1] != SKELETON.pose_dim or len(poses) == 0:
        raise ValueError(f"poses must have shape (T, {SKELETON.pose_dim}) with T >= 1, got {tuple(poses.shape)}")
    if not torch.isfinite(poses).all():
        raise ValueError("poses contain NaN or infinite values; nothing sensible can be drawn")
    if not (16 <= width <= 4096 and 16 <= height <= 4096):
        raise ValueError(f"width and height must be within 16..4096 pixels, got {width}x{height}")
    static = np.array([o.position for o in objects], dtype=np.float32).reshape(len(objects), 3)  # (N, 3)
    if object_positions is None:
        object_positions = np.broadcast_to(static, (len(poses), len(objects), 3))
    elif np.shape(object_positions) != (len(poses), len(objects), 3):
        raise ValueError(
            f"object_positions must have shape (T, N, 3) = ({len(poses)}, {len(objects)}, 3), "
            f"got {np.shape(object_positions)}"
        )
    with torch.no_grad():
        rotations, positions = global_transforms(poses, SKELETON, identity)  # (T, J, 3, 3), (T, J, 3)
    rotations, positions = rotations.numpy().astype(np.float64), positions.numpy().astype(np.float64)
    camera = _Camera(width, height, config)
    canvas = Canvas(_background(width, height, camera, config))
    frames = np.empty((len(poses), height, width, 3), dtype=np.uint8)
    for t in range(len(poses)):
        canvas.clear()
        items = _figure_items(rotations[t], positions[t], identity, camera, config)
        items += [_object_item(o, p, camera, config) for o, p in zip(objects, object_positions[t])]
        for _, draw in sorted(items, key=lambda item: item[0]):
            draw(canvas)
        np.clip(canvas.image, 0, 255, out=canvas.image)
        frames[t] = canvas.image.astype(np.uint8)
    return frames


def _figure_items(rot, pos, identity: Identity, camera: _Camera, config: RenderConfig) -> list:
    """(depth, draw) pairs for one frame of the figure; larger depth is nearer the camera."""
    size = camera.scale * identity.height / REFERENCE_HEIGHT  # pixels per reference metre
    girth = size * identity.girth
    items = []

    def segment(a: str, b: str, radius: float, colour, bias: float = 0.0):
        depth = (pos[_J[a], 2] + pos[_J[b], 2]) / 2
        pa, pb, fill = camera(pos[_J[a]]), camera(pos[_J[b]]), _shade(colour, depth, config)
        items.append((depth + bias, lambda c: c.capsule(pa, pb, radius, fill)))

    belly, chest, shoulders = config.torso_radii
    segment("hip_l", "hip_r", 0.09 * girth, identity.trousers, bias=-0.05)
    segment("pelvis", "chest", belly * girth, identity.shirt, bias=-0.03)
    segment("chest", "neck", chest * girth, identity.shirt, bias=-0.03)
    segment("shoulder_l", "shoulder_r", shoulders * girth, identity.shirt, bias=-0.03)
    segment("neck", "head", 0.042 * girth, identity.skin, bias=-0.04)
    upper, fore, hand = config.limb_radii
    thigh, shin = config.leg_radii
    for side in ("l", "r"):
        segment(f"hip_{side}", f"knee_{side}", thigh * girth, identity.trousers)
        segment(f"knee_{side}", f"ankle_{side}", shin * girth, identity.trousers)
        ankle = pos[_J[f"ankle_{side}"]]
        shoe = camera(ankle) + np.array([0.0, 0.02 * size], np.float32)
        items.append((ankle[2] + 0.01, lambda c, p=shoe: c.ellipse(p, 0.055 * size, 0.035 * size, _SHOE)))
        segment(f"shoulder_{side}", f"elbow_{side}", upper * girth, identity.shirt)
        segment(f"elbow_{side}", f"wrist_{side}", fore * girth, identity.skin)
        segment(f"wrist_{side}", f"hand_{side}", hand * size, identity.skin, bias=0.001)
    head_center = pos[_J["head"]] + rot[_J["head"]] @ np.array([0.0, 0.11, 0.0]) * identity.head * size / camera.scale
    items.append((head_center[2], lambda c: _draw_head(c, rot, pos, identity, camera, config, size)))
    return items


def _draw_head(canvas: Canvas, rot, pos, identity: Identity, camera: _Camera, config: RenderConfig, size: float):
    """Hair, face, eyes with pupils that follow the eye joints, mouth that follows the jaw."""
    metre = size * identity.head / camera.scale  # world metres per reference metre of head
    head_rot, head_pos = rot[_J["head"]], pos[_J["head"]]

    def on_head(offset) -> np.ndarray:
        return head_pos + head_rot @ (np.asarray(offset) * metre)

    rx, ry = (r * size * identity.head for r in config.head_radii)
    center = camera(on_head([0.0, 0.11, 0.0]))
    canvas.ellipse(camera(on_head([0.0, 0.135, -0.01])), rx * 1.1, ry * 0.98, identity.hair)
    forward = head_rot @ _Z
    if forward[2] <= 0.15:  # facing away from the camera: only the back of the head shows
        canvas.ellipse(center, rx, ry, identity.skin)
        canvas.ellipse(camera(on_head([0.0, 0.13, -0.02])), rx * 1.02, ry * 0.95, identity.hair)
        return
    canvas.ellipse(center, rx, ry, identity.skin)
    canvas.ellipse(camera(on_head([0.0, 0.085, 0.11])), 0.014 * size, 0.02 * size, _shade(identity.skin, -0.08, config))
    eye_r, pupil_r = config.eye_radius * size * identity.head, config.pupil_radius * size * identity.head
    for side in ("eye_l", "eye_r"):
        eye = camera(pos[_J[side]])
        canvas.ellipse(eye, eye_r, eye_r * 1.1, _EYE_WHITE)
        gaze = head_rot.T @ rot[_J[side]] @ _Z  # eye direction relative to the face
        offset = np.array([gaze[0], -gaze[1]]) / np.sin(config.max_gaze)
        offset /= max(1.0, float(np.linalg.norm(offset)))  # the pupil stays inside the eye
        canvas.ellipse(eye + offset.astype(np.float32) * (eye_r - pupil_r), pupil_r, pupil_r, _PUPIL)
    upper_lip = camera(on_head([0.0, 0.058, 0.105]))
    lower_lip = camera(pos[_J["jaw"]] + rot[_J["jaw"]] @ (np.array([0.0, -0.02, 0.075]) * metre))
    opening = float(np.linalg.norm(lower_lip - upper_lip))
    canvas.ellipse((upper_lip + lower_lip) / 2, config.mouth_half_width * size * identity.head,
                   max(opening / 2, 1.0), _MOUTH)


def _object_item(obj: SceneObject, position, camera: _Camera, config: RenderConfig):
    """(depth, draw) for one scene object at `position`."""
    center = camera(np.asarray(position))
    extent = obj.size * camera.scale
    fill = _shade(obj.colour, float(position[2]), config)
    dark = fill * 0.7
    if obj.kind == "ball":
        def draw(c):
            c.ellipse(center, extent / 2, extent / 2, fill)
            c.ellipse(center - extent * np.array([0.15, 0.15], np.float32), extent / 8, extent / 8,
                      np.minimum(fill + 70, 255))
    elif obj.kind == "box":
        def draw(c):
            c.box(center, extent / 2, extent / 2, dark, corner=extent * 0.05)
            c.box(center, extent / 2 - 2, extent / 2 - 2, fill, corner=extent * 0.05)
    else:  # cup: body, handle on its right, darker rim
        def draw(c):
            c.ring(center + np.array([extent * 0.38, 0.0], np.float32), extent * 0.17, extent * 0.22,
                   max(extent * 0.07, 1.5), dark)
            c.box(center, extent * 0.32, extent / 2, fill, corner=extent * 0.06)
            c.ellipse(center - np.array([0.0, extent / 2], np.float32), extent * 0.32, extent * 0.07, dark)
    return float(position[2]), draw
