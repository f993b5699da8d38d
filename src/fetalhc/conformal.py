"""Split-conformal intervals for the reference head circumference.

The score of a calibration image is ``|ref - hc| / sigma(x)`` (pixels of perimeter over
pixels), with ``sigma = a + b * signal`` and ``signal`` a per-image uncertainty measure in
pixels (see :class:`IntervalCalibration`). With ``q`` the ``ceil((n + 1)(1 - alpha))``-th
smallest of the ``n`` calibration scores, ``hc +- q * sigma(x)`` covers the reference with
probability at least ``1 - alpha`` on exchangeable new images (Vovk et al. 2005; Lei et al.
2018, "Distribution-free predictive inference for regression").

Pure functions; the constants live in a JSON file beside the model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

FLAG_INTERVAL_WIDE = "interval_wide"


@dataclass(frozen=True)
class IntervalCalibration:
    """Constants of the interval and of the review limit.

    Attributes:
        alpha: miscoverage; the interval is nominally ``1 - alpha``.
        signal: name of the uncertainty signal (pixels) that scales the interval.
        a_px, b: ``sigma = a_px + b * signal`` (pixels of perimeter).
        q: conformal quantile of the normalised scores.
        max_half_width_mm: review limit: the interval's half-width (mm); wider intervals get
            the ``interval_wide`` flag. ``inf`` disables it.
        n_calibration: number of calibration images.
        made_by: how the constants were made (command, split, model).
        settings: the views it was calibrated for, as results label them
            (``PipelineConfig.crop_label``, e.g. "full+zoomflip"); "" = not stated (any settings).
    """

    alpha: float
    signal: str
    a_px: float
    b: float
    q: float
    max_half_width_mm: float = math.inf
    n_calibration: int = 0
    made_by: dict[str, Any] = field(default_factory=dict)
    settings: str = ""

    def sigma_px(self, signal_px: float) -> float:
        """The per-image scale (pixels) for an uncertainty signal (pixels)."""
        return self.a_px + self.b * float(signal_px)


def conformal_quantile(scores: ArrayLike, alpha: float) -> float:
    """The ``ceil((n + 1)(1 - alpha))``-th smallest score (``inf`` when that exceeds ``n``)."""
    s = np.sort(np.asarray(scores, float))
    if s.ndim != 1 or len(s) == 0:
        raise ValueError("conformal_quantile needs a non-empty 1-D array of scores")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    k = math.ceil((len(s) + 1) * (1.0 - alpha))
    return math.inf if k > len(s) else float(s[k - 1])


def fit_scale(abs_residual_px: ArrayLike, signal_px: ArrayLike, min_a_px: float = 0.5) -> tuple[float, float]:
    """``(a, b)`` of ``sigma = a + b * signal`` by least squares of |residual| on the signal,
    with ``b >= 0`` and ``a >= min_a_px`` (so that no interval collapses to a point)."""
    r, x = np.asarray(abs_residual_px, float), np.asarray(signal_px, float)
    if len(r) != len(x) or len(r) < 3:
        raise ValueError("fit_scale needs at least 3 residuals and signals of equal length")
    b, a = (np.polyfit(x, r, 1) if np.ptp(x) > 0 else (0.0, float(r.mean())))
    if b < 0:
        b, a = 0.0, float(r.mean())
    if a < min_a_px:  # refit the slope through the floor
        a = min_a_px
        b = max(0.0, float(np.dot(x, r - a) / max(np.dot(x, x), 1e-12)))
    return float(a), float(b)


def calibrate(ref_px: ArrayLike, hc_px: ArrayLike, signal_px: ArrayLike, alpha: float = 0.1,
              signal: str = "signal", scale: tuple[float, float] | None = None) -> IntervalCalibration:
    """Calibrate on images the model never saw: reference and measured HC and the signal, all
    in pixels. ``scale`` fixes ``(a, b)``; otherwise :func:`fit_scale` sets them from the same
    residuals (a small departure from strict split conformal; the measured coverage on a
    separate validation half is the check)."""
    ref, hc, sig = (np.asarray(v, float) for v in (ref_px, hc_px, signal_px))
    res = np.abs(ref - hc)
    a, b = scale if scale is not None else fit_scale(res, sig)
    scores = res / (a + b * sig)
    return IntervalCalibration(alpha=alpha, signal=signal, a_px=a, b=b, q=conformal_quantile(scores, alpha),
                               n_calibration=len(ref))


def interval_px(hc_px: float, signal_px: float, cal: IntervalCalibration) -> tuple[float, float]:
    """``(low, high)`` pixels: ``hc -+ q * sigma(signal)``, low clipped at 0."""
    half = cal.q * cal.sigma_px(signal_px)
    return max(0.0, hc_px - half), hc_px + half


def interval_too_wide(low_mm: float, high_mm: float, cal: IntervalCalibration) -> bool:
    """True when the interval's half-width (mm) exceeds the calibrated review limit."""
    return (high_mm - low_mm) / 2.0 > cal.max_half_width_mm + 1e-9  # (rounding at the limit itself)


def review_limit(half_width_mm: ArrayLike, gross: ArrayLike, share: float) -> float:
    """The smallest half-width limit (mm; review when wider) at which at most ``share`` of the
    calibration images go to review, counting those a gross-failure flag (``gross``) sends there."""
    w, g = np.asarray(half_width_mm, float), np.asarray(gross, bool)
    if not 0.0 <= share < 1.0:
        raise ValueError(f"share must lie in [0, 1), got {share}")
    for h in sorted(set(w.tolist())):  # the smallest limit that keeps the share
        if float(np.mean(g | (w > h))) <= share:
            return h
    return math.inf


def calibrate_rows(rows: list[dict[str, Any]], signal_col: str = "hc_band_mm", alpha: float = 0.1,
                   review_share: float = 0.12, gross_col: str = "gross") -> IntervalCalibration:
    """Calibrate the interval and the review limit on evaluation rows (one per image, images the
    model never saw): ``hc_ref_mm``, ``hc_mm``, ``pixel_size_mm``, the signal column (mm; turned into
    pixels here) and a boolean ``gross`` (sent to review by a gross-failure flag). Rows without a
    measurement or a signal count as gross failures for the review share only."""
    use = [r for r in rows if r.get("hc_mm") is not None and r.get(signal_col) is not None]
    ps = np.array([float(r["pixel_size_mm"]) for r in use])
    ref = np.array([float(r["hc_ref_mm"]) for r in use]) / ps
    hc = np.array([float(r["hc_mm"]) for r in use]) / ps
    sig = np.array([float(r[signal_col]) for r in use]) / ps
    cal = calibrate(ref, hc, sig, alpha, signal_col.replace("_mm", "_px"))
    half = cal.q * (cal.a_px + cal.b * sig) * ps
    gross = [bool(r.get(gross_col)) for r in use] + [True] * (len(rows) - len(use))
    half_all = np.concatenate([half, np.zeros(len(rows) - len(use))])
    return replace(cal, max_half_width_mm=review_limit(half_all, gross, review_share))


def interval_fields(hc_px: float, signal_px: float, pixel_size_mm: float | None,
                    cal: IntervalCalibration) -> dict[str, Any]:
    """The result fields of the interval: ``hc_low_px``, ``hc_high_px``, their ``_mm`` twins (None
    without a pixel size) and ``wide`` (True when the interval is too wide to be useful)."""
    lo, hi = interval_px(hc_px, signal_px, cal)
    s = pixel_size_mm
    out: dict[str, Any] = {"hc_low_px": lo, "hc_high_px": hi, "hc_low_mm": None if s is None else lo * s,
                           "hc_high_mm": None if s is None else hi * s}
    out["wide"] = s is not None and interval_too_wide(lo * s, hi * s, cal)
    return out


def save(cal: IntervalCalibration, path: Path) -> None:
    """Write the constants as JSON (``inf`` as the string "inf")."""
    d = asdict(cal)
    d = {k: ("inf" if isinstance(v, float) and math.isinf(v) else v) for k, v in d.items()}
    path.write_text(json.dumps(d, indent=2) + "\n")


def load(path: Path) -> IntervalCalibration:
    """Read the constants written by :func:`save`; a clear error names a damaged file."""
    try:
        d = json.loads(path.read_text())
        d = {k: (math.inf if v == "inf" else v) for k, v in d.items()}
        return IntervalCalibration(**d)
    except (OSError, ValueError, TypeError) as e:
        raise ValueError(f"{path}: not a valid interval calibration ({e})") from e
