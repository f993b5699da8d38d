"""Synthetic skull phantoms: a bright elliptical ring with speckle, for demos and tests.

The phantom is no patient: it is what the README's demo measures when HC18 is absent.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.ellipse import Ellipse


def make_phantom(
    height_px: int = 540,
    width_px: int = 800,
    ellipse: Ellipse | None = None,
    seed: int = 0,
    skull_thickness_px: float | None = None,
) -> tuple[NDArray[np.uint8], Ellipse]:
    """A grey ultrasound-like image of a fetal head and the ellipse of its outer skull edge.

    The skull is a bright ring whose *outer* edge is ``ellipse`` (pixels); inside it are a
    darker brain with a faint midline, outside a speckled uterus; multiplicative Rayleigh
    speckle and a mild blur imitate ultrasound texture.
    """
    rng = np.random.default_rng(seed)
    if ellipse is None:
        ellipse = Ellipse(width_px * 0.5, height_px * 0.5, width_px * 0.3, width_px * 0.24, 20.0)
    t = skull_thickness_px or max(3.0, 0.06 * ellipse.semi_axis_b_px)
    outer = ellipse.rasterize((height_px, width_px)).astype(np.float32)
    inner_e = Ellipse(ellipse.center_x_px, ellipse.center_y_px, ellipse.semi_axis_a_px - t,
                      ellipse.semi_axis_b_px - t, ellipse.angle_deg)
    inner = inner_e.rasterize((height_px, width_px)).astype(np.float32)
    base = np.full((height_px, width_px), 70.0, np.float32)
    base += 30 * cv2.GaussianBlur(rng.standard_normal((height_px, width_px)).astype(np.float32), (0, 0), 8)
    img = base * (1 - outer) + 200.0 * (outer - inner) + 45.0 * inner
    # midline echo
    th = math.radians(ellipse.angle_deg)
    d = np.array([math.cos(th), math.sin(th)]) * (ellipse.semi_axis_a_px - 2 * t)
    c = np.array([ellipse.center_x_px, ellipse.center_y_px])
    p0, p1 = np.round(c - d).astype(int), np.round(c + d).astype(int)
    cv2.line(img, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), 110.0, 2)
    img = cv2.GaussianBlur(img, (0, 0), 1.2)
    speckle = rng.rayleigh(scale=1.0, size=img.shape).astype(np.float32) / math.sqrt(math.pi / 2)
    img = img * speckle
    return np.clip(img, 0, 255).astype(np.uint8), ellipse
