"""Antialiased 2D shapes painted into a float RGB canvas with numpy.

Why this exists: workers must render ~10 s of video in a few seconds on a CPU with no OpenGL.
Each shape is a signed distance field evaluated only inside its bounding box, and its coverage
(0.5 - distance, clipped to 0..1) gives one pixel of antialiasing for free.
"""

from __future__ import annotations

import numpy as np


class Canvas:
    """An (H, W, 3) float32 image in 0..255 plus the pixel-centre coordinates of its grid."""

    def __init__(self, background: np.ndarray):
        self.background = background.astype(np.float32)
        self.image = self.background.copy()
        height, width = background.shape[:2]
        self.xs = np.arange(width, dtype=np.float32) + 0.5
        self.ys = np.arange(height, dtype=np.float32) + 0.5

    def clear(self) -> None:
        """Start a new frame from the background, reusing the buffers."""
        np.copyto(self.image, self.background)

    def _window(self, center: np.ndarray, reach: float):
        """Pixel slices covering a disc of radius `reach` (+1 px for the antialiased edge)."""
        height, width = self.image.shape[:2]
        x0, x1 = int(max(center[0] - reach - 1, 0)), int(min(center[0] + reach + 2, width))
        y0, y1 = int(max(center[1] - reach - 1, 0)), int(min(center[1] + reach + 2, height))
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1), self.xs[None, x0:x1], self.ys[y0:y1, None]

    def _paint(self, rows: slice, cols: slice, distance: np.ndarray, colour) -> None:
        alpha = np.clip(0.5 - distance, 0.0, 1.0)[..., None]  # (h, w, 1)
        patch = self.image[rows, cols]
        patch += alpha * (np.asarray(colour, dtype=np.float32) - patch)

    def capsule(self, a: np.ndarray, b: np.ndarray, radius: float, colour) -> None:
        """A segment a-b (pixels) thickened by `radius`: limbs, neck, torso."""
        window = self._window((a + b) / 2, np.linalg.norm(b - a) / 2 + radius)
        if window is None:
            return
        rows, cols, x, y = window
        bax, bay = b - a
        pax, pay = x - a[0], y - a[1]
        h = np.clip((pax * bax + pay * bay) / max(bax * bax + bay * bay, 1e-6), 0.0, 1.0)
        self._paint(rows, cols, np.hypot(pax - bax * h, pay - bay * h) - radius, colour)

    def ellipse(self, center: np.ndarray, rx: float, ry: float, colour, angle: float = 0.0) -> None:
        """A filled ellipse, optionally rotated by `angle` radians: head, eyes, mouth, ball."""
        window = self._window(center, max(rx, ry))
        if window is None:
            return
        rows, cols, x, y = window
        self._paint(rows, cols, self._ellipse_distance(center, rx, ry, angle, x, y), colour)

    def ring(self, center: np.ndarray, rx: float, ry: float, thickness: float, colour) -> None:
        """An elliptical outline of the given thickness: a cup's handle."""
        window = self._window(center, max(rx, ry) + thickness)
        if window is None:
            return
        rows, cols, x, y = window
        distance = np.abs(self._ellipse_distance(center, rx, ry, 0.0, x, y)) - thickness / 2
        self._paint(rows, cols, distance, colour)

    def box(self, center: np.ndarray, half_w: float, half_h: float, colour, corner: float = 0.0) -> None:
        """An axis-aligned rectangle with optionally rounded corners: boxes, cups."""
        window = self._window(center, float(np.hypot(half_w, half_h)))
        if window is None:
            return
        rows, cols, x, y = window
        qx = np.abs(x - center[0]) - (half_w - corner)
        qy = np.abs(y - center[1]) - (half_h - corner)
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        inside = np.minimum(np.maximum(qx, qy), 0.0)
        self._paint(rows, cols, outside + inside - corner, colour)

    @staticmethod
    def _ellipse_distance(center, rx, ry, angle, x, y) -> np.ndarray:
        dx, dy = x - center[0], y - center[1]
        if angle:
            cos, sin = np.cos(angle), np.sin(angle)
            dx, dy = cos * dx + sin * dy, -sin * dx + cos * dy
        rx, ry = max(rx, 1e-3), max(ry, 1e-3)
        k = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
        # First-order distance: exact on the boundary, which is all antialiasing needs.
        return (k - 1.0) * min(rx, ry)
