"""Statistics for an honest evaluation: bootstrap confidence intervals resampled by patient,
errors by head size (mm and pixels), interval coverage and width, and the review trade-off.

Pure functions over per-image rows (dicts as written by :mod:`fetalhc.evaluate`): ``patient``,
``pixel_size_mm``, ``hc_ref_mm``, ``hc_mm``, ``status`` and, where present, ``hc_low_mm`` /
``hc_high_mm``.
"""

from __future__ import annotations

import math
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


def _noise_moments(d_ref: np.ndarray, d_auto: np.ndarray, slope: float) -> tuple[float, float]:
    """(per-image reference noise variance, per-image independent model-error variance), mm²."""
    cov = float(np.mean(d_ref * d_auto))
    var_dt = cov / slope  # variance of the true within-patient difference
    return (float(np.mean(d_ref**2)) - var_dt) / 2, (float(np.mean(d_auto**2)) - slope**2 * var_dt) / 2


def reference_noise(rows: Sequence[dict[str, Any]], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """How much of the references' own scatter no measurement can follow, from patients with two or more images.

    Model: ``ref = t + e`` and ``auto = a + b t + m``, where ``t`` is what the image shows, ``e`` the
    reference's placement noise and ``m`` the measurement's error; ``e`` is independent of ``t``,
    of ``m`` and between images, and ``m`` is uncorrelated with ``t``. For every pair of measured
    images of one patient (either order), with ``d_ref = ref_i - ref_j``, ``d_auto = auto_i - auto_j``
    and ``dt``, ``de``, ``dm`` the same differences (mm; moments uncentred)::

        E[d_ref d_auto] = b E[dt²],   E[d_ref²] = E[dt²] + 2 Var(e),   E[d_auto²] = b² E[dt²] + E[dm²]

    so ``Var(e) = (E[d_ref²] - E[d_ref d_auto] / b) / 2``, with ``b`` the slope of ``auto`` on
    ``ref`` over all rows (its attenuation by ``Var(e)`` is negligible beside the spread of HC).
    ``E[dm²] / 2`` is the part of the measurement's error that differs between images of one
    patient. A part of ``e`` shared by a patient's images, or one the measurement learnt to
    predict, is not counted (``Var(e)`` is then too low); a measurement whose errors follow the
    reference's (memorised labels) lowers it too. Against such references even an exact
    measurement of ``t`` has ADF ``E|e|``: ``sqrt(2/pi) sd(e)`` for normal noise, at most ``sd(e)``.

    Returns counts, ``b``, ``var_ref_noise_mm2`` and ``var_auto_indep_mm2``, ``sd_ref_noise_mm`` and
    ``adf_floor_normal_mm``, each with a 95 % percentile CI from a patient bootstrap (``b``
    re-estimated in each draw; unreliable where one pair carries much of the sum), and the mean
    squared error over all rows (``mse_mm2``) and over the images of patients with pairs
    (``mse_paired_mm2``, the one to set ``var_ref_noise_mm2`` against); as a sensitivity look, the
    largest pair's share of ``var_ref_noise_mm2`` and the estimate without the two largest pairs.
    """
    ok = _measured(rows)
    by_patient: dict[str, list[tuple[float, float]]] = {}
    for r in ok:
        by_patient.setdefault(str(r["patient"]), []).append((float(r["hc_ref_mm"]), float(r["hc_mm"])))
    patients = sorted(by_patient)
    pair_ref: list[list[float]] = []
    pair_auto: list[list[float]] = []
    for p in patients:
        imgs = by_patient[p]
        pair_ref.append([imgs[i][0] - imgs[j][0] for i in range(len(imgs)) for j in range(i + 1, len(imgs))])
        pair_auto.append([imgs[i][1] - imgs[j][1] for i in range(len(imgs)) for j in range(i + 1, len(imgs))])
    n_pairs = sum(len(d) for d in pair_ref)
    if n_pairs < 2:
        raise ValueError(f"reference_noise: {n_pairs} within-patient pairs; need at least 2")

    def estimate(idx: Sequence[int] | np.ndarray) -> tuple[float, float, float]:
        ref = np.array([v for i in idx for v, _ in by_patient[patients[i]]])
        auto = np.array([v for i in idx for _, v in by_patient[patients[i]]])
        slope = float(np.polyfit(ref, auto, 1)[0])
        d_ref = np.array([v for i in idx for v in pair_ref[i]])
        d_auto = np.array([v for i in idx for v in pair_auto[i]])
        return (slope, *_noise_moments(d_ref, d_auto, slope))

    slope, var_e, var_m = estimate(range(len(patients)))
    rng = np.random.default_rng(seed)
    draws = np.array([estimate(rng.integers(0, len(patients), len(patients))) for _ in range(n_boot)])
    sd_e = math.sqrt(max(var_e, 0.0))
    d_ref_all = np.array([v for d in pair_ref for v in d])
    terms = (d_ref_all**2 - d_ref_all * np.array([v for d in pair_auto for v in d]) / slope) / 2  # mean = var_e
    top2 = np.argsort(-np.abs(terms))[:2]
    sd_draws = np.sqrt(np.maximum(draws[:, 1], 0.0))
    paired = [p for p, d in zip(patients, pair_ref, strict=True) if d]
    return {
        "n_images": len(ok), "n_patients": len(patients), "n_pairs": n_pairs,
        "n_patients_with_pairs": sum(bool(d) for d in pair_ref), "slope": slope,
        "var_ref_noise_mm2": var_e, "ci95_var_ref_noise_mm2": np.quantile(draws[:, 1], [0.025, 0.975]).tolist(),
        "var_auto_indep_mm2": var_m, "ci95_var_auto_indep_mm2": np.quantile(draws[:, 2], [0.025, 0.975]).tolist(),
        "sd_ref_noise_mm": sd_e, "ci95_sd_ref_noise_mm": np.quantile(sd_draws, [0.025, 0.975]).tolist(),
        "adf_floor_normal_mm": math.sqrt(2 / math.pi) * sd_e,
        "ci95_adf_floor_normal_mm": (math.sqrt(2 / math.pi) * np.quantile(sd_draws, [0.025, 0.975])).tolist(),
        "mse_mm2": float(np.mean([(float(r["hc_mm"]) - float(r["hc_ref_mm"])) ** 2 for r in ok])),
        "mse_paired_mm2": float(np.mean([(a - r) ** 2 for p in paired for r, a in by_patient[p]])),
        "largest_pair_share_of_var_ref_noise": float(terms[top2[0]] / terms.sum()) if terms.sum() else None,
        "var_ref_noise_without_2_largest_pairs_mm2": float(np.delete(terms, top2).mean()) if n_pairs > 2 else None,
    }
