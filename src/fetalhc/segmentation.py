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


def segment(pixels: NDArray[np.uint8], segmenter: Segmenter, crop_mode: str = "corners", q: float = 0.9,
            flips: bool = False, threshold: float = 0.5) -> Segmentation:
    """Crop ``pixels`` (H, W) uint8, run the network on each crop, fuse by averaging the overlaps
    and binarise (largest component, holes filled)."""
    h, w = pixels.shape
    boxes = crop_boxes(w, h, crop_mode, q, flips)
    crops = np.stack([extract_crop(pixels, b, segmenter.input_hw) for b in boxes])
    probs = tuple(segmenter.predict(crops))
    fused = fuse_probabilities(list(probs), boxes, (h, w))
    return Segmentation(fused, binarize(fused, threshold), tuple(boxes), probs)
