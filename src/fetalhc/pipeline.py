"""The measurement pipeline: load -> de-identify -> crops -> segment -> fuse -> measure ->
clinical read-out -> quality flags. Each arrow is a plain value; each stage lives in its
own module and is tested alone."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc import clinical, conformal, quality
from fetalhc.boundary import iso_contour_xy, pixel_count_length_px, polyline_length_px
from fetalhc.clinical import add_flag
from fetalhc.crops import CropBox, CropMode, crop_boxes, extract_crop
from fetalhc.deid import deidentify_pixels
from fetalhc.ellipse import Ellipse, fit_ellipse_points
from fetalhc.fuse import binarize, fuse_probabilities
from fetalhc.image import UltrasoundImage, load_image, to_grey_uint8
from fetalhc.outline import ellipse_from_probability
from fetalhc.results import MeasureResult
from fetalhc.segment import Segmenter
from fetalhc.zoom import zoom_pass


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the measurement pipeline.

    Attributes:
        crop_mode: "corners" (the patent's four corner crops), "full" or "corners+full".
        q: corner crop scale (the patent's Q), 0 < q <= 1.
        flips: also segment each crop flipped left-right and average.
        threshold: probability threshold of the fused map.
        deidentify: blank burned-in text before anything else sees the image.
        deid_ocr: also read text with Tesseract and blank what it finds (slower; see deid).
        element: structuring element of the patent's boundary ("cross" or "square").
        min_edge_confidence: below this mean certainty |2p - 1| along the mask's edge the
            mask is discarded and the image reported as "no head found" (calibrated on the
            validation split: see README).
        band_thresholds: (low, high) head probabilities whose outlines bound the HC
            uncertainty band ``hc_band_mm`` (see :func:`hc_band_px`).
    """

    crop_mode: str = CropMode.CORNERS.value
    q: float = 0.9
    flips: bool = False
    threshold: float = 0.5
    deidentify: bool = True
    deid_ocr: bool = False
    element: str = "cross"
    min_edge_confidence: float = 0.2
    band_thresholds: tuple[float, float] = (0.2, 0.8)
    # --- issue 9 (accuracy and intervals); see docs/acc-notes.md ---
    #: zoom pass after the crops (fetalhc.zoom): box margin, least image px per network px,
    #: weight of the zoom in the fused map (1 = replace), and a flipped twin of the zoom pass
    zoom: bool = True
    zoom_margin: float = 0.12
    zoom_min_scale: float = 1.0
    zoom_weight: float = 0.5
    zoom_flip: bool = False
    #: "probability": ellipse fitted to the 0.5 iso-line of the fused probability (fetalhc.outline);
    #: "mask": to the smoothed binary mask (before issue 9)
    outline: str = "probability"
    robust_fit: bool = True
    #: 90 % conformal interval and its review limit, from the calibration JSON beside the model
    interval: bool = True

    def __post_init__(self) -> None:
        CropMode(self.crop_mode)
        if not 0.0 < self.q <= 1.0:
            raise ValueError(f"q must lie in (0, 1], got {self.q}")
        lo, hi = self.band_thresholds
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(f"band thresholds must satisfy 0 < low < high < 1, got {self.band_thresholds}")
        if self.outline not in ("probability", "mask"):
            raise ValueError(f"outline must be 'probability' or 'mask', got {self.outline!r}")


@dataclass
class Segmentation:
    """Output of the segment + fuse stages for one image (all arrays of the image's size)."""

    probability: NDArray[np.float32]
    mask: NDArray[np.uint8]
    boxes: list[CropBox]
    crop_probs: list[NDArray[np.float32]]


class Pipeline:
    """Measure head circumference on images with one loaded model.

    >>> pipe = Pipeline()                                   # doctest: +SKIP
    >>> pipe.measure("010_HC.png", pixel_size_mm=0.12).hc_mm  # doctest: +SKIP
    """

    def __init__(self, model_path: str | Path | None = None, config: PipelineConfig | None = None,
                 threads: int = 2) -> None:
        self.config = config or PipelineConfig()
        self.segmenter = Segmenter(model_path, threads=threads)
        self.interval = load_interval(self.segmenter.info.path) if self.config.interval else None

    def with_config(self, config: PipelineConfig) -> Pipeline:
        """A pipeline with other settings that shares this one's loaded model."""
        other = copy.copy(self)
        other.config = config
        return other

    def segment(self, pixels: NDArray[np.uint8]) -> Segmentation:
        """Crops -> network -> fused probability -> largest filled component."""
        cfg = self.config
        h, w = pixels.shape
        boxes = crop_boxes(w, h, cfg.crop_mode, cfg.q, cfg.flips)
        crops = np.stack([extract_crop(pixels, b, self.segmenter.input_hw) for b in boxes])
        probs = list(self.segmenter.predict(crops))
        fused = fuse_probabilities(probs, boxes, (h, w))
        if cfg.zoom:  # issue 9: one more pass on the head's box, nearer the image's own scale
            fused, _ = zoom_pass(pixels, fused, binarize(fused, cfg.threshold), self.segmenter.predict,
                                 self.segmenter.input_hw, cfg.zoom_margin, cfg.zoom_min_scale, cfg.zoom_weight,
                                 cfg.zoom_flip)
        return Segmentation(fused, binarize(fused, cfg.threshold), boxes, probs)

    def prepare(self, image: UltrasoundImage) -> UltrasoundImage:
        """Stage 2: the de-identified image every later stage (and every output) sees."""
        return deidentify_pixels(image, ocr=self.config.deid_ocr) if self.config.deidentify else image

    def run(self, image: UltrasoundImage, ga_weeks: float | None = None) -> MeasureResult:
        """Measure one loaded image. Never raises for a poor image: problems become flags."""
        return self.run_prepared(self.prepare(image), ga_weeks)

    def run_prepared(self, image: UltrasoundImage, ga_weeks: float | None = None) -> MeasureResult:
        """Measure an image that :meth:`prepare` already de-identified."""
        cfg = self.config
        seg = self.segment(image.pixels)
        res = MeasureResult(file=image.name, pixel_size_mm=image.pixel_size_mm,
                            pixel_size_source=image.pixel_size_source,
                            crop_mode=cfg.crop_mode + ("+flips" if cfg.flips else ""))
        res.probability, res.mask = seg.probability, seg.mask
        res.flags.extend(f"source_note: {n}" for n in image.notes if not n.startswith("deid:"))
        if seg.mask.any():
            res.mean_confidence = quality.boundary_confidence(seg.probability, seg.mask)
            if res.mean_confidence < cfg.min_edge_confidence:
                # a soft blob with no sharp edge anywhere: the network saw no head
                seg.mask = np.zeros_like(seg.mask)
                res.mask = seg.mask
        if seg.mask.any():
            measure_mask(res, seg.mask, cfg.element)
            res.crop_hc_px = crop_hcs_px(seg)
            res.hc_band_px = hc_band_px(seg.probability, cfg.band_thresholds)
            if res.hc_band_px is not None and res.pixel_size_mm is not None:
                res.hc_band_mm = res.hc_band_px * res.pixel_size_mm
        # --- issue 9: sub-pixel outline + trimmed fit (fetalhc.outline) ---
        if seg.mask.any() and cfg.outline == "probability":
            ell = ellipse_from_probability(seg.probability, seg.mask, cfg.robust_fit)
            if ell is not None:
                set_ellipse(res, ell)
        clinical.annotate(res, ga_weeks)
        interval = self.interval if cfg.interval else None
        # the calibrated interval's review limit takes over from the fixed HC-band limit
        thresholds = quality.QualityThresholds(max_hc_band_mm=math.inf) if interval is not None else None
        quality.assess(res, mask=seg.mask, probability=seg.probability, image_shape_hw=image.pixels.shape[:2],
                       thresholds=thresholds)
        # --- issue 9: 90 % conformal interval and its review flag (fetalhc.conformal) ---
        if interval is not None and res.hc_px is not None and res.hc_band_px is not None:
            f = conformal.interval_fields(res.hc_px, res.hc_band_px, res.pixel_size_mm, interval)
            res.hc_low_px, res.hc_high_px, res.hc_low_mm, res.hc_high_mm = (
                f["hc_low_px"], f["hc_high_px"], f["hc_low_mm"], f["hc_high_mm"])
            if f["wide"] and res.error is None:
                add_flag(res, conformal.FLAG_INTERVAL_WIDE, f"90 % interval {f['hc_low_mm']:.1f}-"
                         f"{f['hc_high_mm']:.1f} mm wider than +-{interval.max_half_width_mm:.1f} mm")
                res.status = "review"
        return res

    def measure(self, image: UltrasoundImage | NDArray[np.generic] | str | Path,
                pixel_size_mm: float | None = None, ga_weeks: float | None = None) -> MeasureResult:
        """Load (if given a path or array) and measure one image; see :func:`measure`."""
        img = as_image(image)
        if pixel_size_mm is not None:
            img = img.with_pixel_size(pixel_size_mm, "user")
        return self.run(img, ga_weeks)


def as_image(image: UltrasoundImage | NDArray[np.generic] | str | Path) -> UltrasoundImage:
    """An :class:`UltrasoundImage` from a path, an array or an image object."""
    if isinstance(image, UltrasoundImage):
        return image
    if isinstance(image, (str, Path)):
        return load_image(image)
    return UltrasoundImage(to_grey_uint8(np.asarray(image)))


def measure_mask(res: MeasureResult, mask: NDArray[np.uint8], element: str = "cross") -> None:
    """Fill the geometric fields of ``res`` (pixels, and mm where the pixel size is known)."""
    pts = iso_contour_xy(mask)
    try:
        ell = fit_ellipse_points(pts)
    except ValueError:
        return
    res.center_x_px, res.center_y_px = ell.center_x_px, ell.center_y_px
    res.semi_axis_a_px, res.semi_axis_b_px, res.angle_deg = ell.semi_axis_a_px, ell.semi_axis_b_px, ell.angle_deg
    res.hc_px = ell.perimeter_px
    res.contour_hc_px = pixel_count_length_px(mask, element)
    res.contour_length_px = polyline_length_px(pts)
    if res.pixel_size_mm is not None:
        s = res.pixel_size_mm
        res.hc_mm = res.hc_px * s
        res.contour_hc_mm = res.contour_hc_px * s
        res.contour_length_mm = res.contour_length_px * s


def set_ellipse(res: MeasureResult, ell: Ellipse) -> None:
    """Put a (re)fitted clinical ellipse into ``res``: geometry in pixels, HC in pixels and mm."""
    res.center_x_px, res.center_y_px = ell.center_x_px, ell.center_y_px
    res.semi_axis_a_px, res.semi_axis_b_px, res.angle_deg = ell.semi_axis_a_px, ell.semi_axis_b_px, ell.angle_deg
    res.hc_px = ell.perimeter_px
    if res.pixel_size_mm is not None:
        res.hc_mm = res.hc_px * res.pixel_size_mm


def load_interval(model_path: Path) -> conformal.IntervalCalibration | None:
    """The interval calibration ``<model>.interval.json`` beside the model, if there is one."""
    p = model_path.with_suffix(".interval.json")
    return conformal.load(p) if p.is_file() else None


def crop_hcs_px(seg: Segmentation) -> list[float]:
    """Ellipse HC (pixels of the input image) of each crop's own mask, for the crops-disagree
    flag. Measured at network resolution, the edge points scaled back to the crop's box; a
    flipped crop is averaged with its unflipped twin first."""
    by_name: dict[str, list[tuple[CropBox, NDArray[np.float32]]]] = {}
    for b, p in zip(seg.boxes, seg.crop_probs, strict=True):
        by_name.setdefault(b.name.removesuffix("_flip"), []).append((b, p[:, ::-1] if b.flip else p))
    out = []
    for items in by_name.values():
        box = items[0][0]
        prob = np.mean([p for _, p in items], axis=0)
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


def ellipse_hc_px(prob: NDArray[np.floating], threshold: float) -> float | None:
    """Ellipse HC (pixels) of the head outline where ``prob`` crosses ``threshold``; None if
    nothing lies above it or no ellipse fits.

    The outline is the chain of edge pixel centres (OpenCV), about half a pixel inside the
    edge: fast, and the offset cancels in :func:`hc_band_px`'s difference."""
    m = binarize(prob, threshold)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    pts = max(contours, key=len)[:, 0, :].astype(np.float64)
    try:
        return fit_ellipse_points(pts).perimeter_px
    except ValueError:
        return None


def hc_band_px(prob: NDArray[np.floating], thresholds: tuple[float, float] = (0.2, 0.8)) -> float | None:
    """The HC uncertainty band (pixels of perimeter, not a radial width): the ellipse HC of the
    outline at the low probability threshold minus that at the high one.

    A sharp network edge gives a narrow band (a few pixels of perimeter); an edge the network
    is unsure of (faint or broken skull, shadowing) gives a wide one. On the HC18 validation
    split the band in millimetres ranks large errors better than any other per-image signal
    (README, "Quality flags"). None when either outline is missing.
    """
    lo, hi = thresholds
    if not 0.0 < lo < hi < 1.0:
        raise ValueError(f"band thresholds must satisfy 0 < low < high < 1, got {thresholds}")
    outer, inner = ellipse_hc_px(prob, lo), ellipse_hc_px(prob, hi)
    if outer is None or inner is None:
        return None
    return outer - inner


@lru_cache(maxsize=4)
def _default_pipeline(model_path: str | None, config: PipelineConfig) -> Pipeline:
    return Pipeline(model_path, config)


def measure(image: UltrasoundImage | NDArray[np.generic] | str | Path, pixel_size_mm: float | None = None, *,
            ga_weeks: float | None = None, config: PipelineConfig | None = None,
            model_path: str | Path | None = None) -> MeasureResult:
    """Measure the fetal head circumference on one image with the shipped model.

    Args:
        image: a file path (PNG, JPEG, BMP, TIFF, DICOM), a grey/RGB array, or an UltrasoundImage.
        pixel_size_mm: pixel size in millimetres; overrides any size the file carries. Without
            any, lengths are given in pixels only (``hc_mm`` is None and a flag says so).
        ga_weeks: gestational age in weeks, for the HC z-score and centile.
        config: pipeline settings (crop mode, Q, flips, ...).
        model_path: another ONNX model with its metadata JSON beside it.

    Returns:
        A :class:`~fetalhc.results.MeasureResult`; ``hc_mm`` is the clinical ellipse HC.
    """
    pipe = _default_pipeline(str(model_path) if model_path else None, config or PipelineConfig())
    return pipe.measure(image, pixel_size_mm, ga_weeks)


__all__ = ["Ellipse", "Pipeline", "PipelineConfig", "Segmentation", "measure"]
