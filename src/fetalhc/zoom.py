"""The zoom pass: once the corner crops have found the head, cut a box around it (with a
margin, in the network's aspect) and segment it once more, closer to the image's own scale.

Pure functions, pixels of the input image throughout. A :class:`ZoomBox` may reach beyond
the image; :func:`extract_zoom` pads with black there (ultrasound's background) and
:func:`paste_zoom` returns only the part inside the image, with a mask of where it lies.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.fuse import nonzero_window


@dataclass(frozen=True)
class ZoomBox:
    """A box of input-image pixels, columns ``x0:x1`` and rows ``y0:y1`` (may exceed the image)."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width_px(self) -> int:
        return self.x1 - self.x0

    @property
    def height_px(self) -> int:
        return self.y1 - self.y0


def box_iou(a: ZoomBox, b: ZoomBox) -> float:
    """Intersection over union of two boxes (areas in pixels; 0 when they do not meet).

    >>> box_iou(ZoomBox(0, 0, 10, 10), ZoomBox(5, 0, 15, 10))
    0.3333333333333333
    """
    ix = max(0, min(a.x1, b.x1) - max(a.x0, b.x0))
    iy = max(0, min(a.y1, b.y1) - max(a.y0, b.y0))
    inter = ix * iy
    union = a.width_px * a.height_px + b.width_px * b.height_px - inter
    return inter / union if union > 0 else 0.0


def mask_bbox(mask: NDArray[np.generic]) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1), end-exclusive pixels, of the pixels above 0; None if empty."""
    return nonzero_window(np.asarray(mask) > 0)


def zoom_box(bbox: tuple[int, int, int, int], image_hw: tuple[int, int], net_hw: tuple[int, int],
             margin: float = 0.12, min_scale: float = 1.0) -> ZoomBox:
    """The zoom box around a head's bounding box ``bbox`` (x0, y0, x1, y1 pixels).

    The box is the bbox grown by ``margin`` x its size on every side, widened to the network's
    aspect ``net_hw`` (rows, columns), and at least ``min_scale`` x the network's size (so that
    with ``min_scale`` = 1 one network pixel covers at least one image pixel: small heads are
    not blown up beyond the scale the model was trained on). It is centred on the head and
    shifted to lie inside the image where it fits; otherwise it stays centred and overhangs.
    """
    x0, y0, x1, y1 = bbox
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"empty bounding box {bbox}")
    if margin < 0 or min_scale <= 0:
        raise ValueError(f"margin must be >= 0 and min_scale > 0, got {margin}, {min_scale}")
    nh, nw = net_hw
    h, w = image_hw
    bw, bh = (x1 - x0) * (1 + 2 * margin), (y1 - y0) * (1 + 2 * margin)
    # one scale for both axes: image pixels per network pixel
    scale = max(bw / nw, bh / nh, min_scale)
    # the box is k network "units" of (nh/g, nw/g) pixels so its aspect is the network's exactly
    g = math.gcd(nh, nw)
    uh, uw = nh // g, nw // g
    k = int(math.ceil(scale * g - 1e-9))
    bw_i, bh_i = k * uw, k * uh
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    bx0, by0 = int(round(cx - bw_i / 2.0)), int(round(cy - bh_i / 2.0))
    if bw_i <= w:
        bx0 = min(max(bx0, 0), w - bw_i)
    if bh_i <= h:
        by0 = min(max(by0, 0), h - bh_i)
    return ZoomBox(bx0, by0, bx0 + bw_i, by0 + bh_i)


def extract_zoom(image: NDArray[np.generic], box: ZoomBox, net_hw: tuple[int, int],
                 flip: bool = False) -> NDArray[np.generic]:
    """The box cut out of ``image`` (H, W), black where it overhangs, resized to ``net_hw``
    (area averaging when shrinking, bilinear when enlarging); mirrored left-right if ``flip``."""
    h, w = image.shape[:2]
    pad_l, pad_t = max(0, -box.x0), max(0, -box.y0)
    pad_r, pad_b = max(0, box.x1 - w), max(0, box.y1 - h)
    sub = image[max(0, box.y0):min(h, box.y1), max(0, box.x0):min(w, box.x1)]
    if pad_l or pad_t or pad_r or pad_b:
        sub = cv2.copyMakeBorder(np.ascontiguousarray(sub), pad_t, pad_b, pad_l, pad_r, cv2.BORDER_CONSTANT, value=0)
    nh, nw = net_hw
    interp = cv2.INTER_AREA if box.width_px >= nw else cv2.INTER_LINEAR
    out = cv2.resize(np.ascontiguousarray(sub), (nw, nh), interpolation=interp)
    if flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def paste_zoom(prob: NDArray[np.floating], box: ZoomBox, image_hw: tuple[int, int],
               flip: bool = False) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
    """Undo :func:`extract_zoom` for a network output: un-flip, resize to the box (bilinear)
    and place it in an (H, W) map. Returns the map (0 outside the box) and the mask of the
    pixels the box covers inside the image."""
    h, w = image_hw
    out = np.zeros((h, w), np.float32)
    covered = np.zeros((h, w), bool)
    window, part = zoom_window(prob, box, image_hw, flip)
    out[window] = part
    covered[window] = True
    return out, covered


def zoom_window(prob: NDArray[np.floating], box: ZoomBox, image_hw: tuple[int, int],
                flip: bool = False) -> tuple[tuple[slice, slice], NDArray[np.float32]]:
    """:func:`paste_zoom` without the (H, W) maps: the (rows, columns) slices of the image the box
    covers (empty when it lies outside) and the un-flipped, resized network output there."""
    h, w = image_hw
    p = np.asarray(prob, np.float32)
    p = np.ascontiguousarray(p[:, ::-1] if flip else p)
    big = cv2.resize(p, (box.width_px, box.height_px), interpolation=cv2.INTER_LINEAR)
    ix0, iy0, ix1, iy1 = max(0, box.x0), max(0, box.y0), min(w, box.x1), min(h, box.y1)
    if ix1 <= ix0 or iy1 <= iy0:
        return (slice(0, 0), slice(0, 0)), big[:0, :0]
    return (slice(iy0, iy1), slice(ix0, ix1)), big[iy0 - box.y0:iy1 - box.y0, ix0 - box.x0:ix1 - box.x0]


def fuse_zoom(base: NDArray[np.floating], zoom_prob: NDArray[np.floating], covered: NDArray[np.bool_],
              zoom_weight: float = 1.0) -> NDArray[np.float32]:
    """Blend the pasted zoom probability into the corner-fused map ``base`` inside the zoom box:
    ``(1 - zoom_weight) * base + zoom_weight * zoom`` there (1.0 = replace, 0.5 = average), ``base``
    elsewhere."""
    out = np.asarray(base, np.float32).copy()
    out[covered] = _blend(out[covered], np.asarray(zoom_prob, np.float32)[covered], zoom_weight)
    return out


def _blend(base: NDArray[np.float32], zoom: NDArray[np.float32], zoom_weight: float) -> NDArray[np.float32]:
    """``(1 - zoom_weight) * base + zoom_weight * zoom``, element by element (float32)."""
    if not 0.0 <= zoom_weight <= 1.0:
        raise ValueError(f"zoom_weight must lie in [0, 1], got {zoom_weight}")
    return np.asarray((1.0 - zoom_weight) * base + zoom_weight * zoom, np.float32)


def zoom_scale(box: ZoomBox, net_hw: tuple[int, int]) -> float:
    """Image pixels per network pixel of the zoom box (1.0 = the image's own scale)."""
    return box.width_px / net_hw[1]


def zoom_pass(pixels: NDArray[np.uint8], fused: NDArray[np.float32], head_mask: NDArray[np.generic],
              predict: Callable[[NDArray[np.uint8]], NDArray[np.float32]], net_hw: tuple[int, int],
              margin: float = 0.12, min_scale: float = 1.0, zoom_weight: float = 0.5,
              flip: bool = False) -> tuple[NDArray[np.float32], ZoomBox | None]:
    """One zoom pass (two with ``flip``): box the head of ``head_mask``, segment the box with
    ``predict`` ((N, h, w) uint8 crops -> (N, h, w) probabilities), paste it back and blend it into
    ``fused`` (:func:`fuse_zoom`). Returns ``fused`` unchanged and None when the mask is empty."""
    bbox = mask_bbox(head_mask)
    if bbox is None:
        return fused, None
    shape = (int(pixels.shape[0]), int(pixels.shape[1]))
    box = zoom_box(bbox, shape, net_hw, margin, min_scale)
    flips = (False, True) if flip else (False,)
    probs = predict(np.stack([extract_zoom(pixels, box, net_hw, flip=f) for f in flips]))
    # blend on the box's window only: the same values as fuse_zoom(paste_zoom(...)) on whole maps
    parts = [zoom_window(p, box, shape, flip=f) for p, f in zip(probs, flips, strict=True)]
    out = np.asarray(fused, np.float32).copy()
    window = parts[0][0]
    zp = parts[0][1] if len(parts) == 1 else np.mean([part for _, part in parts], axis=0)
    out[window] = _blend(out[window], zp, zoom_weight)
    return out, box
