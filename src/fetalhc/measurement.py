"""Stage 6-7: the ``measure`` step. From one :class:`~fetalhc.segmentation.Segmentation` it
computes, once, everything the later stages need: the head mask, the clinical ellipse, the
patent's pixel-count length, the unbiased contour length, the HC uncertainty band, the per-crop
HCs, the edge confidence and the mask's geometry, in pixels, and converts lengths to millimetres
once. :mod:`fetalhc.clinical` and :mod:`fetalhc.quality` read this value and never recompute it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.boundary import iso_contour_xy, pixel_count_length_px, polyline_length_px
from fetalhc.conformal import IntervalCalibration, interval_px
from fetalhc.crops import CropBox
from fetalhc.ellipse import Ellipse, fit_ellipse_points
from fetalhc.fuse import binarize, binarize_window
from fetalhc.outline import ellipse_from_probability
from fetalhc.segmentation import Segmentation


@dataclass(frozen=True)
class Measurement:
    """The geometry of one head. ``_px``: pixels of the input image; ``_mm``: millimetres (``None``
    without a pixel size). Fields are ``None`` where they could not be measured.

    Attributes:
        image_shape_hw: (rows, columns) of the image.
        pixel_size_mm: the pixel size used for every ``_mm`` field.
        pixel_size_source: where it came from ("user", "csv", "dicom:...", "none").
        head_mask: the final head mask (H, W) uint8 0/1 (all zeros when no head was found).
        edge_confidence: mean certainty |2p - 1| (0..1) of the fused probability within
            ``edge_band_px`` of the network mask's edge (before the mask may be discarded for it).
        ellipse: the clinical ellipse fitted to the mask's sub-pixel edge.
        hc_px: its Ramanujan perimeter (the clinical HC).
        patent_pixel_count_hc_px: the patent's length: number of pixels of dilation minus mask
            (biased: about x0.90 of the perimeter with the cross element, x1.27 with the square).
        contour_length_px: unbiased length of the mask's own edge (marching squares).
        hc_band_px: ellipse HC of the outline at the low band probability minus that at the high one.
        crop_hc_px: ellipse HC of each crop's own mask (a flipped crop averaged with its twin first).
        ellipse_outside_px: how far the ellipse reaches beyond the image's pixel centres (0 inside).
        fit_iou: intersection over union of the mask and the rasterised ellipse.
        hc_low_px, hc_high_px: the 90 % conformal interval for the reference HC
            (:mod:`fetalhc.conformal`), when a calibration was given.
    """

    image_shape_hw: tuple[int, int]
    pixel_size_mm: float | None
    pixel_size_source: str
    head_mask: NDArray[np.uint8] = field(repr=False, compare=False)
    edge_confidence: float | None = None
    ellipse: Ellipse | None = None
    hc_px: float | None = None
    patent_pixel_count_hc_px: float | None = None
    contour_length_px: float | None = None
    hc_band_px: float | None = None
    crop_hc_px: tuple[float, ...] = ()
    ellipse_outside_px: float | None = None
    fit_iou: float | None = None
    hc_low_px: float | None = None
    hc_high_px: float | None = None

    @property
    def mask_area_px(self) -> int:
        """Head-mask pixels."""
        return int(np.count_nonzero(self.head_mask))

    @property
    def border_contact_px(self) -> int:
        """Head-mask pixels on the outermost image rows and columns."""
        return border_contact_px(self.head_mask)

    def mm(self, length_px: float | None) -> float | None:
        """A length in pixels as millimetres (``None`` without a pixel size or a length)."""
        return None if length_px is None or self.pixel_size_mm is None else length_px * self.pixel_size_mm

    @property
    def hc_mm(self) -> float | None:
        """The clinical HC in millimetres."""
        return self.mm(self.hc_px)

    @property
    def patent_pixel_count_hc_mm(self) -> float | None:
        return self.mm(self.patent_pixel_count_hc_px)

    @property
    def contour_length_mm(self) -> float | None:
        return self.mm(self.contour_length_px)

    @property
    def hc_band_mm(self) -> float | None:
        return self.mm(self.hc_band_px)

    @property
    def hc_low_mm(self) -> float | None:
        return self.mm(self.hc_low_px)

    @property
    def hc_high_mm(self) -> float | None:
        return self.mm(self.hc_high_px)

    @property
    def ofd_mm(self) -> float | None:
        """Occipito-frontal diameter: the ellipse's major axis (outer to outer), mm."""
        return None if self.ellipse is None or self.hc_mm is None else self.mm(2.0 * self.ellipse.semi_axis_a_px)

    @property
    def bpd_mm(self) -> float | None:
        """Biparietal diameter: the ellipse's minor axis (outer to outer), mm."""
        return None if self.ellipse is None or self.hc_mm is None else self.mm(2.0 * self.ellipse.semi_axis_b_px)


def measure(seg: Segmentation, pixel_size_mm: float | None, pixel_size_source: str = "none", *, element: str = "cross",
            no_head_edge_confidence: float = 0.2, edge_band_px: int = 7,
            band_thresholds: tuple[float, float] = (0.2, 0.8), outline: str = "mask", robust_fit: bool = False,
            interval: IntervalCalibration | None = None) -> Measurement:
    """Measure the head in ``seg`` (see :class:`Measurement`).

    A mask whose edge confidence is below ``no_head_edge_confidence`` is a soft blob with no sharp
    edge anywhere: the network saw no head, and the mask is discarded (``head_mask`` all zeros).
    ``element`` is the structuring element of the patent's boundary ("cross" or "square").
    ``outline`` "mask" fits the clinical ellipse to the smoothed mask's edge; "probability" to the
    0.5 iso-line of the fused probability (:mod:`fetalhc.outline`; ``robust_fit`` trims outlying
    points), falling back to the mask's edge. The patent's length and the contour length always
    come from the mask. With an ``interval`` calibration, the interval is scaled by the HC band.
    """
    shape_hw = (int(seg.mask.shape[0]), int(seg.mask.shape[1]))
    mask = seg.mask
    conf: float | None = None
    if mask.any():
        conf = boundary_confidence(seg.probability, mask, edge_band_px)
        if conf < no_head_edge_confidence:
            mask = np.zeros_like(mask)
    m = Measurement(shape_hw, pixel_size_mm, pixel_size_source, mask, edge_confidence=conf)
    if not mask.any():
        return m
    m = replace(m, crop_hc_px=tuple(crop_hcs_px(seg.boxes, seg.crop_probs)),
                hc_band_px=hc_band_px(seg.probability, band_thresholds))
    pts = iso_contour_xy(mask)
    try:
        mask_ell: Ellipse | None = fit_ellipse_points(pts)
        m = replace(m, patent_pixel_count_hc_px=pixel_count_length_px(mask, element),
                    contour_length_px=polyline_length_px(pts))
    except ValueError:
        mask_ell = None
    ell = ellipse_from_probability(seg.probability, mask, robust_fit) if outline == "probability" else None
    ell = ell or mask_ell
    if ell is None:
        return m
    m = replace(m, ellipse=ell, hc_px=ell.perimeter_px, ellipse_outside_px=ellipse_outside_px(ell, shape_hw),
                fit_iou=mask_ellipse_iou(mask, ell) if ell.semi_axis_b_px > 0 else None)
    if interval is not None and m.hc_px is not None and m.hc_band_px is not None:
        lo, hi = interval_px(m.hc_px, m.hc_band_px, interval)
        m = replace(m, hc_low_px=lo, hc_high_px=hi)
    return m


def measure_ellipse(ellipse: Ellipse, image_shape_hw: tuple[int, int], pixel_size_mm: float | None,
                    pixel_size_source: str = "user") -> Measurement:
    """The measurement of a given ellipse (pixels of an image of ``image_shape_hw``), e.g. one a
    person drew or corrected: its pixel-centre raster is the head mask, so the same checks apply.
    No network output exists for it: no edge confidence, HC band, crop HCs or patent length."""
    h, w = int(image_shape_hw[0]), int(image_shape_hw[1])
    mask = ellipse.rasterize((h, w))
    return Measurement((h, w), pixel_size_mm, pixel_size_source, mask, ellipse=ellipse, hc_px=ellipse.perimeter_px,
                       ellipse_outside_px=ellipse_outside_px(ellipse, (h, w)),
                       fit_iou=mask_ellipse_iou(mask, ellipse) if mask.any() else None)


def boundary_confidence(probability: NDArray[np.floating], mask: NDArray[np.generic], band_px: int = 7) -> float:
    """Mean certainty |2p - 1| (0..1) of ``probability`` in a band of +-``band_px`` pixels around
    the edge of ``mask``; 0.0 when the mask has no edge."""
    m = (np.asarray(mask) > 0).astype(np.uint8)
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rows.size == 0:
        return 0.0
    # the band lies within band_px of the mask's bounding box: work on that window only
    h, w = m.shape
    y0, y1 = max(0, rows[0] - band_px - 1), min(h, rows[-1] + band_px + 2)
    x0, x1 = max(0, cols[0] - band_px - 1), min(w, cols[-1] + band_px + 2)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * band_px + 1, 2 * band_px + 1))
    sub = m[y0:y1, x0:x1]
    band = cv2.dilate(sub, k) > cv2.erode(sub, k)
    if not band.any():
        return 0.0
    p = np.asarray(probability)[y0:y1, x0:x1]
    return float(np.abs(2.0 * p[band].astype(np.float64) - 1.0).mean())


def mask_ellipse_iou(mask: NDArray[np.generic], ellipse: Ellipse) -> float:
    """Intersection over union of ``mask`` and ``ellipse`` rasterised on the same grid."""
    m = np.asarray(mask) > 0
    h, w = m.shape
    # both lie inside the union of their bounding boxes: compare on that window only
    r = max(ellipse.semi_axis_a_px, ellipse.semi_axis_b_px) + 2
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    y0, y1 = int(max(0, ellipse.center_y_px - r)), int(min(h, ellipse.center_y_px + r + 2))
    x0, x1 = int(max(0, ellipse.center_x_px - r)), int(min(w, ellipse.center_x_px + r + 2))
    if rows.size:
        y0, y1 = min(y0, int(rows[0])), max(y1, int(rows[-1]) + 1)
        x0, x1 = min(x0, int(cols[0])), max(x1, int(cols[-1]) + 1)
    if y0 >= y1 or x0 >= x1:
        return 0.0
    shifted = replace(ellipse, center_x_px=ellipse.center_x_px - x0, center_y_px=ellipse.center_y_px - y0)
    e = shifted.rasterize((y1 - y0, x1 - x0)) > 0
    sub = m[y0:y1, x0:x1]
    union = np.count_nonzero(sub | e)
    return float(np.count_nonzero(sub & e) / union) if union else 0.0


def ellipse_outside_px(ellipse: Ellipse, shape_hw: tuple[int, int]) -> float:
    """How far (px) the ellipse reaches beyond the image's pixel centres (0 when inside)."""
    h, w = shape_hw
    th = math.radians(ellipse.angle_deg)
    a, b = ellipse.semi_axis_a_px, ellipse.semi_axis_b_px
    half_w = math.hypot(a * math.cos(th), b * math.sin(th))  # half extent along x
    half_h = math.hypot(a * math.sin(th), b * math.cos(th))  # half extent along y
    cx, cy = ellipse.center_x_px, ellipse.center_y_px
    return max(0.0, -(cx - half_w), cx + half_w - (w - 1), -(cy - half_h), cy + half_h - (h - 1))


def border_contact_px(mask: NDArray[np.generic]) -> int:
    """Number of mask pixels on the outermost rows and columns of the image."""
    m = np.asarray(mask) > 0
    frame = np.zeros_like(m)
    frame[0, :] = frame[-1, :] = frame[:, 0] = frame[:, -1] = True
    return int(np.count_nonzero(m & frame))


def crop_hcs_px(boxes: tuple[CropBox, ...] | list[CropBox],
                crop_probs: tuple[NDArray[np.float32], ...] | list[NDArray[np.float32]]) -> list[float]:
    """Ellipse HC (pixels of the input image) of each crop's own mask, for the crops-disagree
    flag. Measured at network resolution, the edge points scaled back to the crop's box; a
    flipped crop is averaged with its unflipped twin first."""
    by_name: dict[str, list[tuple[CropBox, NDArray[np.float32]]]] = {}
    for b, p in zip(boxes, crop_probs, strict=True):
        by_name.setdefault(b.name.removesuffix("_flip"), []).append((b, p[:, ::-1] if b.flip else p))
    out = []
    for items in by_name.values():
        box = items[0][0]
        # the mean of one map is the map itself, value for value
        prob = items[0][1] if len(items) == 1 else np.mean([p for _, p in items], axis=0)
        m = binarize(prob)
        if not m.any():
            continue
        pts = iso_contour_xy(m)
        # network pixel centres -> input-image pixel coordinates inside the box
        sx, sy = box.width_px / prob.shape[1], box.height_px / prob.shape[0]
        pts = np.stack([(pts[:, 0] + 0.5) * sx - 0.5, (pts[:, 1] + 0.5) * sy - 0.5], axis=1)
        try:
            out.append(fit_ellipse_points(pts).perimeter_px)
        except ValueError:
            continue
    return out


def outline_pixels_xy(prob: NDArray[np.floating], threshold: float) -> NDArray[np.float64]:
    """The head outline where ``prob`` crosses ``threshold``: the longest external contour
    (OpenCV, the chain of edge pixel centres) of :func:`~fetalhc.fuse.binarize`'s mask, as (N, 2)
    (x, y) pixels of ``prob``; empty (0, 2) if nothing lies above ``threshold``. Traced on the
    mask's window only and shifted back by whole pixels, so the points are those of the whole map."""
    found = binarize_window(prob, threshold)
    if found is None:
        return np.zeros((0, 2))
    (x0, y0), m = found
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE, offset=(x0, y0))
    if not contours:
        return np.zeros((0, 2))
    return np.asarray(max(contours, key=len)[:, 0, :], np.float64)


def ellipse_hc_px(prob: NDArray[np.floating], threshold: float) -> float | None:
    """Ellipse HC (pixels) of the head outline where ``prob`` crosses ``threshold``; None if
    nothing lies above it or no ellipse fits.

    The outline (:func:`outline_pixels_xy`) is the chain of edge pixel centres, about half a
    pixel inside the edge: fast, and the offset cancels in :func:`hc_band_px`'s difference."""
    try:
        return fit_ellipse_points(outline_pixels_xy(prob, threshold)).perimeter_px
    except ValueError:
        return None


def hc_band_px(prob: NDArray[np.floating], thresholds: tuple[float, float] = (0.2, 0.8)) -> float | None:
    """The HC uncertainty band (pixels of perimeter, not a radial width): the ellipse HC of the
    outline at the low probability threshold minus that at the high one.

    A sharp network edge gives a narrow band (a few pixels of perimeter); an edge the network
    is unsure of (faint or broken skull, shadowing) gives a wide one. None when either outline
    is missing.
    """
    lo, hi = thresholds
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"band thresholds must satisfy 0 < low < high < 1, got {thresholds}")
    outer, inner = ellipse_hc_px(prob, lo), ellipse_hc_px(prob, hi)
    if outer is None or inner is None:
        return None
    return outer - inner
