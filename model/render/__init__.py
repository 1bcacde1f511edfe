"""Rendering motion (+ objects, + identity) to RGB frames people can watch."""

from model.render.figure import RENDER, RenderConfig, project_points, render_frames
from model.render.scene import OBJECT_KINDS, SceneObject

__all__ = ["OBJECT_KINDS", "RENDER", "RenderConfig", "SceneObject", "project_points", "render_frames"]
