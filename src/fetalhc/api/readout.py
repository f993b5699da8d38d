"""The read-out of one ellipse: the single source of truth for the web page's live values.

:func:`readout_for_ellipse` computes everything the page shows for an ellipse (automatic or
corrected by a person) with the package's own functions: the Ramanujan perimeter of
:mod:`fetalhc.ellipse`, BPD/OFD/cephalic index/GA/centile of :func:`fetalhc.clinical.readout`
and the geometric checks of :func:`fetalhc.quality.assess` (on the ellipse rasterised as its
own mask, :func:`fetalhc.measurement.measure_ellipse`). The page never computes a clinical number itself.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from fetalhc.clinical import readout, weeks_days
from fetalhc.ellipse import Ellipse
from fetalhc.flags import make_flag
from fetalhc.measurement import measure_ellipse
from fetalhc.quality import FLAG_EDITED, assess
from fetalhc.results import MeasureResult, from_parts

#: Smallest semi-axis (pixels) and largest HC (mm) a read-out accepts: a head is larger than two
#: pixels across, and an HC outside 1 mm-2 m is an error (the clinical formulas overflow there).
MIN_SEMI_AXIS_PX = 1.0
MAX_HC_MM = 2000.0
MIN_HC_MM = 1.0


def normalized_ellipse(cx: float, cy: float, a: float, b: float, angle_deg: float) -> Ellipse:
    """An :class:`Ellipse` with a >= b and the angle in [0, 180): a dragged minor axis may
    outgrow the major one, which then swaps the axes and turns the angle by 90 degrees."""
    vals = (cx, cy, a, b, angle_deg)
    if not all(math.isfinite(float(v)) for v in vals):
        raise ValueError("ellipse values must be finite numbers")
    if min(a, b) < MIN_SEMI_AXIS_PX:
        raise ValueError(f"semi-axes must be at least {MIN_SEMI_AXIS_PX:g} pixel, got a={a:g}, b={b:g}")
    if b > a:
        a, b, angle_deg = b, a, angle_deg + 90.0
    return Ellipse(float(cx), float(cy), float(a), float(b), float(angle_deg) % 180.0)


def readout_for_ellipse(ellipse: Ellipse, pixel_size_mm: float | None, ga_weeks: float | None,
                        image_shape_hw: tuple[int, int], *, pixel_size_source: str = "user",
                        name: str = "upload", input_flags: tuple[str, ...] = ()) -> MeasureResult:
    """Every clinical value and geometric quality flag of ``ellipse`` (pixels of an image of
    ``image_shape_hw`` = (height, width)) at ``pixel_size_mm`` (None: pixels only) and, with
    ``ga_weeks`` (10-45), the INTERGROWTH-21st centile: :func:`fetalhc.measurement.measure_ellipse`,
    :func:`fetalhc.clinical.readout` and :func:`fetalhc.quality.assess`, as the pipeline applies
    them. Raises ``ValueError`` for bad input."""
    e = normalized_ellipse(ellipse.center_x_px, ellipse.center_y_px, ellipse.semi_axis_a_px,
                           ellipse.semi_axis_b_px, ellipse.angle_deg)
    h, w = int(image_shape_hw[0]), int(image_shape_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image size must be positive, got {w}x{h} pixels")
    m = measure_ellipse(e, (h, w), pixel_size_mm, pixel_size_source if pixel_size_mm is not None else "none")
    if m.hc_mm is not None and not MIN_HC_MM <= m.hc_mm <= MAX_HC_MM:
        raise ValueError(f"HC {m.hc_mm:.3g} mm is no fetal head (accepted {MIN_HC_MM:g}-{MAX_HC_MM:g} mm): "
                         "check the ellipse and the pixel size")
    r = readout(m.hc_mm, m.bpd_mm, m.ofd_mm, ga_weeks)
    return from_parts(name, m, r, assess(m, r, input_flags=input_flags))


def edited_result(auto: MeasureResult, ellipse: Ellipse, image_shape_hw: tuple[int, int]) -> MeasureResult:
    """The reading of ``ellipse`` as a person's correction of the automatic reading ``auto``:
    the same pixel size, GA, file and frame, the values of :func:`readout_for_ellipse`, and an
    ``edited`` flag quoting the automatic HC."""
    auto_hc = f"{auto.hc_mm:.1f} mm" if auto.hc_mm is not None else "none"
    flag = make_flag(FLAG_EDITED, f"ellipse corrected by a person (automatic HC {auto_hc})")
    res = readout_for_ellipse(ellipse, auto.pixel_size_mm, auto.ga_weeks, image_shape_hw,
                              pixel_size_source=auto.pixel_size_source, name=auto.file, input_flags=(flag,))
    return replace(res, frame=auto.frame, crop_mode=auto.crop_mode)


def display_values(res: MeasureResult) -> dict[str, Any]:
    """The page's strings for ``res``, formatted here so the page does no arithmetic: HC with
    one decimal, GA as weeks and weeks+days, centile as the report prints it."""
    from fetalhc.report import format_centile

    def mm(v: float | None) -> str | None:
        return None if v is None else f"{v:.1f}"

    def ga(v: float | None) -> str | None:
        return None if v is None else f"{v:.1f} weeks ({weeks_days(v)})"

    low, high = getattr(res, "hc_low_mm", None), getattr(res, "hc_high_mm", None)
    return {
        "hc_mm": mm(res.hc_mm),
        "hc_px": None if res.hc_px is None else f"{res.hc_px:.0f}",
        "bpd_mm": mm(res.bpd_mm),
        "ofd_mm": mm(res.ofd_mm),
        "cephalic_index": None if res.cephalic_index is None else f"{res.cephalic_index:.1f}",
        "ga_hadlock": ga(res.ga_hadlock_weeks),
        "ga_intergrowth": ga(res.ga_intergrowth_weeks),
        "ga_given": ga(res.ga_weeks),
        "hc_centile": None if res.hc_centile is None else format_centile(res.hc_centile),
        "hc_z": None if res.hc_z is None else f"{res.hc_z:+.2f}",
        "hc_band_mm": mm(res.hc_band_mm),
        "hc_interval_mm": None if low is None or high is None else f"{low:.1f}-{high:.1f}",
        "pixel_size_mm": None if res.pixel_size_mm is None else f"{res.pixel_size_mm:.4g}",
        "pixel_size_source": res.pixel_size_source,
        "status": res.status,
    }
