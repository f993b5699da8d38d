"""Stage 9: quality flags. Decide ``status`` = "ok" | "review" and say why.

Each check appends ``"code: reason"`` to ``result.flags``. A result is "ok" only when every
flag it carries is informative (:attr:`QualityThresholds.info_flags`: the cephalic-index and
formula-range flags of :mod:`fetalhc.clinical`, which leave the HC itself in no doubt); any
other flag, including one this module does not know, sends it to "review".

All thresholds live in :class:`QualityThresholds`. The defaults are first guesses from
geometry and from the HC18 training set (HC 44-346 mm, pixel size 0.049-0.39 mm, ellipse
perimeters 440-1790 px on 800x540 images); :func:`calibrate_report` summarises a per-image
validation table so that they can be tuned.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from fetalhc.clinical import INFO_FLAGS, add_flag
from fetalhc.ellipse import Ellipse
from fetalhc.results import MeasureResult

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
        min_boundary_confidence: mean |2p - 1| of the probability in a band of
            +-``confidence_band_px`` around the mask edge; 0.5 is reached by a logistic edge
            about 3 px wide (a sharp network edge gives > 0.8).
        confidence_band_px: half-width (px) of that band.
        max_hc_band_mm: widest acceptable HC uncertainty band (``result.hc_band_mm``: ellipse
            HC at head probability 0.2 minus that at 0.8), mm. 8 mm is +-4 mm of HC, about +-2.5 days
            of growth at 20 weeks (HC grows some 11 mm a week then).
        pixel_size_range_mm: plausible pixel size (mm); HC18 spans 0.049-0.39 mm.
        hc_range_mm: plausible trans-thalamic HC (mm): 40 mm is about 11 weeks (HC18's smallest
            head is 44.3 mm), 400 mm lies above the INTERGROWTH-21st +3 SD at 40 weeks (372.7 mm).
        info_flags: flag codes that do not on their own send a result to review.

    Calibration (HC18 validation split, 129 images, shipped model, four corner crops): the edge
    confidence ranged 0.40-0.68 and the crop spread 0.001-0.021; neither ranks the HC error
    (ROC AUC for errors > 4 mm: 0.49 and 0.56), so ``min_boundary_confidence`` = 0.40 and
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
    min_boundary_confidence: float = 0.40
    max_hc_band_mm: float = 8.0
    confidence_band_px: int = 7
    pixel_size_range_mm: tuple[float, float] = (0.02, 1.0)
    hc_range_mm: tuple[float, float] = (40.0, 400.0)
    info_flags: frozenset[str] = field(default_factory=lambda: INFO_FLAGS)


def flag_code(flag: str) -> str:
    """The code of a ``"code: reason"`` flag."""
    return flag.split(":", 1)[0].strip()


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


def _ellipse_of(result: MeasureResult) -> Ellipse | None:
    r = result
    if None in (r.center_x_px, r.center_y_px, r.semi_axis_a_px, r.semi_axis_b_px, r.angle_deg):
        return None
    assert r.center_x_px is not None and r.center_y_px is not None and r.angle_deg is not None
    assert r.semi_axis_a_px is not None and r.semi_axis_b_px is not None
    return Ellipse(r.center_x_px, r.center_y_px, r.semi_axis_a_px, r.semi_axis_b_px, r.angle_deg)


def assess(result: MeasureResult, *, mask: NDArray[np.generic] | None, probability: NDArray[np.floating] | None,
           image_shape_hw: tuple[int, int], thresholds: QualityThresholds | None = None) -> None:
    """Set ``result.status`` to "ok" or "review" and append the quality flags with their reasons.

    Args:
        result: a measured result; flags already present (e.g. from :func:`fetalhc.clinical.annotate`)
            are kept and count towards the status.
        mask: binary head mask (H, W), or ``None`` when segmentation found nothing.
        probability: head probability (H, W) in [0, 1], or ``None``; used for the boundary
            confidence (also stored in ``result.mean_confidence`` when that is unset).
        image_shape_hw: (height, width) of the image in pixels.
        thresholds: limits of the checks; :class:`QualityThresholds` defaults when ``None``.

    A result with ``error`` set keeps status "failed".
    """
    t = thresholds or QualityThresholds()
    h, w = int(image_shape_hw[0]), int(image_shape_hw[1])
    _check_pixel_size(result, t)
    _check_hc_range(result, t)
    m = None if mask is None else np.asarray(mask) > 0
    ell = _ellipse_of(result)
    if m is None or not m.any():
        add_flag(result, FLAG_NO_HEAD, "the segmentation mask is empty")
    elif ell is None or ell.semi_axis_b_px <= 0:
        add_flag(result, FLAG_NO_HEAD, f"mask of {int(m.sum())} px but no ellipse could be fitted")
    else:
        _check_geometry(result, m, ell, (h, w), t)
        _check_confidence(result, m, probability, t)
    _check_crops(result, t)
    _check_band(result, t)
    if result.error is not None:
        result.status = "failed"
        return
    review = [f for f in result.flags if flag_code(f) not in t.info_flags]
    result.status = "review" if review else "ok"


def _check_pixel_size(result: MeasureResult, t: QualityThresholds) -> None:
    s = result.pixel_size_mm
    if s is None:
        add_flag(result, FLAG_PIXEL_SIZE_MISSING, "no pixel size, lengths in pixels only")
        return
    lo, hi = t.pixel_size_range_mm
    if not (math.isfinite(s) and lo <= s <= hi):
        add_flag(result, FLAG_PIXEL_SIZE_IMPLAUSIBLE,
                 f"pixel size {s:.4g} mm outside {lo:g}-{hi:g} mm (source: {result.pixel_size_source})")


def _check_hc_range(result: MeasureResult, t: QualityThresholds) -> None:
    if result.hc_mm is None:
        return
    lo, hi = t.hc_range_mm
    if not lo <= result.hc_mm <= hi:
        add_flag(result, FLAG_HC_RANGE, f"HC {result.hc_mm:.1f} mm outside the plausible {lo:g}-{hi:g} mm")


def _check_geometry(result: MeasureResult, m: NDArray[np.bool_], ell: Ellipse, shape_hw: tuple[int, int],
                    t: QualityThresholds) -> None:
    h, w = shape_hw
    touch = border_contact_px(m)
    limit = t.border_touch_max_frac * ell.perimeter_px
    outside = ellipse_outside_px(ell, (h, w))
    if touch > limit:
        add_flag(result, FLAG_BORDER, f"mask runs along the image border for {touch} px (limit {limit:.0f} px)")
    elif outside > t.ellipse_outside_max_px:
        add_flag(result, FLAG_BORDER, f"fitted ellipse reaches {outside:.0f} px beyond the image")

    area_frac = float(m.sum()) / float(h * w)
    if not t.min_area_frac <= area_frac <= t.max_area_frac:
        add_flag(result, FLAG_IMPLAUSIBLE_MASK, f"mask covers {100 * area_frac:.2f} % of the image "
                 f"(plausible {100 * t.min_area_frac:g}-{100 * t.max_area_frac:g} %)")
    aspect = ell.semi_axis_b_px / ell.semi_axis_a_px
    if aspect < t.min_aspect_ratio:
        add_flag(result, FLAG_IMPLAUSIBLE_MASK, f"axis ratio b/a {aspect:.2f} < {t.min_aspect_ratio:g}")

    residual = 1.0 - mask_ellipse_iou(m, ell)
    if residual > t.max_fit_residual:
        add_flag(result, FLAG_FIT_RESIDUAL,
                 f"mask and fitted ellipse disagree, 1 - IoU = {residual:.3f} > {t.max_fit_residual:g}")


def _check_confidence(result: MeasureResult, m: NDArray[np.bool_], probability: NDArray[np.floating] | None,
                      t: QualityThresholds) -> None:
    conf: float | None = None
    if probability is not None:
        p = np.asarray(probability)
        if p.shape != m.shape:
            raise ValueError(f"probability shape {p.shape} differs from mask shape {m.shape}")
        conf = boundary_confidence(p, m, t.confidence_band_px)
        if result.mean_confidence is None:
            result.mean_confidence = conf
    elif result.mean_confidence is not None:
        conf = result.mean_confidence
    if conf is not None and conf < t.min_boundary_confidence:
        add_flag(result, FLAG_LOW_CONFIDENCE,
                 f"mean boundary certainty |2p-1| = {conf:.2f} < {t.min_boundary_confidence:g}")


def _check_crops(result: MeasureResult, t: QualityThresholds) -> None:
    hcs = [float(x) for x in result.crop_hc_px if x is not None and math.isfinite(float(x))]
    if len(hcs) < 2:
        return
    med = float(np.median(hcs))
    if med <= 0:
        return
    spread = (max(hcs) - min(hcs)) / med
    if spread > t.max_crop_spread:
        add_flag(result, FLAG_CROPS_DISAGREE, f"{len(hcs)} crop HCs {min(hcs):.0f}-{max(hcs):.0f} px, "
                 f"spread {100 * spread:.1f} % > {100 * t.max_crop_spread:g} %")


def _check_band(result: MeasureResult, t: QualityThresholds) -> None:
    band = result.hc_band_mm
    if band is not None and band > t.max_hc_band_mm:
        add_flag(result, FLAG_HC_UNCERTAIN, f"HC uncertainty band {band:.1f} mm > {t.max_hc_band_mm:g} mm "
                 "(outlines at low and high head probability differ)")


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
        codes = {flag_code(f) for f in str(r.get("flags") or "").split(";") if f.strip()}
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
            others = [f for f in str(r.get("flags") or "").split(";")
                      if f.strip() and flag_code(f) not in info_flags and flag_code(f) != FLAG_HC_UNCERTAIN]
            band = _as_float(r.get("hc_band_mm"))
            failed = str(r.get("status", "")).strip() not in ("ok", "review")
            review = failed or bool(others) or (band is not None and band > limit)
            swept.append({**r, "status": "review" if review else "ok"})
        rep = calibrate_report(swept)
        out.append({"max_hc_band_mm": limit, **{k: rep[k] for k in (
            "fraction_review", "adf_ok_mm", "adf_review_mm", "errors_over_4mm", "errors_over_4mm_caught",
            "errors_over_6mm", "errors_over_6mm_caught")}})
    return out
