"""Stage 5: fuse crop probabilities into one full-size map, then one clean head mask."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.crops import CropBox, paste_back


def fuse_probabilities(
    probs: list[NDArray[np.float32]], boxes: list[CropBox], shape_hw: tuple[int, int]
) -> NDArray[np.float32]:
    """Paste each crop's probability back at its box; where crops overlap, divide by the
    number of crops covering the pixel (the patent's averaging). Uncovered pixels get 0.

    Returns an (H, W) float32 map in [0, 1] of the input image's size.
    """
    if len(probs) != len(boxes):
        raise ValueError(f"got {len(probs)} probability maps for {len(boxes)} boxes")
    acc = np.zeros(shape_hw, np.float32)
    count = np.zeros(shape_hw, np.float32)
    for p, b in zip(probs, boxes, strict=True):
        acc[b.y0 : b.y1, b.x0 : b.x1] += paste_back(p, b)
        count[b.y0 : b.y1, b.x0 : b.x1] += 1.0
    out = np.zeros_like(acc)
    np.divide(acc, count, out=out, where=count > 0)
    return out


def largest_filled_component(mask: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Keep the largest 8-connected component of ``mask`` (non-zero = foreground) and fill
    its holes. Returns a 0/1 uint8 mask; all zeros if ``mask`` is empty."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    out = np.zeros_like(m)
    if n <= 1:
        return out
    keep = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    comp = (labels == keep).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out


def binarize(prob: NDArray[np.floating], threshold: float = 0.5) -> NDArray[np.uint8]:
    """Threshold a probability map, keep the largest component and fill holes (0/1 uint8)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    return largest_filled_component(prob >= threshold)
