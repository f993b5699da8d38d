"""The measurement pipeline: de-identify -> segment (crops, network, fusion) -> measure ->
clinical read-out -> quality verdict. Each arrow is a plain value, each stage a function of its
own module; :class:`Pipeline` only composes them and returns one :class:`Outcome`.
:mod:`fetalhc.results` turns an outcome into a table row.
"""

from __future__ import annotations

import copy
import glob
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from fetalhc import conformal
from fetalhc.clinical import Readout, readout
from fetalhc.crops import DEFAULT_CROP_MODE, CropMode, validate_q
from fetalhc.deid import deidentify_pixels
from fetalhc.image import UltrasoundImage
from fetalhc.measurement import Measurement, measure
from fetalhc.quality import QualityThresholds, Verdict, assess
from fetalhc.segment import ModelError, OrtMemory, Segmenter
from fetalhc.segmentation import STANDARD_ZOOMS, ZOOM_FOR_CROP_MODE, Segmentation, ZoomSettings, locate_hw, segment


@dataclass(frozen=True)
class PipelineConfig:
    """Settings of the measurement pipeline.

    Attributes:
        crop_mode: "full" (one whole-image pass to find the head; the default since 0.3),
            "corners" (the patent's four corner crops) or "corners+full".
        q: corner crop scale (the patent's Q), 0 < q <= 1.
        flips: also segment each crop flipped left-right and average.
        threshold: probability threshold of the fused map.
        deidentify: blank burned-in text before anything else sees the image.
        deid_ocr: also read text with Tesseract and blank what it finds (slower; see deid).
        element: structuring element of the patent's boundary ("cross" or "square").
        no_head_edge_confidence: below this edge confidence (mean certainty |2p - 1| within
            ``edge_band_px`` of the mask's edge) the mask is discarded and the image reported as
            "no head found": a soft blob, not a head. (Readings above it but below
            ``quality.min_edge_confidence`` are kept and flagged for review.)
        edge_band_px: half-width (pixels) of the band in which the edge confidence is measured.
        band_thresholds: (low, high) head probabilities whose outlines bound the HC
            uncertainty band ``hc_band_mm`` (see :func:`fetalhc.measurement.hc_band_px`).
        quality: limits of the quality checks (reports print the ones used).
        zoom: after the crops, segment the head's box once more (:class:`ZoomSettings`: margin,
            least image pixels per network pixel, blend weight, flipped twin, size of the finding
            pass, self-check); "auto" = the crop mode's own
            (:data:`fetalhc.segmentation.ZOOM_FOR_CROP_MODE`), ``None`` = no zoom pass.
        outline: "probability" fits the clinical ellipse to the fused probability's 0.5 iso-line,
            "mask" to the smoothed mask's edge (before 0.2).
        robust_fit: trim outlying outline points before the final fit (:mod:`fetalhc.outline`).
        interval: give the 90 % interval (and its review limit) from the calibration JSON beside
            the model, when there is one.
    """

    crop_mode: str = DEFAULT_CROP_MODE
    q: float = 0.9
    flips: bool = False
    threshold: float = 0.5
    deidentify: bool = True
    deid_ocr: bool = False
    element: str = "cross"
    no_head_edge_confidence: float = 0.2
    edge_band_px: int = 7
    band_thresholds: tuple[float, float] = (0.2, 0.8)
    quality: QualityThresholds = field(default_factory=QualityThresholds)
    zoom: ZoomSettings | str | None = "auto"
    outline: str = "probability"
    robust_fit: bool = True
    interval: bool = True

    def __post_init__(self) -> None:
        CropMode(self.crop_mode)
        validate_q(self.q)
        if isinstance(self.zoom, str) and self.zoom != "auto":
            raise ValueError(f"zoom must be ZoomSettings, 'auto' or None, got {self.zoom!r}")
        if self.outline not in ("probability", "mask"):
            raise ValueError(f"outline must be 'probability' or 'mask', got {self.outline!r}")
        lo, hi = self.band_thresholds
        if not 0.0 < lo < hi < 1.0:
            raise ValueError(f"band thresholds must satisfy 0 < low < high < 1, got {self.band_thresholds}")

    @property
    def zoom_settings(self) -> ZoomSettings | None:
        """The zoom pass these settings run (``zoom="auto"`` resolved for the crop mode), or None."""
        return ZOOM_FOR_CROP_MODE[self.crop_mode] if self.zoom == "auto" else self.zoom  # type: ignore[return-value]

    @property
    def crop_label(self) -> str:
        """The views as results record them, e.g. "corners+zoom", "full+zoomflip" or (0.4's
        default, a half-size locate pass) "full@0.5+zoomflip"."""
        z = self.zoom_settings
        return self.crop_mode + ("+flips" if self.flips else "") + ("" if z is None else z.label)

    @property
    def interval_key(self) -> str | None:
        """The settings an interval calibration must have been made for: ``crop_label`` when
        everything else that moves the HC (Q, zoom pass, threshold, outline, fit, band) is as the
        crop mode ships it (the zoom: one of ``segmentation.STANDARD_ZOOMS``, or none), else None
        (custom settings: no calibration applies to them)."""
        z = self.zoom_settings
        standard = PipelineConfig(crop_mode=self.crop_mode)
        same = (z is None or z in STANDARD_ZOOMS[self.crop_mode]) and (
            self.q, self.threshold, self.outline, self.robust_fit, self.band_thresholds) == (
            standard.q, standard.threshold, standard.outline, standard.robust_fit, standard.band_thresholds)
        return self.crop_label if same else None


@dataclass(frozen=True)
class Outcome:
    """Everything the pipeline made of one image.

    Attributes:
        image: the de-identified image every output (overlay, report, SR) must use.
        segmentation: fused probability, network mask and crops.
        measurement: geometry in pixels and millimetres.
        readout: the clinical read-out.
        verdict: status and flags.
        config: the settings used.
    """

    image: UltrasoundImage
    segmentation: Segmentation
    measurement: Measurement
    readout: Readout
    verdict: Verdict
    config: PipelineConfig


class Pipeline:
    """Measure head circumference on images with one loaded model.

    >>> from fetalhc.results import assemble                # doctest: +SKIP
    >>> outcome = Pipeline().run(load_image("010_HC.png", pixel_size_mm=0.12))  # doctest: +SKIP
    >>> assemble(outcome).hc_mm                             # doctest: +SKIP
    """

    def __init__(self, model_path: str | Path | None = None, config: PipelineConfig | None = None,
                 threads: int = 2, precision: str | None = None, memory: OrtMemory | None = None) -> None:
        # precision: "fp32" or "int8" shipped model when no model_path is given (segment.DEFAULT_PRECISION)
        self.segmenter = Segmenter(model_path, threads=threads, precision=precision, memory=memory)
        self.config = fit_to_model(config or PipelineConfig(), self.segmenter)
        #: the interval calibrations beside the model, by the settings they were made for
        self.intervals = load_intervals(self.segmenter.info.path)

    @property
    def interval(self) -> conformal.IntervalCalibration | None:
        """The interval calibration for these settings (:func:`interval_for`), or None."""
        return interval_for(self.intervals, self.config.interval_key)

    def with_config(self, config: PipelineConfig) -> Pipeline:
        """A pipeline with other settings that shares this one's loaded model."""
        other = copy.copy(self)
        other.config = fit_to_model(config, self.segmenter)
        return other

    def deidentify(self, image: UltrasoundImage) -> UltrasoundImage:
        """Stage 2: the de-identified image every later stage (and every output) sees."""
        cfg = self.config
        return deidentify_pixels(image, ocr=cfg.deid_ocr) if cfg.deidentify else image

    def analyse(self, clean: UltrasoundImage, ga_weeks: float | None = None,
                input_flags: tuple[str, ...] = ()) -> Outcome:
        """Measure an image that :meth:`deidentify` already cleaned. Never raises for a poor
        image: problems become flags. ``input_flags`` ("code: reason") join the verdict's flags."""
        cfg = self.config
        cal = self.interval if cfg.interval else None
        seg = segment(clean.pixels, self.segmenter, cfg.crop_mode, cfg.q, cfg.flips, cfg.threshold,
                      cfg.zoom_settings)
        m = measure(seg, clean.pixel_size_mm, clean.pixel_size_source, element=cfg.element,
                    no_head_edge_confidence=cfg.no_head_edge_confidence, edge_band_px=cfg.edge_band_px,
                    band_thresholds=cfg.band_thresholds, outline=cfg.outline, robust_fit=cfg.robust_fit,
                    interval=cal)
        r = readout(m.hc_mm, m.bpd_mm, m.ofd_mm, ga_weeks)
        notes = tuple(n for n in clean.notes if not n.startswith("deid:"))
        verdict = assess(m, r, thresholds=quality_thresholds(cfg.quality, cal), notes=notes, input_flags=input_flags)
        return Outcome(clean, seg, m, r, verdict, cfg)

    def run(self, image: UltrasoundImage, ga_weeks: float | None = None,
            input_flags: tuple[str, ...] = ()) -> Outcome:
        """De-identify and measure one loaded image."""
        return self.analyse(self.deidentify(image), ga_weeks, input_flags)


def fit_to_model(config: PipelineConfig, segmenter: Segmenter) -> PipelineConfig:
    """``config`` as ``segmenter``'s model can run it. A model with a fixed input size (exported
    before 0.4) cannot run a half-size finding pass: with ``zoom="auto"`` it gets 0.3's full-size
    one (the results' ``crop_mode`` then says ``full+zoomflip``); asked for explicitly, it is a
    :class:`ModelError`, raised here once rather than for every image."""
    z = config.zoom_settings
    if z is None or z.locate_scale == 1.0 or segmenter.accepts(locate_hw(segmenter.input_hw, z.locate_scale)):
        return config
    if config.zoom == "auto":
        return replace(config, zoom=replace(z, locate_scale=1.0, refine_iou=0.0))
    raise ModelError(f"{segmenter.info.path.name} has a fixed input size {segmenter.input_hw}: it cannot run a "
                     f"finding pass at {z.locate_scale:g} of it; free its dims "
                     "(fetalhc.train.export.free_spatial_dims) or use locate_scale=1")


#: what ``PipelineConfig.crop_label`` can be, e.g. "full+zoomflip", "corners+flips+zoom"
SETTINGS_LABEL = re.compile(r"(full|corners|corners\+full)(\+flips)?((@0\.[0-9]+)?(\+zoom|\+zoomflip))?")


def load_intervals(model_path: Path) -> dict[str, conformal.IntervalCalibration]:
    """The interval calibrations beside the model, keyed by the settings each was made for
    (:attr:`fetalhc.conformal.IntervalCalibration.settings`): ``<model>.<settings>.interval.json``
    (its ``settings`` must be the name's), and ``<model>.interval.json`` (the settings it states,
    or "" = any settings: a file from before 0.3, when one calibration served every setting).
    Two files for the same settings, or a file whose name and settings differ, are errors."""
    out: dict[str, conformal.IntervalCalibration] = {}
    stem = model_path.stem
    for p in sorted(model_path.parent.glob(f"{glob.escape(stem)}.*interval.json")):
        named = p.name[len(stem) + 1: -len("interval.json")].rstrip(".")  # "" for <model>.interval.json
        if named and not SETTINGS_LABEL.fullmatch(named):
            continue  # not a settings label: another model's file (m.v2.interval.json beside m.onnx)
        cal = conformal.load(p)
        if named and named != cal.settings:
            raise ValueError(f"{p}: the file name says settings {named!r}, its content {cal.settings!r}")
        if cal.settings in out:
            raise ValueError(f"{p}: a second interval calibration for settings {cal.settings!r}")
        out[cal.settings] = cal
    return out


def interval_for(intervals: dict[str, conformal.IntervalCalibration],
                 key: str | None) -> conformal.IntervalCalibration | None:
    """The calibration made for these settings (``PipelineConfig.interval_key``), else one that
    states no settings (pre-0.3 files), else None: settings nobody calibrated (``key`` None or
    unknown) give no interval rather than another setting's."""
    return intervals.get(key or "", intervals.get(""))


def quality_thresholds(base: QualityThresholds, cal: conformal.IntervalCalibration | None) -> QualityThresholds:
    """The limits the verdict applies: with an interval calibration, its review limit on the
    interval's half-width replaces the fixed HC-band limit (both measure the same uncertainty)."""
    if cal is None:
        return base
    return replace(base, max_hc_band_mm=math.inf, max_interval_half_width_mm=cal.max_half_width_mm)


__all__ = ["Outcome", "Pipeline", "PipelineConfig"]
