"""Overlay picture: the image with the mask contour, the fitted ellipse and the HC."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.results import MeasureResult


def draw_overlay(pixels: NDArray[np.uint8], result: MeasureResult) -> NDArray[np.uint8]:
    """BGR picture of ``pixels`` with the mask contour (green), the fitted ellipse (yellow)
    and its axes, and the HC written in the corner. No patient data is drawn."""
    out = cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR)
    scale = max(1, round(max(pixels.shape) / 800))
    if result.mask is not None and result.mask.any():
        contours, _ = cv2.findContours(result.mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(out, contours, -1, (0, 200, 0), scale)
    e = result.ellipse
    if e is not None:
        pts = np.round(e.points(720)).astype(np.int32)
        cv2.polylines(out, [pts], True, (0, 220, 255), scale, cv2.LINE_AA)
        th = np.radians(e.angle_deg)
        for r, phi in ((e.semi_axis_a_px, th), (e.semi_axis_b_px, th + np.pi / 2)):
            d = np.array([np.cos(phi), np.sin(phi)]) * r
            c = np.array([e.center_x_px, e.center_y_px])
            p0, p1 = np.round(c - d).astype(int), np.round(c + d).astype(int)
            cv2.line(out, (int(p0[0]), int(p0[1])), (int(p1[0]), int(p1[1])), (255, 160, 0), scale, cv2.LINE_AA)
    if result.hc_mm is not None:
        text = f"HC {result.hc_mm:.1f} mm (ellipse)"
    elif result.hc_px is not None:
        text = f"HC {result.hc_px:.0f} px (no pixel size)"
    else:
        text = "no head found"
    if result.status != "ok":
        text += "  [review]"
    cv2.putText(out, text, (10, 30 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (0, 0, 0), 4 * scale, cv2.LINE_AA)
    cv2.putText(out, text, (10, 30 * scale), cv2.FONT_HERSHEY_SIMPLEX, 0.8 * scale, (255, 255, 255), scale,
                cv2.LINE_AA)
    return out
