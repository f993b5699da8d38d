"""Stage 9: quality flags. Decide ``status`` = "ok" | "review" and say why.

:func:`assess` judges a :class:`~fetalhc.measurement.Measurement` and its read-out and returns
a :class:`Verdict`; it reads what the measure step computed and recomputes nothing. Each check
gives ``"code: reason"`` flags. A reading is "ok" only when every flag it carries is
informative (:attr:`QualityThresholds.info_flags`: the cephalic-index and formula-range flags of
:mod:`fetalhc.clinical`, which leave the HC itself in no doubt); any other flag, including one
this module does not know, sends it to "review".

All thresholds live in :class:`QualityThresholds`. The defaults are first guesses from
geometry and from the HC18 training set (HC 44-346 mm, pixel size 0.049-0.39 mm, ellipse
perimeters 440-1790 px on 800x540 images); :func:`calibrate_report` summarises a per-image
validation table so that they can be tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fetalhc.clinical import INFO_FLAGS, Readout
from fetalhc.conformal import FLAG_INTERVAL_WIDE
from fetalhc.ellipse import Ellipse
from fetalhc.flags import decode_flags, flag_code, make_flag
from fetalhc.measurement import Measurement

FLAG_NO_HEAD = "no_head_found"
FLAG_BORDER = "head_cut_by_border"
FLAG_IMPLAUSIBLE_MASK = "implausible_mask"
FLAG_FIT_RESIDUAL = "ellipse_fit_residual_high"
FLAG_CROPS_DISAGREE = "crops_disagree"
FLAG_LOW_CONFIDENCE = "low_confidence"
FLAG_HC_UNCERTAIN = "hc_uncertain"
FLAG_PIXEL_SIZE_MISSING = "pixel_size_missing"
FLAG_PIXEL_SIZE_IMPLAUSIBLE = "pixel_size_implausible"
FLAG_HC_RANGE = "hc_out_of_range"
#: informative flags about where the pixel size came from (set by the caller, see fetalhc.batch)
FLAG_PIXEL_SIZE_OVERRIDDEN = "pixel_size_overridden"
FLAG_PIXEL_SIZE_NOT_IN_CSV = "pixel_size_not_in_csv"
#: informative: no DICOM SR could be written for this reading (see fetalhc.sr)
FLAG_SR_NOT_WRITTEN = "sr_not_written"
#: informative: a person corrected the ellipse (fetalhc.api); the values are those of the corrected ellipse
FLAG_EDITED = "edited"


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the quality checks (units in the names).

    Attributes:
        border_touch_max_frac: mask pixels lying on the outermost image row/column, as a fraction
            of the ellipse perimeter, above which the head counts as cut (0.03 of a 1000 px
            head = 30 px of straight border contact; a head grazing the border touches a few).
        ellipse_outside_max_px: how far (px) the fitted ellipse may reach beyond the image.
        min_area_frac, max_area_frac: plausible mask area as a fraction of the image (HC18 heads
            cover about 2-55 %).
        min_aspect_ratio: plausible minor/major axis ratio b/a (cephalic index / 100; severe
            dolichocephaly reaches about 0.65-0.70, a cephalic index below 60 is not a head).
        max_fit_residual: 1 - IoU(mask, rasterised fitted ellipse). A clean rasterised ellipse
            gives < 0.005 (semi-axes down to 40 px); two overlapping ellipses about 0.11, a cross 0.45.
        max_crop_spread: (max - min) / median of the per-crop ellipse HCs (0.05 = 5 %, about
            9 mm at 20 weeks).
        min_edge_confidence: mean |2p - 1| of the probability in a band of
            +-``edge_band_px`` (PipelineConfig) around the mask edge; 0.5 is reached by a logistic edge
            about 3 px wide (a sharp network edge gives > 0.8).
        max_hc_band_mm: widest acceptable HC uncertainty band (``Measurement.hc_band_mm``: ellipse
            HC at head probability 0.2 minus that at 0.8), mm. 8 mm is +-4 mm of HC, about +-2.5 days
            of growth at 20 weeks (HC grows some 11 mm a week then).
        max_interval_half_width_mm: widest acceptable half-width (mm) of the 90 % interval
            (``Measurement.hc_low_mm``-``hc_high_mm``); wider gets ``interval_wide``. ``inf``
            disables it; the pipeline sets it from the interval calibration beside the model
            (and then lifts ``max_hc_band_mm``: the calibrated interval limit replaces it).
        pixel_size_range_mm: plausible pixel size (mm); HC18 spans 0.049-0.39 mm.
        hc_range_mm: plausible trans-thalamic HC (mm): 40 mm is about 11 weeks (HC18's smallest
            head is 44.3 mm), 400 mm lies above the INTERGROWTH-21st +3 SD at 40 weeks (372.7 mm).
        info_flags: flag codes that do not on their own send a result to review.

    Calibration (HC18 validation split, 129 images, shipped model, four corner crops): the edge
    confidence ranged 0.40-0.68 and the crop spread 0.001-0.021; neither ranks the HC error
    (ROC AUC for errors > 4 mm: 0.49 and 0.56), so ``min_edge_confidence`` = 0.40 and
    ``max_crop_spread`` = 0.03 lie at or beyond every validation image and fire only on gross
    failures. The HC uncertainty band does rank it (AUC 0.79): ``max_hc_band_mm`` = 8 sends
    15 % to review and catches 6 of the 10 errors above 4 mm and 5 of the 6 above 6 mm (README,
    "Quality flags", for the sweep; ``fetalhc evaluate`` writes both into summary.json).
    """

    border_touch_max_frac: float = 0.03
    ellipse_outside_max_px: float = 3.0
    min_area_frac: float = 0.005
    max_area_frac: float = 0.80
    min_aspect_ratio: float = 0.60
    max_fit_residual: float = 0.08
    max_crop_spread: float = 0.03
    min_edge_confidence: float = 0.40
    max_hc_band_mm: float = 8.0
    max_interval_half_width_mm: float = math.inf
    pixel_size_range_mm: tuple[float, float] = (0.02, 1.0)
    hc_range_mm: tuple[float, float] = (40.0, 400.0)
    info_flags: frozenset[str] = field(
        default_factory=lambda: INFO_FLAGS | {FLAG_PIXEL_SIZE_OVERRIDDEN, FLAG_PIXEL_SIZE_NOT_IN_CSV,
                                       FLAG_SR_NOT_WRITTEN, FLAG_EDITED})


@dataclass(frozen=True)
class Verdict:
    """The quality judgement of one reading.

    Attributes:
        status: "ok" or "review".
        flags: every flag of the reading, in order: notes from loading the image, the read-out's
            informative flags, then this module's checks ("code: reason").
        thresholds: the limits the checks used (reports print them).
    """

    status: str
    flags: tuple[str, ...]
    thresholds: QualityThresholds


def assess(m: Measurement, readout: Readout, *, thresholds: QualityThresholds | None = None,
           notes: tuple[str, ...] = (), input_flags: tuple[str, ...] = ()) -> Verdict:
    """Judge a measurement: "ok" only when every flag is informative (``thresholds.info_flags``).

    Args:
        m: the measurement (:func:`fetalhc.measurement.measure`); read, never recomputed.
        readout: its clinical read-out; its flags are kept and count towards the status.
        thresholds: limits of the checks; :class:`QualityThresholds` defaults when ``None``.
        notes: remarks from loading the image (e.g. conflicting DICOM spacings), kept as
            ``source_note`` flags, which send the reading to review.
        input_flags: flags the caller raised about the inputs (e.g. ``pixel_size_overridden``).
    """
    t = thresholds or QualityThresholds()
    flags = [make_flag("source_note", n) for n in notes] + list(input_flags)
    flags += readout.flags
    flags += _check_pixel_size(m, t)
    flags += _check_hc_range(m, t)
    ell = m.ellipse
    if m.mask_area_px == 0:
        flags.append(make_flag(FLAG_NO_HEAD, "the segmentation mask is empty"))
    elif ell is None or ell.semi_axis_b_px <= 0:
        flags.append(make_flag(FLAG_NO_HEAD, f"mask of {m.mask_area_px} px but no ellipse could be fitted"))
    else:
        flags += _check_geometry(m, ell, t)
        flags += _check_confidence(m, t)
    flags += _check_crops(m, t)
    flags += _check_band(m, t)
    flags += _check_interval(m, t)
    unique = tuple(dict.fromkeys(flags))
    review = [f for f in unique if flag_code(f) not in t.info_flags]
    return Verdict("review" if review else "ok", unique, t)


def _check_pixel_size(m: Measurement, t: QualityThresholds) -> list[str]:
    s = m.pixel_size_mm
    if s is None:
        return [make_flag(FLAG_PIXEL_SIZE_MISSING, "no pixel size, lengths in pixels only")]
    lo, hi = t.pixel_size_range_mm
    if not (math.isfinite(s) and lo <= s <= hi):
        return [make_flag(FLAG_PIXEL_SIZE_IMPLAUSIBLE, f"pixel size {s:.4g} mm outside {lo:g}-{hi:g} mm "
                          f"(source: {m.pixel_size_source})")]
    return []


def _check_hc_range(m: Measurement, t: QualityThresholds) -> list[str]:
    hc = m.hc_mm
    lo, hi = t.hc_range_mm
    if hc is None or lo <= hc <= hi:
        return []
    return [make_flag(FLAG_HC_RANGE, f"HC {hc:.1f} mm outside the plausible {lo:g}-{hi:g} mm")]


def _check_geometry(m: Measurement, ell: Ellipse, t: QualityThresholds) -> list[str]:
    flags = []
    h, w = m.image_shape_hw
    limit = t.border_touch_max_frac * ell.perimeter_px
    outside = m.ellipse_outside_px or 0.0
    if m.border_contact_px > limit:
        flags.append(make_flag(FLAG_BORDER, f"mask runs along the image border for {m.border_contact_px} px "
                               f"(limit {limit:.0f} px)"))
    elif outside > t.ellipse_outside_max_px:
        flags.append(make_flag(FLAG_BORDER, f"fitted ellipse reaches {outside:.0f} px beyond the image"))
    area_frac = float(m.mask_area_px) / float(h * w)
    if not t.min_area_frac <= area_frac <= t.max_area_frac:
        flags.append(make_flag(FLAG_IMPLAUSIBLE_MASK, f"mask covers {100 * area_frac:.2f} % of the image "
                               f"(plausible {100 * t.min_area_frac:g}-{100 * t.max_area_frac:g} %)"))
    aspect = ell.semi_axis_b_px / ell.semi_axis_a_px
    if aspect < t.min_aspect_ratio:
        flags.append(make_flag(FLAG_IMPLAUSIBLE_MASK, f"axis ratio b/a {aspect:.2f} < {t.min_aspect_ratio:g}"))
    residual = 1.0 - (m.fit_iou or 0.0)
    if residual > t.max_fit_residual:
        flags.append(make_flag(FLAG_FIT_RESIDUAL, f"mask and fitted ellipse disagree, 1 - IoU = {residual:.3f} > "
                               f"{t.max_fit_residual:g}"))
    return flags


def _check_confidence(m: Measurement, t: QualityThresholds) -> list[str]:
    conf = m.edge_confidence
    if conf is not None and conf < t.min_edge_confidence:
        return [make_flag(FLAG_LOW_CONFIDENCE,
                          f"mean edge certainty |2p-1| = {conf:.2f} < {t.min_edge_confidence:g}")]
    return []


def _check_crops(m: Measurement, t: QualityThresholds) -> list[str]:
    hcs = [x for x in m.crop_hc_px if math.isfinite(x)]
    if len(hcs) < 2:
        return []
    med = float(np.median(hcs))
    if med <= 0:
        return []
    spread = (max(hcs) - min(hcs)) / med
    if spread <= t.max_crop_spread:
        return []
    return [make_flag(FLAG_CROPS_DISAGREE, f"{len(hcs)} crop HCs {min(hcs):.0f}-{max(hcs):.0f} px, "
                      f"spread {100 * spread:.1f} % > {100 * t.max_crop_spread:g} %")]


def _check_band(m: Measurement, t: QualityThresholds) -> list[str]:
    band = m.hc_band_mm
    if band is None or band <= t.max_hc_band_mm:
        return []
    return [make_flag(FLAG_HC_UNCERTAIN, f"HC uncertainty band {band:.1f} mm > {t.max_hc_band_mm:g} mm "
                      "(outlines at low and high head probability differ)")]


def _check_interval(m: Measurement, t: QualityThresholds) -> list[str]:
    lo, hi = m.hc_low_mm, m.hc_high_mm
    if lo is None or hi is None or (hi - lo) / 2.0 <= t.max_interval_half_width_mm + 1e-9:
        return []
    return [make_flag(FLAG_INTERVAL_WIDE, f"90 % interval {lo:.1f}-{hi:.1f} mm wider than "
                      f"+-{t.max_interval_half_width_mm:.1f} mm")]


def _as_float(v: Any) -> float | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def calibrate_report(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of how the flags split a validation table (one dict per image).

    Each row needs ``abs_err_mm`` (absolute HC error, mm; empty/None when not measured),
    ``status`` ("ok", "review", ...) and optionally ``flags`` ("code: reason" joined by ';').
    Returns the fraction sent to review, the mean absolute difference (ADF, mm) of "ok" and
    of "review" rows, how many errors above 4 mm and above 6 mm review caught, and per flag
    code its count, its mean error and how many > 4 mm errors it alone would catch.
    """
    n = len(rows)
    errs = [_as_float(r.get("abs_err_mm")) for r in rows]
    is_review = [str(r.get("status", "")).strip() != "ok" for r in rows]
    ok_errs = [e for e, rv in zip(errs, is_review, strict=True) if not rv and e is not None]
    rv_errs = [e for e, rv in zip(errs, is_review, strict=True) if rv and e is not None]
    out: dict[str, Any] = {
        "n": n,
        "n_review": sum(is_review),
        "fraction_review": sum(is_review) / n if n else None,
        "adf_ok_mm": float(np.mean(ok_errs)) if ok_errs else None,
        "adf_review_mm": float(np.mean(rv_errs)) if rv_errs else None,
        "adf_all_mm": float(np.mean(ok_errs + rv_errs)) if ok_errs or rv_errs else None,
    }
    for lim in (4, 6):
        big = [rv for e, rv in zip(errs, is_review, strict=True) if e is not None and e > lim]
        out[f"errors_over_{lim}mm"] = len(big)
        out[f"errors_over_{lim}mm_caught"] = sum(big)
        out[f"fraction_over_{lim}mm_caught"] = sum(big) / len(big) if big else None
    by_flag: dict[str, dict[str, Any]] = {}
    for r, e in zip(rows, errs, strict=True):
        codes = {flag_code(f) for f in decode_flags(r.get("flags"))}
        for c in codes:
            d = by_flag.setdefault(c, {"n": 0, "errs": [], "over_4mm": 0})
            d["n"] += 1
            if e is not None:
                d["errs"].append(e)
                d["over_4mm"] += e > 4
    out["by_flag"] = {
        c: {"n": d["n"], "adf_mm": float(np.mean(d["errs"])) if d["errs"] else None, "errors_over_4mm": d["over_4mm"]}
        for c, d in sorted(by_flag.items())
    }
    return out


def band_sweep(rows: list[dict[str, Any]], limits_mm: tuple[float, ...] = (6.0, 7.0, 8.0, 9.0, 10.0, 12.0),
               info_flags: frozenset[str] = INFO_FLAGS) -> list[dict[str, Any]]:
    """What other ``max_hc_band_mm`` limits would do on a validation table (rows as in
    :func:`calibrate_report`, with ``hc_band_mm``): per limit, the fraction sent to review (by
    the band or by any other review flag), how many errors above 4 and 6 mm that catches, and
    the ADF (mm) of the ok and review readings."""
    out = []
    for limit in limits_mm:
        swept = []
        for r in rows:
            others = [f for f in decode_flags(r.get("flags"))
                      if flag_code(f) not in info_flags and flag_code(f) != FLAG_HC_UNCERTAIN]
            band = _as_float(r.get("hc_band_mm"))
            failed = str(r.get("status", "")).strip() not in ("ok", "review")
            review = failed or bool(others) or (band is not None and band > limit)
            swept.append({**r, "status": "review" if review else "ok"})
        rep = calibrate_report(swept)
        out.append({"max_hc_band_mm": limit, **{k: rep[k] for k in (
            "fraction_review", "adf_ok_mm", "adf_review_mm", "errors_over_4mm", "errors_over_4mm_caught",
            "errors_over_6mm", "errors_over_6mm_caught")}})
    return out
