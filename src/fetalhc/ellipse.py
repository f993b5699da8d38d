"""Stage 7: the clinical ellipse. Pure geometry, pixels in and out.

``semi_axis_a_px`` >= ``semi_axis_b_px`` are *semi*-axes; the perimeter uses Ramanujan's
second approximation, which is exact for circles and within 1e-5 relative for the
eccentricities of fetal heads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Ellipse:
    """An ellipse in image pixels. ``angle_deg`` is the direction of the major semi-axis
    ``semi_axis_a_px`` measured from the +x (column) axis towards +y (down), in [0, 180)."""

    center_x_px: float
    center_y_px: float
    semi_axis_a_px: float
    semi_axis_b_px: float
    angle_deg: float

    @property
    def perimeter_px(self) -> float:
        """Ramanujan's perimeter in pixels."""
        return ramanujan_perimeter(self.semi_axis_a_px, self.semi_axis_b_px)

    @property
    def area_px(self) -> float:
        return math.pi * self.semi_axis_a_px * self.semi_axis_b_px

    def rasterize(self, shape_hw: tuple[int, ...], value: int = 1) -> NDArray[np.uint8]:
        """Filled ellipse as a uint8 mask of ``shape_hw``: the pixels whose centres lie inside.

        (``cv2.ellipse`` also paints pixels the outline touches, which inflates the region by
        about half a pixel all round; the centre test is unbiased.)
        """
        h, w = int(shape_hw[0]), int(shape_hw[1])
        mask = np.zeros((h, w), np.uint8)
        r = max(self.semi_axis_a_px, self.semi_axis_b_px) + 1
        x0, x1 = max(0, int(self.center_x_px - r)), min(w, int(self.center_x_px + r) + 2)
        y0, y1 = max(0, int(self.center_y_px - r)), min(h, int(self.center_y_px + r) + 2)
        if x0 >= x1 or y0 >= y1 or min(self.semi_axis_a_px, self.semi_axis_b_px) <= 0:
            return mask
        # row by row: the pixel centres x with A dx^2 + B dx dy + C dy^2 <= 1 form one run; its
        # ends are then re-checked with the rotated-axes test, so pixels whose centres lie exactly
        # on the outline are decided as that test decides them
        th = math.radians(self.angle_deg)
        c, s = math.cos(th), math.sin(th)
        a, b = self.semi_axis_a_px, self.semi_axis_b_px
        ia2, ib2 = 1.0 / a**2, 1.0 / b**2
        qa, qb, qc = c * c * ia2 + s * s * ib2, 2.0 * c * s * (ia2 - ib2), s * s * ia2 + c * c * ib2
        rows = np.arange(y0, y1, dtype=np.float64)
        dy = rows - self.center_y_px
        lin, const = qb * dy, qc * dy * dy - 1.0
        root = np.sqrt(np.maximum(lin * lin - 4.0 * qa * const, 0.0))
        lo = np.ceil((-lin - root) / (2.0 * qa) + self.center_x_px).astype(np.int64)
        hi = np.floor((-lin + root) / (2.0 * qa) + self.center_x_px).astype(np.int64) + 1

        def inside(col: NDArray[np.int64]) -> NDArray[np.bool_]:
            dx = col.astype(np.float64) - self.center_x_px
            u = dx * c + dy * s
            v = -dx * s + dy * c
            return np.asarray((u / a) ** 2 + (v / b) ** 2 <= 1.0)

        lo = np.where(inside(lo - 1), lo - 1, np.where(inside(lo), lo, lo + 1))
        hi = np.where(inside(hi), hi + 1, np.where(inside(hi - 1), hi, hi - 1))
        lo, hi = np.clip(lo, 0, w), np.clip(hi, 0, w)
        for i in np.flatnonzero(hi > lo).tolist():
            mask[y0 + i, lo[i]:hi[i]] = value
        return mask

    def points(self, n: int = 360) -> NDArray[np.float64]:
        """``n`` points on the ellipse, shape (n, 2) as (x, y) pixels."""
        t = np.linspace(0, 2 * np.pi, n, endpoint=False)
        th = math.radians(self.angle_deg)
        x = self.semi_axis_a_px * np.cos(t)
        y = self.semi_axis_b_px * np.sin(t)
        return np.stack(
            [
                self.center_x_px + x * math.cos(th) - y * math.sin(th),
                self.center_y_px + x * math.sin(th) + y * math.cos(th),
            ],
            axis=1,
        )


def ramanujan_perimeter(a: float, b: float) -> float:
    """Perimeter of an ellipse with semi-axes ``a`` and ``b`` (same unit in and out).

    >>> round(ramanujan_perimeter(1.0, 1.0), 12) == round(2 * math.pi, 12)
    True
    """
    if a < 0 or b < 0:
        raise ValueError(f"semi-axes must be non-negative, got {a}, {b}")
    if a + b == 0:
        return 0.0
    h = ((a - b) / (a + b)) ** 2
    return math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))


def fit_ellipse_points(points_xy: NDArray[np.floating]) -> Ellipse:
    """Direct least-squares ellipse fit (``cv2.fitEllipse``) to points of shape (N, 2), (x, y) pixels.

    Raises ``ValueError`` with fewer than 5 points or a degenerate fit.
    """
    pts = np.asarray(points_xy, dtype=np.float32).reshape(-1, 2)
    if len(pts) < 5:
        raise ValueError(f"an ellipse fit needs at least 5 points, got {len(pts)}")
    (cx, cy), (d1, d2), angle = cv2.fitEllipse(pts)
    if not (np.isfinite([cx, cy, d1, d2, angle]).all()) or min(d1, d2) <= 0:
        raise ValueError("degenerate ellipse fit")
    # cv2 gives full axes; d1 lies along `angle`.
    a, b = d1 / 2.0, d2 / 2.0
    if b > a:
        a, b = b, a
        angle += 90.0
    return Ellipse(float(cx), float(cy), float(a), float(b), float(angle % 180.0))
