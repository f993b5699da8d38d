"""Stage 2: de-identification. Blank burned-in text in the pixels; strip identifiers from DICOM headers.

The fast path (:func:`deidentify_pixels` with ``ocr=False``) finds text-like connected components
with OpenCV morphology: thin high-contrast strokes on a flat background, grouped horizontally into
lines. ``ocr=True`` adds Tesseract on horizontal bands outside the head area. Both leave the
central head area and every large component untouched, so the head circumference cannot change.

Notes added to the image record only counts (``deid: ...``), never the text that was read.
Checked on the 854 HC18 training images: the fast path changes 8 of them, none within 5 px of
the reference head ellipse (``benchmarks/deid_benchmark.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.image import UltrasoundImage

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) pixels, x1/y1 exclusive


@dataclass(frozen=True)
class TextParams:
    """Thresholds of the text-like component detector (pixels, grey levels 0-255).

    Attributes:
        central_fraction: (fx, fy) size of the protected central box as a fraction of the image
            width and height; components touching it are never blanked (the head lies there).
        edge_thresholds: minimum morphological gradients (grey levels) of a text stroke; the
            detector runs once per threshold and blanks the union (a low one takes in the
            anti-aliased fringes of letters, a high one separates text from dim tissue next to
            it, which a low one merges into the tissue).
        min_height_px / max_height_px: height range of one text line.
        max_width_fraction: a line wider than this fraction of the image width is not text.
        join_px: horizontal closing length that joins letters into words and lines.
        min_contrast: a text line's brightest (or darkest) pixel differs from its background by at
            least this many grey levels; fainter marks are left to OCR (smudges in a dark
            head reach about 36 on HC18, screen text 60 and more).
        background_mad: the ring around a text line must be flat: median absolute deviation
            of its grey levels at most this (speckled tissue is far above it).
        min_exact_background: and at least this fraction of the ring has exactly its median grey
            level, as a rendered screen background has (smooth dark tissue or fluid rarely does).
        margin_px: margin added around each blanked box.
        max_passes: detection passes; each runs on the image with the previous passes' boxes
            blanked, so lines of a block whose neighbours hid their flat ring are found next.
    """

    central_fraction: tuple[float, float] = (0.4, 0.4)
    edge_thresholds: tuple[int, ...] = (24, 12)
    min_height_px: int = 5
    max_height_px: int = 48
    max_width_fraction: float = 0.6
    join_px: int = 11
    min_contrast: int = 40
    background_mad: float = 1.0
    min_exact_background: float = 0.6
    margin_px: int = 3
    max_passes: int = 3


DEFAULT_TEXT_PARAMS = TextParams()


def central_box(shape_hw: tuple[int, int], fraction: tuple[float, float] = (0.4, 0.4)) -> Box:
    """The protected central box (x0, y0, x1, y1) in pixels: the head is assumed to cover it."""
    h, w = shape_hw
    fx, fy = fraction
    x0 = int(round(w * (1 - fx) / 2))
    y0 = int(round(h * (1 - fy) / 2))
    return (x0, y0, w - x0, h - y0)


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _grow(box: Box, m: int, shape_hw: tuple[int, int]) -> Box:
    h, w = shape_hw
    return (max(0, box[0] - m), max(0, box[1] - m), min(w, box[2] + m), min(h, box[3] + m))


def _gradient(pixels: NDArray[np.uint8]) -> NDArray[np.uint8]:
    k3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
    return cv2.morphologyEx(pixels, cv2.MORPH_GRADIENT, k3)


def _long_lines(strokes: NDArray[np.uint8], length_px: int = 41) -> NDArray[np.bool_]:
    """Horizontal or vertical runs of strokes at least ``length_px`` long (frames, rulers)."""
    hor = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (length_px, 1)))
    ver = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, length_px)))
    return (hor | ver).astype(bool)


def _components(
    grad: NDArray[np.uint8], threshold: int, p: TextParams, exclude: NDArray[np.bool_] | None = None
) -> tuple[NDArray[np.uint8], NDArray[np.int32], NDArray[np.int32]]:
    """Stroke mask (gradient >= threshold, outside ``exclude``), labels and stats of the
    horizontally joined strokes."""
    strokes = (grad >= threshold).astype(np.uint8)
    if exclude is not None:
        strokes[exclude] = 0
    joined = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (p.join_px, 1)))
    _, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    return strokes, labels, stats


def find_text_boxes(pixels: NDArray[np.uint8], params: TextParams = DEFAULT_TEXT_PARAMS) -> list[Box]:
    """Boxes (x0, y0, x1, y1), pixels, of text-like lines outside the protected central box.

    A text line is a group of thin strokes whose gradient exceeds an ``edge_thresholds`` value,
    joined horizontally, of text-like height, not too wide, with a flat background ring around
    it. Large components and components touching the central box are never returned. Inside
    large components, long straight lines (frames, rulers), which can glue text lines to each
    other or to the image, are cut out and the pieces looked at again.
    """
    p = params
    h, w = pixels.shape
    grad = _gradient(pixels)
    protect = central_box((h, w), p.central_fraction)
    flat = cv2.integral((grad <= 2).astype(np.uint8))  # summed-area table of locally flat pixels
    out: list[Box] = []
    for threshold in p.edge_thresholds:
        strokes, labels, stats = _components(grad, threshold, p)
        out.extend(_text_boxes(pixels, strokes, stats, protect, p, flat))
        large = _large_labels(stats, p, w)
        if large.any():
            lines = _long_lines(strokes) & large[labels]
            if lines.any():
                strokes2, _, stats2 = _components(grad, threshold, p, exclude=lines)
                out.extend(_text_boxes(pixels, strokes2, stats2, protect, p, flat))
    return merge_boxes(out)


def merge_boxes(boxes: list[Box]) -> list[Box]:
    """Overlapping boxes replaced by their union until none overlap (few boxes: quadratic is fine)."""
    out = list(boxes)
    merged = True
    while merged:
        merged = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if _overlaps(a, b):
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out


def _text_boxes(pixels: NDArray[np.uint8], strokes: NDArray[np.uint8], stats: NDArray[np.int32], protect: Box,
                p: TextParams, flat: NDArray[np.int32]) -> list[Box]:
    """The text-like components among ``stats`` (see :func:`find_text_boxes`)."""
    w = pixels.shape[1]
    out: list[Box] = []
    sw, sh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    sized = (sh >= p.min_height_px) & (sw >= 6) & (sh <= p.max_height_px) & (sw <= p.max_width_fraction * w)
    sized[0] = False  # label 0 is the background
    for row in stats[sized].tolist():
        x, y, bw, bh, _area = row
        box = (x, y, x + bw, y + bh)
        if _overlaps(box, protect):
            continue
        if bw < 0.3 * bh:  # a vertical bar (calliper, sector edge), not a character
            continue
        if float(strokes[y:y + bh, x:x + bw].mean()) < 0.08:  # a thin outline, not strokes
            continue
        if not _flat_background(pixels, box, p.background_mad, p.min_contrast, p.min_exact_background) \
                and not _text_on_screen(pixels, box, p.min_contrast, flat):
            continue
        out.append(box)
    return out


def _side_boxes(box: Box, shape_hw: tuple[int, int], corner_px: int = 0) -> list[Box]:
    """The sides (x0, y0, x1, y1) of the ring 2-5 px around ``box`` that lie inside the image:
    top, bottom, left, right; the top and bottom sides reach ``corner_px`` beyond the box."""
    h, w = shape_hw
    x0, y0, x1, y1 = box
    cx0, cx1 = max(0, x0 - corner_px), min(w, x1 + corner_px)
    sides = [(cx0, max(0, y0 - 5), cx1, y0 - 2), (cx0, y1 + 2, cx1, min(h, y1 + 5)),
             (max(0, x0 - 5), y0, x0 - 2, y1), (x1 + 2, y0, min(w, x1 + 5), y1)]
    return [b for b in sides if b[2] > b[0] and b[3] > b[1]]


def _near(values: NDArray[np.integer], level: int, tol: int = 2) -> NDArray[np.bool_]:
    """Which ``values`` (grey levels) lie within ``tol`` of ``level``."""
    return np.abs(values.astype(np.int16) - level) <= tol


def _commonest_level(pixels: NDArray[np.uint8]) -> int:
    """The commonest grey level of ``pixels`` (of a whole screen: its background)."""
    return int(np.bincount(pixels.ravel()).argmax())


def _text_on_screen(pixels: NDArray[np.uint8], box: Box, min_contrast: int, flat: NDArray[np.int32],
                    min_background: float = 0.5, min_glyph_levels: float = 0.4) -> bool:
    """Second chance for a dense text block that touches tissue or a frame on one side (so its
    ring is not flat all round): True if every side of the 3 px ring inside the image but one
    is flat (half its pixels with a 3x3 gradient <= 2, read from the summed-area table ``flat``)
    and lies (60 % of its pixels within 2 grey levels) on the ring's most common grey level, at
    least ``min_background`` of the box itself is that level too (letters are sparse on
    their background; a speck of tissue is not), the box holds a pixel ``min_contrast``
    levels away from it, and its three commonest non-background grey levels make up at least
    ``min_glyph_levels`` of its non-background pixels, as a bitmap font's do (0.47-0.49 on
    pydicom's examples_rgb_color.dcm; tissue next to a fan's dark surround on HC18: at most
    0.34). Anti-aliased blocks glued to tissue fail this test and are left to OCR."""
    x0, y0, x1, y1 = box
    side_boxes = _side_boxes(box, pixels.shape)
    if len(side_boxes) < 2:
        return False
    # quick rejection (most candidates are specks of tissue): all sides but one must be locally
    # flat on half their pixels, read from the summed-area table ``flat`` of gradient <= 2
    flat_sides = sum(
        int(flat[y1_, x1_] - flat[y0_, x1_] - flat[y1_, x0_] + flat[y0_, x0_]) >= 0.5 * (x1_ - x0_) * (y1_ - y0_)
        for x0_, y0_, x1_, y1_ in side_boxes
    )
    if flat_sides < len(side_boxes) - 1:
        return False
    sides = [pixels[b[1]:b[3], b[0]:b[2]] for b in side_boxes]
    ring = np.concatenate([sd.ravel() for sd in sides])
    bg = _commonest_level(ring)
    if sum(float(_near(sd, bg).mean()) >= 0.6 for sd in sides) < len(sides) - 1:
        return False
    inside = pixels[y0:y1, x0:x1]
    on_bg = _near(inside, bg)
    if float(on_bg.mean()) < min_background:
        return False
    if max(int(inside.max()) - bg, bg - int(inside.min())) < min_contrast:
        return False
    # bitmap letters use a few grey levels; speckled tissue spreads over many
    fg = inside[~on_bg]
    return float(np.sort(np.bincount(fg))[-3:].sum()) >= min_glyph_levels * fg.size


def texture_mask(pixels: NDArray[np.uint8], params: TextParams = DEFAULT_TEXT_PARAMS) -> NDArray[np.bool_]:
    """Pixels of large stroke components (speckled tissue, the skull, frames), dilated by 2 px.

    Long straight lines are taken out of large components first, so text glued to a frame line
    is not counted as texture; the lines themselves are.
    """
    grad = _gradient(pixels)
    threshold = min(params.edge_thresholds)
    w = pixels.shape[1]
    strokes, labels, stats = _components(grad, threshold, params)
    large = _large_labels(stats, params, w)
    lines = _long_lines(strokes) & large[labels]
    if lines.any():
        _, labels, stats = _components(grad, threshold, params, exclude=lines)
        large = _large_labels(stats, params, w)
    m = (large[labels] | lines).astype(np.uint8)
    # letters glued to tissue join its large component, but sit on the screen's background: keep
    # the pixels whose 15x15 neighbourhood is at least 20 % background (the image's commonest grey
    # level +-2) out of the mask, so OCR still sees them; speckled tissue has almost none
    near_bg = _near(pixels, _commonest_level(pixels)).astype(np.float32)
    m[cv2.blur(near_bg, (15, 15)) >= 0.2] = 0
    return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))).astype(bool)


def _large_labels(stats: NDArray[np.int32], p: TextParams, width: int) -> NDArray[np.bool_]:
    """Per label, whether its component is too large for text (label 0, the background: False)."""
    tall = stats[:, cv2.CC_STAT_HEIGHT] > p.max_height_px
    large = tall | (stats[:, cv2.CC_STAT_WIDTH] > p.max_width_fraction * width)
    large[0] = False
    return np.asarray(large, bool)


def _flat_background(pixels: NDArray[np.uint8], box: Box, max_mad: float, min_contrast: int = 0,
                     min_exact: float = 0.0, all_sides: bool = True) -> bool:
    """True if ``box`` sits on a flat background, as screen text does: the ring 2-5 px around it
    has a median absolute deviation of at most ``max_mad`` grey levels and at least ``min_exact``
    of it equals its median exactly; with ``all_sides``, on each of its four sides (those inside
    the image) at least half the pixels lie within 2 grey levels of the ring's median; and the
    box holds a pixel ``min_contrast`` levels above or below that median.
    A bright speck on an image edge has tissue on one side and fails ``all_sides``."""
    x0, y0, x1, y1 = box
    flat = [pixels[b[1]:b[3], b[0]:b[2]].astype(np.int16).ravel() for b in _side_boxes(box, pixels.shape, 2)]
    if not flat or sum(sd.size for sd in flat) < 8:
        return True  # the box fills the image: nothing around it to judge
    vals = np.concatenate(flat)
    if min_exact > 0.5:
        # more than half the ring on one grey level: that level is the median and the MAD is 0,
        # so one histogram decides (the common case, ~200 candidate boxes per image)
        counts = np.bincount(vals)
        if int(counts.max()) / vals.size < min_exact:
            return False
        med = float(counts.argmax())
    else:
        med = float(np.median(vals))
        if float(np.median(np.abs(vals - med))) > max_mad or float((vals == med).mean()) < min_exact:
            return False
    inside = pixels[y0:y1, x0:x1]
    if max(float(inside.max()) - med, med - float(inside.min())) < min_contrast:
        return False
    return not all_sides or all(float((np.abs(sd - med) <= 2).mean()) >= 0.5 for sd in flat)


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
            x0, y0, x1, y1 = _guarded(_grow(b, params.margin_px, (h, w)), params, (h, w))
            px[y0:y1, x0:x1] = 0
        n_boxes += len(boxes)
        if not boxes:
            break
    notes.append(f"text_boxes={n_boxes}")
    if ocr:
        words = ocr_word_boxes(px, params=params, min_confidence=ocr_min_confidence)
        for b in words:
            x0, y0, x1, y1 = _guarded(_grow(b, params.margin_px, (h, w)), params, (h, w))
            px[y0:y1, x0:x1] = 0
        notes.append(f"ocr_boxes={len(words)}")
    return replace(image, pixels=px, notes=(*image.notes, "deid: " + " ".join(notes)))


def _guarded(box: Box, params: TextParams, shape_hw: tuple[int, int]) -> Box:
    """Shrink a blanking box so it stays clear of the protected central box."""
    x0, y0, x1, y1 = box
    c = central_box(shape_hw, params.central_fraction)
    if not _overlaps(box, c):
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


# --------------------------------------------------------------------------- OCR


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
    bg = _commonest_level(pixels)
    flat = pixels.copy()
    flat[texture_mask(pixels, params)] = 0  # speckle only slows Tesseract down and yields garbage words
    out: list[Box] = []
    for text, conf, box in ocr_words(flat, ocr_bands((h, w), params)):
        if conf < min_confidence or sum(ch.isalnum() for ch in text) < 2:
            continue
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        if box[3] - box[1] > params.max_height_px * 1.5 or _overlaps(box, protect):
            continue
        # a "word" read in tissue has no flat ring (a sure word, 3+ characters at confidence 80+,
        # may sit in a dense text block or touch the image, so its ring is not asked to be flat)
        sure = conf >= 80 and sum(ch.isalnum() for ch in text) >= 3
        if not sure and not _flat_background(pixels, box, params.background_mad, min_exact=0.5, all_sides=False):
            continue
        # screen text sits on the screen's background: a "word" box with less than 30 % of it
        # is speckle Tesseract made sense of (seen near the skull on HC18 images)
        if float(_near(pixels[box[1]:box[3], box[0]:box[2]], bg).mean()) < 0.3:
            continue
        out.append(box)
    return out


# --------------------------------------------------------------------------- DICOM header

#: DeidentificationMethodCodeSequence codes (DICOM CID 7050).
BASIC_PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
CLEAN_PIXEL_CODE = ("113101", "DCM", "Clean Pixel Data Option")


def deidentify_dataset(ds: Dataset, *, pixels_cleaned: bool = False) -> Dataset:
    """A de-identified copy of ``ds`` (the input is not changed).

    Applies the DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile with the
    ``dicom-anonymizer`` package (its action table comes from the standard): identifying
    elements are removed (X), emptied (Z) or replaced by dummies (D), UIDs are replaced
    consistently, private tags are removed. Any Person Name left anywhere (sequences included)
    is emptied. Sets Patient Identity Removed (0012,0062) = YES and fills De-identification
    Method (0012,0063) and its Code Sequence (0012,0064) with 113100 (and 113101 when
    ``pixels_cleaned``). Burned In Annotation (0028,0301) becomes NO only when
    ``pixels_cleaned`` is true, i.e. the caller has blanked the burned-in text.
    """
    import contextlib
    import copy
    import io

    from dicomanonymizer import anonymize_dataset
    from pydicom.dataset import Dataset as _Dataset

    out = copy.deepcopy(ds)
    with contextlib.redirect_stdout(io.StringIO()):  # the library prints about absent tags
        anonymize_dataset(out, delete_private_tags=True)

    def _blank_pn(dataset: Any, elem: Any) -> None:
        if elem.VR == "PN" and elem.value not in (None, ""):
            elem.value = ""

    out.walk(_blank_pn)
    if hasattr(out, "file_meta") and "SOPInstanceUID" in out:
        out.file_meta.MediaStorageSOPInstanceUID = out.SOPInstanceUID
    out.PatientIdentityRemoved = "YES"
    codes = [BASIC_PROFILE_CODE, *([CLEAN_PIXEL_CODE] if pixels_cleaned else [])]
    out.DeidentificationMethod = "fetalhc: PS3.15 basic profile" + (", clean pixel data" if pixels_cleaned else "")
    items = []
    for value, scheme, meaning in codes:
        item = _Dataset()
        item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
        items.append(item)
    out.DeidentificationMethodCodeSequence = items
    if pixels_cleaned:
        out.BurnedInAnnotation = "NO"
    return out


# --------------------------------------------------------------------------- files


def deidentify_file(in_path: str | Path, out_path: str | Path, *, ocr: bool = False) -> Path:
    """Write a de-identified copy of an image file; returns ``out_path``.

    ``.png`` output: the (first frame's) grey pixels with burned-in text blanked, no metadata.
    ``.dcm``/``.dicom`` output (DICOM input only): every frame cleaned, the header de-identified
    by :func:`deidentify_dataset`; colour input is written as uncompressed RGB, grey input as
    8-bit MONOCHROME2. The file is written to a temporary name and moved into place
    (``os.replace``), so a failure never leaves a half-written output.
    Raises :class:`fetalhc.image.ImageLoadError` for unreadable input, ``ValueError`` for an
    unsupported output suffix.
    """
    from fetalhc.image import is_dicom, load_image

    src, dst = Path(in_path), Path(out_path)
    suffix = dst.suffix.lower()
    if suffix not in (".png", ".dcm", ".dicom"):
        raise ValueError(f"{dst}: output must end in .png, .dcm or .dicom")
    src_is_dicom = src.is_file() and is_dicom(src)
    if suffix != ".png":
        if not src_is_dicom:
            raise ValueError(f"{dst}: DICOM output needs DICOM input; {src} is not DICOM")
        _write_dicom(src, dst, ocr)
        return dst
    image = load_image(src)
    clean = deidentify_pixels(image, ocr=ocr)

    def write(tmp: Path) -> None:
        ok, buf = cv2.imencode(".png", clean.pixels)
        if not ok:
            raise OSError(f"{dst}: PNG encoding failed")
        tmp.write_bytes(buf.tobytes())

    _atomic_write(dst, write)
    return dst


def _write_dicom(src: Path, dst: Path, ocr: bool) -> None:
    """Clean every frame of ``src`` and write a de-identified uncompressed DICOM to ``dst``."""
    import pydicom
    from pydicom.pixels import iter_pixels
    from pydicom.uid import ExplicitVRLittleEndian

    from fetalhc import dicom
    from fetalhc.image import ImageLoadError

    header = dicom._checked_header(src)
    n = dicom.number_of_frames(src)
    photometric = str(header.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    colour = photometric not in ("MONOCHROME1", "MONOCHROME2")
    frames: list[NDArray[np.uint8]] = []
    try:
        for arr in iter_pixels(dicom._pixel_source(src, header)):
            grey = dicom.frame_to_grey(arr, header, str(src))
            geo = dicom.ultrasound_geometry(header, grey.shape)
            clean = deidentify_pixels(UltrasoundImage(grey, regions=geo.regions), ocr=ocr).pixels
            if not colour:
                frames.append(clean)
                continue
            rgb = _frame_rgb(arr, header, photometric)
            rgb[clean != grey] = 0
            frames.append(rgb)
    except ImageLoadError:
        raise
    except Exception as e:  # noqa: BLE001 - decoders raise many types
        raise ImageLoadError(f"{src}: cannot decode the pixel data ({dicom._safe_reason(e)})") from None
    if len(frames) != n:
        raise ImageLoadError(f"{src}: pixel data holds {len(frames)} of {n} frames")
    ds = pydicom.dcmread(src, stop_before_pixels=True)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for key in ("RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
                "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
                "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
                "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
                "SegmentedBluePaletteColorLookupTableData", "PaletteColorLookupTableUID", "ICCProfile"):
        if key in ds:
            del ds[key]
    stack = np.stack(frames) if n > 1 else frames[0]
    ds.set_pixel_data(stack, "RGB" if colour else "MONOCHROME2", 8)
    out = deidentify_dataset(ds, pixels_cleaned=True)
    _atomic_write(dst, lambda tmp: out.save_as(tmp, enforce_file_format=True))


def _frame_rgb(arr: NDArray[Any], ds: Any, photometric: str) -> NDArray[np.uint8]:
    """A decoded colour frame as RGB uint8 (palette through its LUT, 16 bit scaled down)."""
    from fetalhc.dicom import _scale_to_uint8, palette_to_rgb8

    a = np.asarray(arr)
    if photometric == "PALETTE COLOR" and a.ndim == 2:
        return palette_to_rgb8(a, ds)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    return np.ascontiguousarray(_scale_to_uint8(a, ds)).copy()


def _atomic_write(out_path: Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then move the temporary file onto ``out_path`` atomically."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".deid-", suffix=out_path.suffix, dir=out_path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = [
    "TextParams",
    "central_box",
    "deidentify_dataset",
    "deidentify_file",
    "deidentify_pixels",
    "find_text_boxes",
    "ocr_bands",
    "ocr_word_boxes",
    "ocr_words",
    "tesseract_available",
    "texture_mask",
]
