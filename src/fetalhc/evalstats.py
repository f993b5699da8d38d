"""Statistics for an honest evaluation: bootstrap confidence intervals resampled by patient,
errors by head size (mm and pixels), interval coverage and width, and the review trade-off.

Pure functions over per-image rows (dicts as written by :mod:`fetalhc.evaluate`): ``patient``,
``pixel_size_mm``, ``hc_ref_mm``, ``hc_mm``, ``status`` and, where present, ``hc_low_mm`` /
``hc_high_mm``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

#: head-size bins of the reference HC (mm), lower bound inclusive
HC_BINS_MM = ((0.0, 100.0), (100.0, 150.0), (150.0, 200.0), (200.0, 250.0), (250.0, float("inf")))


def halve_by_patient(files: Sequence[str], seed: int = 9) -> tuple[list[str], list[str]]:
    """Split HC18 file names into two halves with no patient (the number before the first
    underscore) on both sides: patients sorted, shuffled with ``random.Random(seed)``, first
    half of them -> the first list. Both lists sorted."""
    patients = sorted({f.split("_", 1)[0] for f in files})
    random.Random(seed).shuffle(patients)
    first = set(patients[: len(patients) // 2])
    a = sorted(f for f in files if f.split("_", 1)[0] in first)
    b = sorted(f for f in files if f.split("_", 1)[0] not in first)
    return a, b


def _measured(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("hc_mm") not in (None, "")]


def bootstrap_ci(values: Sequence[float], groups: Sequence[str], n_boot: int = 2000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values``, resampling whole groups (patients)
    with replacement, so that images of one patient move together."""
    v = np.asarray(values, float)
    g = np.asarray(groups)
    if len(v) == 0:
        raise ValueError("bootstrap_ci: no values")
    uniq, inv = np.unique(g, return_inverse=True)
    sums = np.bincount(inv, weights=v, minlength=len(uniq))
    counts = np.bincount(inv, minlength=len(uniq)).astype(float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1.0 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def adf_with_ci(rows: Sequence[dict[str, Any]], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """ADF (mean |ref - auto|, mm) of the measured rows with its patient-level bootstrap 95 % CI."""
    ok = _measured(rows)
    if not ok:
        return {"n": 0}
    err = [abs(float(r["hc_ref_mm"]) - float(r["hc_mm"])) for r in ok]
    lo, hi = bootstrap_ci(err, [str(r["patient"]) for r in ok], n_boot, seed)
    return {"n": len(ok), "adf_mm": float(np.mean(err)), "ci95_mm": [lo, hi]}


def errors_by_size(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per reference-HC bin: n, ADF (mm), mean signed error ref - auto (mm), and the same in
    pixels of perimeter (mean |ref - auto| px, mean ref - auto px)."""
    out: dict[str, dict[str, float]] = {}
    for lo, hi in HC_BINS_MM:
        sel = [r for r in _measured(rows) if lo <= float(r["hc_ref_mm"]) < hi]
        if not sel:
            continue
        d_mm = np.array([float(r["hc_ref_mm"]) - float(r["hc_mm"]) for r in sel])
        d_px = d_mm / np.array([float(r["pixel_size_mm"]) for r in sel])
        name = f"<{hi:g}" if lo == 0 else (f">={lo:g}" if hi == float("inf") else f"{lo:g}-{hi:g}")
        out[name] = {"n": len(sel), "adf_mm": float(np.abs(d_mm).mean()), "d_mm": float(d_mm.mean()),
                     "adf_px": float(np.abs(d_px).mean()), "d_px": float(d_px.mean())}
    return out


def interval_stats(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Coverage of the reference HC by [hc_low_mm, hc_high_mm] and the median width (mm)."""
    sel = [r for r in _measured(rows) if r.get("hc_low_mm") not in (None, "") and r.get("hc_high_mm") not in (None, "")]
    if not sel:
        return {"n": 0}
    ref = np.array([float(r["hc_ref_mm"]) for r in sel])
    lo = np.array([float(r["hc_low_mm"]) for r in sel])
    hi = np.array([float(r["hc_high_mm"]) for r in sel])
    return {"n": len(sel), "coverage": float(((lo <= ref) & (ref <= hi)).mean()),
            "median_width_mm": float(np.median(hi - lo)), "mean_width_mm": float(np.mean(hi - lo))}


def review_tradeoff(rows: Sequence[dict[str, Any]], large_mm: float = 4.0) -> dict[str, Any]:
    """Share sent to review (any status but "ok"), ADF of the ``ok`` readings, and how many of
    the errors above ``large_mm`` review caught."""
    n = len(rows)
    if n == 0:
        return {"n": 0}
    ok = [r for r in _measured(rows) if str(r.get("status")) == "ok"]
    err = {id(r): abs(float(r["hc_ref_mm"]) - float(r["hc_mm"])) for r in _measured(rows)}
    large = [r for r in _measured(rows) if err[id(r)] > large_mm]
    ok_err = [err[id(r)] for r in ok]
    return {"n": n, "share_review": float(1 - len(ok) / n), "n_ok": len(ok),
            "adf_ok_mm": float(np.mean(ok_err)) if ok_err else None,
            f"errors_over_{large_mm:g}mm": len(large),
            f"errors_over_{large_mm:g}mm_caught": sum(str(r.get("status")) != "ok" for r in large)}


def evaluation_stats(rows: Sequence[dict[str, Any]], n_boot: int = 2000) -> dict[str, Any]:
    """All of the above for one table of rows."""
    return {"adf": adf_with_ci(rows, n_boot), "by_size": errors_by_size(rows), "interval": interval_stats(rows),
            "review": review_tradeoff(rows)}
