"""The result record of one image and the table built from it. Units are in the field names:
``_px`` pixels, ``_mm`` millimetres, ``_deg`` degrees, ``_weeks`` weeks of gestation.

:func:`assemble` is the one place where a pipeline :class:`~fetalhc.pipeline.Outcome` becomes a
:class:`MeasureResult`; :func:`failure` makes the record of a file that could not be measured.
``docs/columns.md`` documents every column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from fetalhc.ellipse import Ellipse

if TYPE_CHECKING:  # types only: importing fetalhc stays light (no model runtime)
    from fetalhc.clinical import Readout
    from fetalhc.measurement import Measurement
    from fetalhc.pipeline import Outcome
    from fetalhc.quality import QualityThresholds, Verdict

#: Columns of the results table, in order (CSV and JSON use the same names).
TABLE_COLUMNS = (
    "file",
    "hc_mm",
    "patent_pixel_count_hc_mm",
    "contour_length_mm",
    "hc_px",
    "patent_pixel_count_hc_px",
    "contour_length_px",
    "center_x_px",
    "center_y_px",
    "semi_axis_a_px",
    "semi_axis_b_px",
    "angle_deg",
    "pixel_size_mm",
    "pixel_size_source",
    "bpd_mm",
    "ofd_mm",
    "cephalic_index",
    "ga_weeks",
    "ga_hadlock_weeks",
    "ga_intergrowth_weeks",
    "hc_z",
    "hc_centile",
    "status",
    "flags",
    "crop_mode",
    "crop_hc_px",
    "hc_band_mm",
    "hc_band_px",
    "edge_confidence",
    "frame",
    "error",
    "sr_file",
    "hc_low_mm",
    "hc_high_mm",
    "hc_low_px",
    "hc_high_px",
)

#: Columns renamed in 0.2 (old name -> new name).
RENAMED_COLUMNS = {
    "contour_hc_mm": "patent_pixel_count_hc_mm",
    "contour_hc_px": "patent_pixel_count_hc_px",
    "mean_confidence": "edge_confidence",
}


@dataclass(frozen=True)
class MeasureResult:
    """Everything fetalhc measured on one image (or DICOM frame).

    ``hc_mm`` is the clinical value: the Ramanujan perimeter of the ellipse fitted to the head
    mask, times the pixel size. ``patent_pixel_count_hc_mm`` is the patent's length: the number
    of boundary pixels (dilation minus mask, cross element) times the pixel size; it is biased
    (about x0.90 of the true perimeter, see README). ``contour_length_mm`` is an unbiased length of
    the mask's own (non-elliptical) contour. Fields left ``None`` were not measurable; ``error``
    says why a file failed (``status`` "failed").
    """

    file: str
    ellipse: Ellipse | None = None
    hc_mm: float | None = None
    patent_pixel_count_hc_mm: float | None = None
    contour_length_mm: float | None = None
    hc_px: float | None = None
    patent_pixel_count_hc_px: float | None = None
    contour_length_px: float | None = None
    pixel_size_mm: float | None = None
    pixel_size_source: str = "none"
    bpd_mm: float | None = None
    ofd_mm: float | None = None
    cephalic_index: float | None = None
    ga_weeks: float | None = None
    ga_hadlock_weeks: float | None = None
    ga_intergrowth_weeks: float | None = None
    hc_z: float | None = None
    hc_centile: float | None = None
    status: str = "review"
    flags: tuple[str, ...] = ()
    crop_mode: str = ""
    crop_hc_px: tuple[float, ...] = ()
    #: HC uncertainty: ellipse HC of the outline at head probability 0.2 minus that at 0.8
    #: (pixels / millimetres); wide when the network is unsure where the skull's edge lies
    hc_band_px: float | None = None
    hc_band_mm: float | None = None
    #: mean certainty |2p - 1| of the head probability along the mask's edge (0..1)
    edge_confidence: float | None = None
    frame: int | None = None
    error: str | None = None
    #: 90 % split-conformal interval for the reference HC (fetalhc.conformal), mm and pixels
    hc_low_mm: float | None = None
    hc_high_mm: float | None = None
    hc_low_px: float | None = None
    hc_high_px: float | None = None
    #: the quality limits that were applied (reports print them); not written to the table
    thresholds: QualityThresholds | None = field(default=None, repr=False, compare=False)
    #: the DICOM SR written for this result (``--sr-dir``), or ``None``
    sr_file: str | None = None
    #: fused head probability (H, W) float32 in [0, 1]; not written to the table
    probability: NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    #: binary head mask (H, W) uint8 0/1; not written to the table
    mask: NDArray[np.uint8] | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def center_x_px(self) -> float | None:
        return None if self.ellipse is None else self.ellipse.center_x_px

    @property
    def center_y_px(self) -> float | None:
        return None if self.ellipse is None else self.ellipse.center_y_px

    @property
    def semi_axis_a_px(self) -> float | None:
        """Major semi-axis of the fitted ellipse (pixels)."""
        return None if self.ellipse is None else self.ellipse.semi_axis_a_px

    @property
    def semi_axis_b_px(self) -> float | None:
        """Minor semi-axis of the fitted ellipse (pixels)."""
        return None if self.ellipse is None else self.ellipse.semi_axis_b_px

    @property
    def angle_deg(self) -> float | None:
        """Direction of the major axis from +x towards +y (down), degrees in [0, 180)."""
        return None if self.ellipse is None else self.ellipse.angle_deg

    def row(self) -> dict[str, Any]:
        """The table row: floats rounded to 4 decimals, list fields as lists (CSV writes them
        as JSON arrays: :func:`fetalhc.io_utils.csv_cell`)."""
        out: dict[str, Any] = {}
        for name in TABLE_COLUMNS:
            v = getattr(self, name)
            if isinstance(v, float):
                v = round(v, 4)
            elif name == "crop_hc_px":
                v = [round(float(x), 2) for x in v]
            elif isinstance(v, tuple):
                v = list(v)
            out[name] = v
        return out


def assemble(outcome: Outcome, *, file: str | None = None, frame: int | None = None,
             keep_arrays: bool = True) -> MeasureResult:
    """The result record of a pipeline outcome. ``file`` defaults to the image's name;
    ``keep_arrays=False`` leaves out the probability map and mask (for streaming many files)."""
    return from_parts(outcome.image.name if file is None else file, outcome.measurement, outcome.readout,
                      outcome.verdict, crop_mode=outcome.config.crop_label, frame=frame,
                      probability=outcome.segmentation.probability if keep_arrays else None,
                      mask=outcome.measurement.head_mask if keep_arrays else None)


def from_parts(file: str, m: Measurement, r: Readout, v: Verdict, *, crop_mode: str = "", frame: int | None = None,
               probability: NDArray[np.float32] | None = None, mask: NDArray[np.uint8] | None = None
               ) -> MeasureResult:
    """The result record of a measurement, its read-out and its verdict (the one place that
    lays them out as a row's fields)."""
    return MeasureResult(
        file=file,
        ellipse=m.ellipse,
        hc_mm=m.hc_mm, patent_pixel_count_hc_mm=m.patent_pixel_count_hc_mm, contour_length_mm=m.contour_length_mm,
        hc_px=m.hc_px, patent_pixel_count_hc_px=m.patent_pixel_count_hc_px, contour_length_px=m.contour_length_px,
        pixel_size_mm=m.pixel_size_mm, pixel_size_source=m.pixel_size_source,
        bpd_mm=r.bpd_mm, ofd_mm=r.ofd_mm, cephalic_index=r.cephalic_index, ga_weeks=r.ga_weeks,
        ga_hadlock_weeks=r.ga_hadlock_weeks, ga_intergrowth_weeks=r.ga_intergrowth_weeks, hc_z=r.hc_z,
        hc_centile=r.hc_centile, status=v.status, flags=v.flags, crop_mode=crop_mode,
        crop_hc_px=m.crop_hc_px, hc_band_px=m.hc_band_px, hc_band_mm=m.hc_band_mm, edge_confidence=m.edge_confidence,
        hc_low_mm=m.hc_low_mm, hc_high_mm=m.hc_high_mm, hc_low_px=m.hc_low_px, hc_high_px=m.hc_high_px,
        frame=frame, thresholds=v.thresholds, probability=probability, mask=mask,
    )


def failure(file: str, error: str, frame: int | None = None) -> MeasureResult:
    """The record of a file (or frame) that could not be measured."""
    return MeasureResult(file=file, error=error, status="failed", frame=frame)
