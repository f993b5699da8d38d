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
    h, w = shape_hw
    if len(boxes) == 1 and (boxes[0].x0, boxes[0].y0, boxes[0].x1, boxes[0].y1) == (0, 0, w, h):
        # one crop covering the image (the default's whole-image pass): the sum is the crop and the
        # count 1, so the average is the pasted crop itself, bit for bit (0.07 vs 4.65 ms at 800 x 540)
        return np.asarray(paste_back(probs[0], boxes[0]), np.float32)
    acc = np.zeros(shape_hw, np.float32)
    count = np.zeros(shape_hw, np.float32)
    for p, b in zip(probs, boxes, strict=True):
        acc[b.y0 : b.y1, b.x0 : b.x1] += paste_back(p, b)
        count[b.y0 : b.y1, b.x0 : b.x1] += 1.0
    out = np.zeros_like(acc)
    np.divide(acc, count, out=out, where=count > 0)
    return out


def nonzero_window(mask: NDArray[np.generic], margin_px: int = 0) -> tuple[int, int, int, int] | None:
    """The window (x0, y0, x1, y1), end-exclusive pixels, of the non-zero pixels of ``mask``
    grown by ``margin_px`` on every side and clipped to the image; None if ``mask`` is empty."""
    m = np.asarray(mask)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return None
    h, w = m.shape
    return (max(0, int(cols[0]) - margin_px), max(0, int(rows[0]) - margin_px),
            min(w, int(cols[-1]) + 1 + margin_px), min(h, int(rows[-1]) + 1 + margin_px))


def largest_filled_component_window(
    mask: NDArray[np.generic],
) -> tuple[tuple[int, int], NDArray[np.uint8]] | None:
    """:func:`largest_filled_component` on the window of the mask's foreground only (grown by 1 px
    of background where the image allows): ``((x0, y0), window)``, the window's top-left corner
    in pixels of ``mask`` and its 0/1 uint8 content; None if ``mask`` is empty.

    Outside the window the result is all zeros, so pasting the window into zeros of the mask's
    size gives exactly :func:`largest_filled_component` (labelling and contour filling are local)."""
    m = np.asarray(mask)
    m = m if m.dtype == np.bool_ else m > 0
    win = nonzero_window(m, 1)
    if win is None:
        return None
    x0, y0, x1, y1 = win
    sub = m[y0:y1, x0:x1].astype(np.uint8)
    n, labels = cv2.connectedComponents(sub, connectivity=8)
    comp = sub  # one component: itself
    if n > 2:
        areas = _areas(labels, n)
        keep = 1 + int(np.argmax(areas))
        if int(np.count_nonzero(areas == areas[keep - 1])) > 1:
            # equally large components: which one is kept depends on OpenCV's label order, so
            # label the whole mask as before (rare; the label order of a window may differ)
            n, labels = cv2.connectedComponents(m.astype(np.uint8), connectivity=8)
            keep = 1 + int(np.argmax(_areas(labels, n)))
            labels = labels[y0:y1, x0:x1]
        comp = (labels == keep).astype(np.uint8)
    contours, _ = cv2.findContours(comp, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    out = np.zeros_like(sub)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return (x0, y0), out


def _areas(labels: NDArray[np.int32], n: int) -> NDArray[np.intp]:
    """Pixel count of components 1..n-1 of OpenCV's ``labels`` (the area statistic of
    ``connectedComponentsWithStats``, counted without its other statistics, which cost OpenCV
    more than the labelling)."""
    return np.bincount(labels.ravel(), minlength=n)[1:]


def largest_filled_component(mask: NDArray[np.generic]) -> NDArray[np.uint8]:
    """Keep the largest 8-connected component of ``mask`` (non-zero = foreground) and fill
    its holes. Returns a 0/1 uint8 mask; all zeros if ``mask`` is empty."""
    return _paste(np.shape(mask), largest_filled_component_window(mask))


def binarize(prob: NDArray[np.floating], threshold: float = 0.5) -> NDArray[np.uint8]:
    """Threshold a probability map, keep the largest component and fill holes (0/1 uint8)."""
    return _paste(np.shape(prob), binarize_window(prob, threshold))


def binarize_window(
    prob: NDArray[np.floating], threshold: float = 0.5
) -> tuple[tuple[int, int], NDArray[np.uint8]] | None:
    """:func:`binarize` on the window of the pixels at or above ``threshold`` only:
    ``((x0, y0), window)`` in pixels of ``prob`` (see :func:`largest_filled_component_window`);
    None if no pixel reaches ``threshold``."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    return largest_filled_component_window(prob >= threshold)


def _paste(shape_hw: tuple[int, ...], found: tuple[tuple[int, int], NDArray[np.uint8]] | None) -> NDArray[np.uint8]:
    """A window ``((x0, y0), window)`` placed in zeros of ``shape_hw`` pixels (all zeros for None)."""
    out = np.zeros(shape_hw, np.uint8)
    if found is not None:
        (x0, y0), sub = found
        out[y0:y0 + sub.shape[0], x0:x0 + sub.shape[1]] = sub
    return out
