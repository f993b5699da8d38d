"""Finding burned-in text without OCR: thin high-contrast strokes on a flat background.

Text-like connected components are found with OpenCV morphology and grouped horizontally into
lines; the central head area and every large component are never returned. Boxes are
(x0, y0, x1, y1) in pixels, x1/y1 exclusive; grey levels 0-255.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

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
    """The protected central box (x0, y0, x1, y1) in pixels: the head is assumed to cover it.

    >>> central_box((540, 800))
    (240, 162, 560, 378)
    """
    h, w = shape_hw
    fx, fy = fraction
    x0 = int(round(w * (1 - fx) / 2))
    y0 = int(round(h * (1 - fy) / 2))
    return (x0, y0, w - x0, h - y0)


def overlaps(a: Box, b: Box) -> bool:
    """True if boxes ``a`` and ``b`` (x1/y1 exclusive) share a pixel.

    >>> overlaps((0, 0, 10, 10), (9, 9, 20, 20)), overlaps((0, 0, 10, 10), (10, 0, 20, 10))
    (True, False)
    """
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def grow(box: Box, m: int, shape_hw: tuple[int, int]) -> Box:
    """``box`` grown by ``m`` pixels on every side, clipped to an image of ``shape_hw`` pixels.

    >>> grow((2, 2, 8, 8), 3, (10, 10))
    (0, 0, 10, 10)
    """
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
    labels, stats = label_boxes(joined)
    return strokes, labels, stats


def label_boxes(binary: NDArray[np.uint8]) -> tuple[NDArray[np.int32], NDArray[np.int32]]:
    """8-connected labels of ``binary`` (non-zero = foreground) and, per label, the bounding box
    columns of ``cv2.connectedComponentsWithStats`` (x, y, width, height in pixels; the area
    column and the background's row 0 are left 0: nothing here reads them). The same labels as
    OpenCV's; its statistics pass costs more than labels and boxes from
    ``scipy.ndimage.find_objects`` (13.3 against about 4.8 + 3.9 ms for the four calls per HC18 image, one
    thread: ``benchmarks/profile_pipeline.py --threads 1``, docs/speed.md).

    >>> labels, stats = label_boxes(np.array([[1, 1, 0, 0], [0, 0, 0, 1]], np.uint8))
    >>> stats[1:, :4].tolist()
    [[0, 0, 2, 1], [3, 1, 1, 1]]
    """
    n, labels = cv2.connectedComponents(binary, connectivity=8, ltype=cv2.CV_32S)
    stats = np.zeros((n, 5), np.int32)
    for i, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is not None:
            rows, cols = box
            stats[i, :4] = (cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start)
    return labels, stats


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
    # a box's background verdict depends on the pixels alone, and the same boxes come back from
    # every labelling below (most components are not touched by the long lines): judge each once
    background: dict[Box, bool] = {}
    out: list[Box] = []
    for threshold in p.edge_thresholds:
        strokes, labels, stats = _components(grad, threshold, p)
        out.extend(_text_boxes(pixels, strokes, stats, protect, p, flat, background))
        large = _large_labels(stats, p, w)
        if large.any():
            lines = _long_lines(strokes) & large[labels]
            if lines.any():
                strokes2, _, stats2 = _components(grad, threshold, p, exclude=lines)
                out.extend(_text_boxes(pixels, strokes2, stats2, protect, p, flat, background))
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
                if overlaps(a, b):
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    merged = True
                    break
            if merged:
                break
    return out


def _text_boxes(pixels: NDArray[np.uint8], strokes: NDArray[np.uint8], stats: NDArray[np.int32], protect: Box,
                p: TextParams, flat: NDArray[np.int32], background: dict[Box, bool] | None = None) -> list[Box]:
    """The text-like components among ``stats`` (see :func:`find_text_boxes`). ``background``
    remembers each box's background verdict (:func:`_on_text_background`) for later calls on the
    same ``pixels``."""
    w = pixels.shape[1]
    out: list[Box] = []
    sw, sh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    sized = (sh >= p.min_height_px) & (sw >= 6) & (sh <= p.max_height_px) & (sw <= p.max_width_fraction * w)
    sized[0] = False  # label 0 is the background
    for row in stats[sized].tolist():
        x, y, bw, bh, _area = row
        box = (x, y, x + bw, y + bh)
        if overlaps(box, protect):
            continue
        if bw < 0.3 * bh:  # a vertical bar (calliper, sector edge), not a character
            continue
        if float(strokes[y:y + bh, x:x + bw].mean()) < 0.08:  # a thin outline, not strokes
            continue
        ok = None if background is None else background.get(box)
        if ok is None:
            ok = _on_text_background(pixels, box, p, flat)
            if background is not None:
                background[box] = ok
        if not ok:
            continue
        out.append(box)
    return out


def _on_text_background(pixels: NDArray[np.uint8], box: Box, p: TextParams, flat: NDArray[np.int32]) -> bool:
    """True if ``box`` sits on a background as text does: flat all round (:func:`flat_background`)
    or, for a dense block, on a screen's background (:func:`_text_on_screen`). A function of the
    pixels, the box (pixels) and ``flat`` only."""
    return flat_background(pixels, box, p.background_mad, p.min_contrast, p.min_exact_background) \
        or _text_on_screen(pixels, box, p.min_contrast, flat)


def _side_boxes(box: Box, shape_hw: tuple[int, int], corner_px: int = 0) -> list[Box]:
    """The sides (x0, y0, x1, y1) of the ring 2-5 px around ``box`` that lie inside the image:
    top, bottom, left, right; the top and bottom sides reach ``corner_px`` beyond the box."""
    h, w = shape_hw
    x0, y0, x1, y1 = box
    cx0, cx1 = max(0, x0 - corner_px), min(w, x1 + corner_px)
    sides = [(cx0, max(0, y0 - 5), cx1, y0 - 2), (cx0, y1 + 2, cx1, min(h, y1 + 5)),
             (max(0, x0 - 5), y0, x0 - 2, y1), (x1 + 2, y0, min(w, x1 + 5), y1)]
    return [b for b in sides if b[2] > b[0] and b[3] > b[1]]


def near_level(values: NDArray[np.integer], level: int, tol: int = 2) -> NDArray[np.bool_]:
    """Which ``values`` (grey levels) lie within ``tol`` of ``level``.

    >>> near_level(np.array([0, 8, 10, 13], np.uint8), 10).tolist()
    [False, True, True, False]
    """
    return np.abs(values.astype(np.int16) - level) <= tol


def commonest_level(pixels: NDArray[np.uint8]) -> int:
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
    bg = commonest_level(ring)
    if sum(float(near_level(sd, bg).mean()) >= 0.6 for sd in sides) < len(sides) - 1:
        return False
    inside = pixels[y0:y1, x0:x1]
    on_bg = near_level(inside, bg)
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
    near_bg = near_level(pixels, commonest_level(pixels)).astype(np.float32)
    m[cv2.blur(near_bg, (15, 15)) >= 0.2] = 0
    return cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))).astype(bool)


def _large_labels(stats: NDArray[np.int32], p: TextParams, width: int) -> NDArray[np.bool_]:
    """Per label, whether its component is too large for text (label 0, the background: False)."""
    tall = stats[:, cv2.CC_STAT_HEIGHT] > p.max_height_px
    large = tall | (stats[:, cv2.CC_STAT_WIDTH] > p.max_width_fraction * width)
    large[0] = False
    return np.asarray(large, bool)


def flat_background(pixels: NDArray[np.uint8], box: Box, max_mad: float, min_contrast: int = 0,
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
