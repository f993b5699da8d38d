"""Stage 3 of the patent: multi-angle crops.

The image is cropped from its four corners; each crop is ``Q * W`` pixels wide and
``Q * H`` pixels high and anchored at its corner. Optionally the whole image is used
as a fifth "crop", and each crop may also be seen horizontally flipped.

All coordinates are in pixels of the (de-identified) input image.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
from numpy.typing import NDArray

CORNERS = ("top_left", "top_right", "bottom_right", "bottom_left")
#: The patent's crop scale Q.
DEFAULT_Q = 0.9


def validate_q(q: float) -> float:
    """``q`` if it is a valid crop scale (0 < q <= 1), else ``ValueError``.

    >>> validate_q(0.9)
    0.9
    """
    if not 0.0 < q <= 1.0:
        raise ValueError(f"crop scale q must lie in (0, 1], got {q}")
    return q


class CropMode(StrEnum):
    """Which crops the pipeline feeds the network."""

    FULL = "full"  #: the whole image only (single pass)
    CORNERS = "corners"  #: the patent's four corner crops
    CORNERS_FULL = "corners+full"  #: four corners and the whole image


#: what ``measure``, the API and the page use unless told otherwise (since 0.3): one whole-image
#: pass finds the head (since 0.4 at half the network's size), the zoom pass and its flipped twin
#: measure it (2.25 full-size passes; the patent's four corners + zoom take 5 for the same
#: accuracy, docs/accuracy.md)
DEFAULT_CROP_MODE = CropMode.FULL.value


@dataclass(frozen=True)
class CropBox:
    """A crop rectangle in input-image pixels: columns ``x0:x1``, rows ``y0:y1``."""

    name: str
    x0: int
    y0: int
    x1: int
    y1: int
    flip: bool = False

    @property
    def width_px(self) -> int:
        return self.x1 - self.x0

    @property
    def height_px(self) -> int:
        return self.y1 - self.y0


def corner_boxes(width_px: int, height_px: int, q: float = DEFAULT_Q) -> list[CropBox]:
    """The patent's four corner crops of a ``width_px`` x ``height_px`` image.

    Each box is ``round(q * width_px)`` wide and ``round(q * height_px)`` high, anchored at
    the top-left, top-right, bottom-right and bottom-left corner, in that order.

    >>> [b.x0 for b in corner_boxes(100, 50, 0.9)]
    [0, 10, 10, 0]
    """
    validate_q(q)
    if width_px < 2 or height_px < 2:
        raise ValueError(f"image must be at least 2x2 pixels, got {width_px}x{height_px}")
    w = max(1, int(round(q * width_px)))
    h = max(1, int(round(q * height_px)))
    dx, dy = width_px - w, height_px - h
    return [
        CropBox("top_left", 0, 0, w, h),
        CropBox("top_right", dx, 0, width_px, h),
        CropBox("bottom_right", dx, dy, width_px, height_px),
        CropBox("bottom_left", 0, dy, w, height_px),
    ]


def crop_boxes(
    width_px: int,
    height_px: int,
    mode: CropMode | str = CropMode.CORNERS,
    q: float = DEFAULT_Q,
    flips: bool = False,
) -> list[CropBox]:
    """Crop boxes for ``mode``; with ``flips`` each box appears twice, once flipped."""
    mode = CropMode(mode)
    boxes: list[CropBox] = []
    if mode in (CropMode.CORNERS, CropMode.CORNERS_FULL):
        boxes.extend(corner_boxes(width_px, height_px, q))
    if mode in (CropMode.FULL, CropMode.CORNERS_FULL):
        boxes.append(CropBox("full", 0, 0, width_px, height_px))
    if flips:
        boxes = boxes + [
            CropBox(b.name + "_flip", b.x0, b.y0, b.x1, b.y1, flip=True) for b in boxes
        ]
    return boxes


def extract_crop(
    image: NDArray[np.generic], box: CropBox, size_hw: tuple[int, int]
) -> NDArray[np.generic]:
    """Cut ``box`` out of ``image`` (H, W) and resize it to ``size_hw`` (rows, columns)."""
    crop = image[box.y0 : box.y1, box.x0 : box.x1]
    out = cv2.resize(crop, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
    if box.flip:
        out = out[:, ::-1]
    return np.ascontiguousarray(out)


def paste_back(
    prob: NDArray[np.floating], box: CropBox
) -> NDArray[np.float32]:
    """Undo :func:`extract_crop` for a network output: un-flip and resize to the box size."""
    p = prob[:, ::-1] if box.flip else prob
    return cv2.resize(
        np.ascontiguousarray(p, dtype=np.float32),
        (box.width_px, box.height_px),
        interpolation=cv2.INTER_LINEAR,
    )
