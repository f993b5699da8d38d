"""The head's outline at sub-pixel precision, straight from the fused probability map, and an
ellipse fit that is robust to the odd outlier stretch of outline.

Pure functions; (x, y) pixels of the input image.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray
from skimage import measure

from fetalhc.ellipse import Ellipse, fit_ellipse_points


def probability_outline_xy(prob: NDArray[np.floating], mask: NDArray[np.generic], level: float = 0.5,
                           pad_px: int = 4) -> NDArray[np.float64]:
    """The iso-line of ``prob`` at ``level`` around the head ``mask`` (its largest component),
    as (N, 2) (x, y) pixels with sub-pixel precision (marching squares on the probability
    itself, not on the binarised mask). Only the window of the mask's bounding box (grown by
    ``pad_px``) is searched; the longest closed-or-open line there is returned. Empty (0, 2)
    when the mask is empty or no line is found."""
    m = np.asarray(mask) > 0
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return np.zeros((0, 2))
    h, w = m.shape
    y0, y1 = max(0, int(rows[0]) - pad_px), min(h, int(rows[-1]) + 1 + pad_px)
    x0, x1 = max(0, int(cols[0]) - pad_px), min(w, int(cols[-1]) + 1 + pad_px)
    # outside the head's component the probability is forced low, so that other blobs above
    # `level` do not join the line; a one-pixel frame of zeros closes lines at the image edge.
    # (The whole mask lies in the window, so growing the window's mask is growing the mask.)
    sub = np.where(_grow(m[y0:y1, x0:x1], 2), np.asarray(prob, np.float32)[y0:y1, x0:x1], 0.0)
    sub = np.pad(sub, 1)
    lines = measure.find_contours(sub, level)
    if not lines:
        return np.zeros((0, 2))
    best = max(lines, key=len)
    return np.stack([best[:, 1] - 1 + x0, best[:, 0] - 1 + y0], axis=1)


def _grow(m: NDArray[np.bool_], px: int) -> NDArray[np.bool_]:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(m.astype(np.uint8), k) > 0


def ellipse_distance_px(ell: Ellipse, points_xy: NDArray[np.floating]) -> NDArray[np.float64]:
    """Signed, approximately geometric distance (pixels; + outside) of each point from the ellipse:
    (r - 1) x the point's distance from the centre / r, where r is the point's normalised radius."""
    p = np.asarray(points_xy, np.float64)
    th = math.radians(ell.angle_deg)
    dx, dy = p[:, 0] - ell.center_x_px, p[:, 1] - ell.center_y_px
    u = dx * math.cos(th) + dy * math.sin(th)
    v = -dx * math.sin(th) + dy * math.cos(th)
    r = np.sqrt((u / ell.semi_axis_a_px) ** 2 + (v / ell.semi_axis_b_px) ** 2)
    rho = np.hypot(dx, dy)
    return np.asarray((r - 1.0) * rho / np.maximum(r, 1e-9))


def robust_fit_ellipse(points_xy: NDArray[np.floating], k: float = 3.0, iterations: int = 3,
                       min_keep: float = 0.6, floor_px: float = 0.75) -> tuple[Ellipse, float]:
    """Iteratively trimmed ellipse fit: fit all points, drop those whose distance from the fit
    lies more than ``k`` robust SDs (1.4826 MAD, at least ``floor_px``) from the median distance,
    refit; repeat ``iterations`` times. Never keeps fewer than ``min_keep`` of the points.

    Returns the ellipse and the fraction of points dropped. Raises ``ValueError`` like
    :func:`fit_ellipse_points` when no ellipse fits.
    """
    pts = np.asarray(points_xy, np.float64).reshape(-1, 2)
    ell = fit_ellipse_points(pts)
    keep = np.ones(len(pts), bool)
    for _ in range(iterations):
        d = ellipse_distance_px(ell, pts)
        med = float(np.median(d[keep]))
        sd = max(1.4826 * float(np.median(np.abs(d[keep] - med))), floor_px)
        new = np.abs(d - med) <= k * sd
        if new.sum() < max(5, min_keep * len(pts)) or np.array_equal(new, keep):
            break
        keep = new
        ell = fit_ellipse_points(pts[keep])
    return ell, float(1.0 - keep.mean())


def ellipse_from_probability(prob: NDArray[np.floating], mask: NDArray[np.generic], robust: bool = True,
                             level: float = 0.5) -> Ellipse | None:
    """The clinical ellipse (pixels) fitted to the ``level`` iso-line of ``prob`` around ``mask``
    (trimmed fit when ``robust``); None when no ellipse fits."""
    pts = probability_outline_xy(prob, mask, level)
    try:
        return robust_fit_ellipse(pts)[0] if robust else fit_ellipse_points(pts)
    except ValueError:
        return None
