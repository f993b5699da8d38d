"""Blanking burned-in text in an image's pixels: outside the ultrasound regions, text-like
components (:mod:`.text`) and, optionally, words read by Tesseract (:mod:`.ocr`)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray

from fetalhc.deid.ocr import ocr_word_boxes
from fetalhc.deid.text import DEFAULT_TEXT_PARAMS, Box, TextParams, central_box, find_text_boxes, grow, overlaps
from fetalhc.image import UltrasoundImage


def deidentify_pixels(
    image: UltrasoundImage,
    *,
    ocr: bool = False,
    params: TextParams = DEFAULT_TEXT_PARAMS,
    ocr_min_confidence: float = 50.0,
) -> UltrasoundImage:
    """A copy of ``image`` with burned-in text blanked (set to 0).

    With ``image.regions`` given, everything outside the ultrasound regions is blanked first.
    Then text-like components outside the central head area are blanked (fast, no OCR); with
    ``ocr=True`` Tesseract additionally reads horizontal bands outside the head area (3x
    upscaled, both polarities, ``--psm 6``) and blanks word boxes with confidence above
    ``ocr_min_confidence`` (0-100). Pixels in the central head area are never changed.
    The returned ``notes`` gain one ``deid: ...`` line with counts only.
    """
    px = image.pixels.copy()
    h, w = px.shape
    notes: list[str] = []
    keep = _region_mask(image.regions, (h, w))
    if keep is not None:
        protect = central_box((h, w), params.central_fraction)
        # never blank the protected centre, even when the regions miss it
        keep[protect[1]:protect[3], protect[0]:protect[2]] = True
        n_out = int((~keep).sum())
        px[~keep] = 0
        notes.append(f"outside_regions_px={n_out}")
    n_boxes = 0
    for _ in range(params.max_passes):
        # peel: once a text line is blanked, the ring of the line next to it may turn flat
        boxes = find_text_boxes(px, params)
        for b in boxes:
            x0, y0, x1, y1 = _guarded(grow(b, params.margin_px, (h, w)), params, (h, w))
            px[y0:y1, x0:x1] = 0
        n_boxes += len(boxes)
        if not boxes:
            break
    notes.append(f"text_boxes={n_boxes}")
    if ocr:
        words = ocr_word_boxes(px, params=params, min_confidence=ocr_min_confidence)
        for b in words:
            x0, y0, x1, y1 = _guarded(grow(b, params.margin_px, (h, w)), params, (h, w))
            px[y0:y1, x0:x1] = 0
        notes.append(f"ocr_boxes={len(words)}")
    return replace(image, pixels=px, notes=(*image.notes, "deid: " + " ".join(notes)))


def _guarded(box: Box, params: TextParams, shape_hw: tuple[int, int]) -> Box:
    """Shrink a blanking box so it stays clear of the protected central box."""
    x0, y0, x1, y1 = box
    c = central_box(shape_hw, params.central_fraction)
    if not overlaps(box, c):
        return box
    # cut on the side that loses least area
    options = [
        (x0, y0, x1, min(y1, c[1])),
        (x0, max(y0, c[3]), x1, y1),
        (x0, y0, min(x1, c[0]), y1),
        (max(x0, c[2]), y0, x1, y1),
    ]
    best = max(options, key=lambda b: max(0, b[2] - b[0]) * max(0, b[3] - b[1]))
    if best[2] <= best[0] or best[3] <= best[1]:
        return (0, 0, 0, 0)
    return best


def _region_mask(regions: tuple[Box, ...], shape_hw: tuple[int, int]) -> NDArray[np.bool_] | None:
    """Union of the regions as a boolean mask, or ``None`` if no usable region lies in the image."""
    h, w = shape_hw
    mask = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in regions:
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(w, x1), min(h, y1)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return mask if mask.any() else None
