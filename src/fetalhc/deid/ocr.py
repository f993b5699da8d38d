"""Reading text with Tesseract on horizontal bands outside the head area (optional, slower).

Needs the ``tesseract`` binary and ``pytesseract``; :func:`tesseract_available` says whether
they are there. Words read are used only for their boxes; their text is never stored.
"""

from __future__ import annotations

import os
import shutil

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.deid.text import (
    DEFAULT_TEXT_PARAMS,
    Box,
    TextParams,
    central_box,
    commonest_level,
    flat_background,
    near_level,
    overlaps,
    texture_mask,
)


def tesseract_available() -> bool:
    """True if pytesseract is importable and the ``tesseract`` binary is on the PATH."""
    try:
        import pytesseract  # noqa: F401
    except ImportError:
        return False
    return shutil.which("tesseract") is not None


def ocr_bands(shape_hw: tuple[int, int], params: TextParams = DEFAULT_TEXT_PARAMS,
              band_px: int = 48, step_px: int = 32) -> list[Box]:
    """Overlapping horizontal bands (x0, y0, x1, y1) covering the image outside the central box.

    Rows above and below the central box are read full width; rows beside it are read as a
    left and a right strip.
    """
    h, w = shape_hw
    c = central_box((h, w), params.central_fraction)
    out: list[Box] = []
    y = 0
    while y < h:
        y1 = min(h, y + band_px)
        if y1 <= c[1] or y >= c[3]:
            out.append((0, y, w, y1))
        else:
            if y < c[1]:
                out.append((0, y, w, c[1]))
            if y1 > c[3]:
                out.append((0, c[3], w, y1))
            out.append((0, y, c[0], y1))
            out.append((c[2], y, w, y1))
        if y1 == h:
            break
        y += step_px
    return [b for b in dict.fromkeys(out) if b[2] > b[0] and b[3] > b[1]]


def ocr_words(pixels: NDArray[np.uint8], bands: list[Box], scale: int = 3,
              polarities: tuple[bool, ...] = (False, True)) -> list[tuple[str, float, Box]]:
    """Tesseract words (text, confidence 0-100, box in image pixels) read on ``bands``.

    Each band is stretched to the full 0-255 range, upscaled ``scale`` times and stacked into
    one page per polarity (separated by blank gaps) so one Tesseract call (``--psm 6``) reads
    them all; boxes map back to the image. Empty bands (no contrast) are skipped.
    """
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")  # Tesseract's threads cost more than they gain here
    crops: list[tuple[Box, NDArray[np.uint8]]] = []
    for b in bands:
        c = pixels[b[1]:b[3], b[0]:b[2]]
        if c.size == 0 or int(c.max()) - int(c.min()) < 8:
            continue
        c = cv2.normalize(c, None, 0, 255, cv2.NORM_MINMAX)  # faint text gets full contrast
        crops.append((b, cv2.resize(c, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)))
    if not crops:
        return []
    gap = 16 * scale
    width = max(cr.shape[1] for _, cr in crops) + 2 * gap
    height = sum(cr.shape[0] + gap for _, cr in crops) + gap
    page = np.zeros((height, width), np.uint8)
    offsets: list[tuple[int, Box]] = []
    y = gap
    for b, cr in crops:
        page[y:y + cr.shape[0], gap:gap + cr.shape[1]] = cr
        offsets.append((y, b))
        y += cr.shape[0] + gap
    words: list[tuple[str, float, Box]] = []
    for invert in polarities:
        img = 255 - page if invert else page
        data = pytesseract.image_to_data(img, config="--psm 6", output_type=pytesseract.Output.DICT)
        for i, text in enumerate(data["text"]):
            text = str(text).strip()
            conf = float(data["conf"][i])
            if not text or conf < 0:
                continue
            left, top = int(data["left"][i]), int(data["top"][i])
            ww, hh = int(data["width"][i]), int(data["height"][i])
            cy = top + hh / 2
            for oy, b in offsets:
                if oy <= cy < oy + (b[3] - b[1]) * scale:
                    x0 = b[0] + (left - gap) // scale
                    y0 = b[1] + (top - oy) // scale
                    x1 = b[0] + -(-(left + ww - gap) // scale)
                    y1 = b[1] + -(-(top + hh - oy) // scale)
                    words.append((text, conf, (max(b[0], x0), max(b[1], y0), min(b[2], x1), min(b[3], y1))))
                    break
    return words


def ocr_word_boxes(pixels: NDArray[np.uint8], params: TextParams = DEFAULT_TEXT_PARAMS,
                   min_confidence: float = 50.0) -> list[Box]:
    """Boxes of words Tesseract reads outside the head area with confidence >= ``min_confidence``.

    Large textured components (tissue, skull) are blacked out of the page Tesseract reads, so
    text burned onto tissue is left to the component detector. Raises ``RuntimeError`` if
    Tesseract is not installed. Words with fewer than two letters or digits, boxes touching the
    central box, taller than 1.5 ``params.max_height_px`` or without a flat background around
    them (garbage read in tissue) are dropped.
    """
    if not tesseract_available():
        raise RuntimeError("deidentify_pixels(ocr=True) needs the tesseract binary and pytesseract; "
                           "install them (apt-get install tesseract-ocr; pip install pytesseract)")
    h, w = pixels.shape
    protect = central_box((h, w), params.central_fraction)
    bg = commonest_level(pixels)
    flat = pixels.copy()
    flat[texture_mask(pixels, params)] = 0  # speckle only slows Tesseract down and yields garbage words
    out: list[Box] = []
    for text, conf, box in ocr_words(flat, ocr_bands((h, w), params)):
        if conf < min_confidence or sum(ch.isalnum() for ch in text) < 2:
            continue
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        if box[3] - box[1] > params.max_height_px * 1.5 or overlaps(box, protect):
            continue
        # a "word" read in tissue has no flat ring (a sure word, 3+ characters at confidence 80+,
        # may sit in a dense text block or touch the image, so its ring is not asked to be flat)
        sure = conf >= 80 and sum(ch.isalnum() for ch in text) >= 3
        if not sure and not flat_background(pixels, box, params.background_mad, min_exact=0.5, all_sides=False):
            continue
        # screen text sits on the screen's background: a "word" box with less than 30 % of it
        # is speckle Tesseract made sense of (seen near the skull on HC18 images)
        if float(near_level(pixels[box[1]:box[3], box[0]:box[2]], bg).mean()) < 0.3:
            continue
        out.append(box)
    return out
