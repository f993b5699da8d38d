"""Plain result objects. Units are in the field names: ``_px`` pixels, ``_mm`` millimetres,
``_deg`` degrees, ``_weeks`` weeks of gestation."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Columns of the results table, in order (CSV and JSON use the same names).
TABLE_COLUMNS = (
    "file",
    "hc_mm",
    "contour_hc_mm",
    "contour_length_mm",
    "hc_px",
    "contour_hc_px",
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
    "mean_confidence",
    "frame",
    "error",
    "hc_low_mm",
    "hc_high_mm",
    "hc_low_px",
    "hc_high_px",
)


@dataclass
class MeasureResult:
    """Everything fetalhc measured on one image.

    ``hc_mm`` is the clinical value: the Ramanujan perimeter of the ellipse fitted to the
    head mask, times the pixel size. ``contour_hc_mm`` is the patent's length: the number of
    boundary pixels (dilation minus mask, 3x3 cross element) times the pixel size; it is
    biased (about x0.90 of the true perimeter for the cross element, see README).
    ``contour_length_mm`` is an unbiased length of the mask's own (non-elliptical) contour.
    Fields left ``None`` were not measurable; ``error`` says why a file failed.
    """

    file: str
    hc_mm: float | None = None
    contour_hc_mm: float | None = None
    contour_length_mm: float | None = None
    hc_px: float | None = None
    contour_hc_px: float | None = None
    contour_length_px: float | None = None
    center_x_px: float | None = None
    center_y_px: float | None = None
    semi_axis_a_px: float | None = None
    semi_axis_b_px: float | None = None
    angle_deg: float | None = None
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
    flags: list[str] = field(default_factory=list)
    crop_mode: str = ""
    crop_hc_px: list[float] = field(default_factory=list)
    #: HC uncertainty: ellipse HC of the outline at head probability 0.2 minus that at 0.8
    #: (pixels / millimetres); wide when the network is unsure where the skull's edge lies
    hc_band_px: float | None = None
    hc_band_mm: float | None = None
    mean_confidence: float | None = None
    frame: int | None = None
    error: str | None = None
    #: fused head probability (H, W) float32 in [0, 1]; not written to the table
    probability: NDArray[np.float32] | None = field(default=None, repr=False, compare=False)
    #: binary head mask (H, W) uint8 0/1; not written to the table
    mask: NDArray[np.uint8] | None = field(default=None, repr=False, compare=False)
    #: 90 % split-conformal interval for the reference HC (fetalhc.conformal), mm and pixels
    hc_low_mm: float | None = None
    hc_high_mm: float | None = None
    hc_low_px: float | None = None
    hc_high_px: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def row(self) -> dict[str, Any]:
        """The table row: scalars rounded for display, lists joined with ';'."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name not in TABLE_COLUMNS:
                continue
            v = getattr(self, f.name)
            if isinstance(v, float):
                v = round(v, 4)
            elif isinstance(v, list):
                v = ";".join(f"{x:.2f}" if isinstance(x, float) else str(x) for x in v)
            out[f.name] = v
        return {k: out.get(k) for k in TABLE_COLUMNS}
