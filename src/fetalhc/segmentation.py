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
from fetalhc.segment import STRIDE_PX, Segmenter
from fetalhc.zoom import ZoomBox, box_iou, mask_bbox, zoom_box, zoom_pass


@dataclass(frozen=True)
class Segmentation:
    """The network's view of one image (arrays in the input image's pixel grid).

    Attributes:
        probability: fused head probability (H, W) float32 in [0, 1].
        mask: the head mask (H, W) uint8 0/1: largest component of ``probability >= threshold``,
            holes filled.
        boxes: the crop boxes fed to the network, in input-image pixels.
        crop_probs: each crop's probability at the size it was fed to the network (the network's
            input size; half of it for the default's finding pass), rows x columns.
        zoom_boxes: the zoom boxes segmented, in input-image pixels, in order (the last one
            counts; two when the zoom pass was refined); empty without a zoom pass.
        passes: network calls this image took, one per crop fed (flipped twins included; a
            half-size locate pass counts one, as a full-size one).
    """

    probability: NDArray[np.float32]
    mask: NDArray[np.uint8]
    boxes: tuple[CropBox, ...]
    crop_probs: tuple[NDArray[np.float32], ...]
    zoom_boxes: tuple[ZoomBox, ...] = ()
    passes: int = 0


@dataclass(frozen=True)
class ZoomSettings:
    """The zoom pass (:func:`fetalhc.zoom.zoom_pass`): once the crops have found the head, its box
    (``margin`` x its size on each side, the network's aspect, at least ``min_scale`` image pixels
    per network pixel) is segmented once more and blended into the fused map with ``weight``
    (1 = replace); ``flip`` adds the box's left-right flipped twin.

    Coarse-to-fine (since 0.4): with ``locate_scale`` < 1 the whole-image pass that only finds the
    head runs at that fraction of the network's size (0.5: a quarter of the pixels and of the
    time); where it finds nothing it runs again at full size. ``refine_iou`` > 0 checks the zoom
    pass against itself: when the box its own head mask asks for overlaps the box it was given by
    less than this intersection-over-union (a coarse pass that found part of the head, or too
    much), the head is zoomed once more from the new box (docs/speed.md, docs/accuracy.md).
    """

    margin: float = 0.12
    min_scale: float = 1.0
    weight: float = 0.5
    flip: bool = False
    locate_scale: float = 1.0
    refine_iou: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.locate_scale <= 1.0:
            raise ValueError(f"locate_scale must lie in (0, 1], got {self.locate_scale}")
        if self.locate_scale < 1.0 and self.weight != 1.0:
            raise ValueError("a coarse locate pass (locate_scale < 1) needs weight 1: the zoom view must replace it")
        if not 0.0 <= self.refine_iou <= 1.0:
            raise ValueError(f"refine_iou must lie in [0, 1], got {self.refine_iou}")

    @property
    def label(self) -> str:
        """The views' suffix in results: "+zoom" / "+zoomflip", "@0.5" before it for a coarse
        locate pass (``locate_scale``), e.g. "@0.5+zoomflip"."""
        coarse = "" if self.locate_scale == 1.0 else f"@{self.locate_scale:g}"
        return coarse + ("+zoomflip" if self.flip else "+zoom")


#: each crop mode's own zoom pass (``PipelineConfig(zoom="auto")``): after the patent's corners the
#: zoom view is averaged with them (5 passes); after one whole-image pass, which only finds the head,
#: the zoom view and its flipped twin replace it (3 passes; since 0.4 the finding pass runs at half
#: size and the zoom is refined where it disagrees with itself). Measured in docs/accuracy.md.
ZOOM_FOR_CROP_MODE: dict[str, ZoomSettings] = {
    "corners": ZoomSettings(),
    "corners+full": ZoomSettings(),
    "full": ZoomSettings(weight=1.0, flip=True, locate_scale=0.5, refine_iou=0.85),
}

#: the zoom passes each crop mode can be calibrated for (``PipelineConfig.interval_key``), each
#: with a label of its own: the mode's default and, for the whole image, 0.3's default (a
#: full-size locate pass, no self-check: ``fetalhc evaluate --modes full+zoomflip``)
STANDARD_ZOOMS: dict[str, tuple[ZoomSettings, ...]] = {
    "corners": (ZOOM_FOR_CROP_MODE["corners"],),
    "corners+full": (ZOOM_FOR_CROP_MODE["corners+full"],),
    "full": (ZOOM_FOR_CROP_MODE["full"], ZoomSettings(weight=1.0, flip=True)),
}


def locate_hw(input_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    """The coarse locate pass's input size (rows, columns): ``scale`` x the network's, each side
    rounded to a multiple of the network's stride (at least one stride).

    >>> locate_hw((256, 384), 0.5), locate_hw((256, 384), 1.0), locate_hw((64, 96), 0.3)
    ((128, 192), (256, 384), (32, 32))
    """
    if scale == 1.0:
        return input_hw
    h, w = (max(STRIDE_PX, int(round(v * scale / STRIDE_PX)) * STRIDE_PX) for v in input_hw)
    return h, w


def _network_view(pixels: NDArray[np.uint8], boxes: list[CropBox], segmenter: Segmenter,
                  size_hw: tuple[int, int]) -> tuple[tuple[NDArray[np.float32], ...], NDArray[np.float32]]:
    """Each crop's probability at ``size_hw`` and their fused (H, W) map."""
    crops = np.stack([extract_crop(pixels, b, size_hw) for b in boxes])
    probs = tuple(segmenter.predict(crops))
    return probs, fuse_probabilities(list(probs), boxes, (int(pixels.shape[0]), int(pixels.shape[1])))


def segment(pixels: NDArray[np.uint8], segmenter: Segmenter, crop_mode: str = "corners", q: float = 0.9,
            flips: bool = False, threshold: float = 0.5, zoom: ZoomSettings | None = None) -> Segmentation:
    """Crop ``pixels`` (H, W) uint8, run the network on each crop, fuse by averaging the overlaps,
    optionally refine the head's box with the zoom pass (:class:`ZoomSettings`: coarse locate
    pass, self-check), and binarise (largest component, holes filled)."""
    h, w = pixels.shape
    boxes = crop_boxes(w, h, crop_mode, q, flips)
    # a model of fixed input size refuses the coarse size in Segmenter.predict (a ValueError naming
    # the model); pipeline.fit_to_model keeps the default settings from asking it to
    size = segmenter.input_hw if zoom is None else locate_hw(segmenter.input_hw, zoom.locate_scale)
    probs, fused = _network_view(pixels, boxes, segmenter, size)
    head = binarize(fused, threshold)
    passes = len(boxes)
    if size != segmenter.input_hw and not head.any():
        # small heads are a few network pixels wide in the coarse view: look again at full size
        probs, fused = _network_view(pixels, boxes, segmenter, segmenter.input_hw)
        head = binarize(fused, threshold)
        passes += len(boxes)
    zoom_boxes: tuple[ZoomBox, ...] = ()
    if zoom is not None:
        base, views = fused, 2 if zoom.flip else 1
        fused, box = zoom_pass(pixels, base, head, segmenter.predict, segmenter.input_hw,
                               zoom.margin, zoom.min_scale, zoom.weight, zoom.flip)
        if box is not None:
            zoom_boxes, passes = (box,), passes + views
            head = binarize(fused, threshold)
            if zoom.refine_iou > 0 and _box_disagrees(head, box, zoom, segmenter.input_hw):
                fused, box = zoom_pass(pixels, base, head, segmenter.predict, segmenter.input_hw,
                                       zoom.margin, zoom.min_scale, zoom.weight, zoom.flip)
                zoom_boxes, passes = (*zoom_boxes, *((box,) if box is not None else ())), passes + views
                head = binarize(fused, threshold)
    return Segmentation(fused, head, tuple(boxes), probs, zoom_boxes, passes)


def _box_disagrees(head: NDArray[np.uint8], box: ZoomBox, zoom: ZoomSettings, net_hw: tuple[int, int]) -> bool:
    """Whether the zoom box that the zoomed map's head mask ``head`` asks for overlaps the box it
    was zoomed with by less than ``zoom.refine_iou`` (intersection over union)."""
    bbox = mask_bbox(head)
    if bbox is None:
        return False
    asked = zoom_box(bbox, (int(head.shape[0]), int(head.shape[1])), net_hw, zoom.margin, zoom.min_scale)
    return box_iou(box, asked) < zoom.refine_iou
