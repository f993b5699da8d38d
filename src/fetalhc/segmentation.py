"""Stages 3-5 of the patent for one image: crops -> network -> fused probability -> head mask.

:func:`segment` is the composition of :mod:`fetalhc.crops`, :mod:`fetalhc.segment` and
:mod:`fetalhc.fuse`; it returns a :class:`Segmentation` value and keeps nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fetalhc.crops import CropBox, crop_boxes, extract_crop
from fetalhc.fuse import binarize, fuse_probabilities
from fetalhc.segment import Segmenter
from fetalhc.zoom import zoom_pass


@dataclass(frozen=True)
class Segmentation:
    """The network's view of one image (arrays in the input image's pixel grid).

    Attributes:
        probability: fused head probability (H, W) float32 in [0, 1].
        mask: the head mask (H, W) uint8 0/1: largest component of ``probability >= threshold``,
            holes filled.
        boxes: the crop boxes fed to the network, in input-image pixels.
        crop_probs: each crop's probability at network resolution (rows, columns of the network input).
    """

    probability: NDArray[np.float32]
    mask: NDArray[np.uint8]
    boxes: tuple[CropBox, ...]
    crop_probs: tuple[NDArray[np.float32], ...]


@dataclass(frozen=True)
class ZoomSettings:
    """The zoom pass (:func:`fetalhc.zoom.zoom_pass`): once the crops have found the head, its box
    (``margin`` x its size on each side, the network's aspect, at least ``min_scale`` image pixels
    per network pixel) is segmented once more and blended into the fused map with ``weight``
    (1 = replace); ``flip`` adds the box's left-right flipped twin."""

    margin: float = 0.12
    min_scale: float = 1.0
    weight: float = 0.5
    flip: bool = False


#: each crop mode's own zoom pass (``PipelineConfig(zoom="auto")``): after the patent's corners the
#: zoom view is averaged with them (5 passes); after one whole-image pass, which only finds the head,
#: the zoom view and its flipped twin replace it (3 passes). Both measured in docs/accuracy.md.
ZOOM_FOR_CROP_MODE: dict[str, ZoomSettings] = {
    "corners": ZoomSettings(),
    "corners+full": ZoomSettings(),
    "full": ZoomSettings(weight=1.0, flip=True),
}


def segment(pixels: NDArray[np.uint8], segmenter: Segmenter, crop_mode: str = "corners", q: float = 0.9,
            flips: bool = False, threshold: float = 0.5, zoom: ZoomSettings | None = None) -> Segmentation:
    """Crop ``pixels`` (H, W) uint8, run the network on each crop, fuse by averaging the overlaps,
    optionally refine the head's box with the zoom pass, and binarise (largest component, holes
    filled)."""
    h, w = pixels.shape
    boxes = crop_boxes(w, h, crop_mode, q, flips)
    crops = np.stack([extract_crop(pixels, b, segmenter.input_hw) for b in boxes])
    probs = tuple(segmenter.predict(crops))
    fused = fuse_probabilities(list(probs), boxes, (h, w))
    if zoom is not None:
        fused, _ = zoom_pass(pixels, fused, binarize(fused, threshold), segmenter.predict, segmenter.input_hw,
                             zoom.margin, zoom.min_scale, zoom.weight, zoom.flip)
    return Segmentation(fused, binarize(fused, threshold), tuple(boxes), probs)
