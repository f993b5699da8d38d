"""Segmentation and measurement agreement metrics (pure functions)."""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import hausdorff_distance

from fetalhc.boundary import patent_boundary


def dice_jaccard(pred: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Dice 2|A∩B|/(|A|+|B|) and Jaccard |A∩B|/|A∪B| of two binary masks."""
    a, b = pred > 0, ref > 0
    inter = float(np.logical_and(a, b).sum())
    s = float(a.sum() + b.sum())
    union = float(np.logical_or(a, b).sum())
    return (1.0 if s == 0 else 2 * inter / s), (1.0 if union == 0 else inter / union)


def hausdorff_mm(pred: np.ndarray, ref: np.ndarray, pixel_size_mm: float) -> float:
    """Hausdorff distance between the two masks' boundaries, in mm (inf if one is empty)."""
    if not pred.any() or not ref.any():
        return math.inf
    return float(hausdorff_distance(patent_boundary(pred) > 0, patent_boundary(ref) > 0)) * pixel_size_mm


def agreement(ref: np.ndarray, auto: np.ndarray) -> dict[str, float]:
    """The patent's d and s of (manual - automatic), in mm and cm, with ADF and spreads (mm)."""
    d = ref - auto
    ad = np.abs(d)
    return {
        "n": int(len(d)),
        "d_mm": float(d.mean()), "s_mm": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
        "d_cm": float(d.mean() / 10), "s_cm": float(d.std(ddof=1) / 10) if len(d) > 1 else 0.0,
        "adf_mm": float(ad.mean()), "median_abs_mm": float(np.median(ad)),
        "p95_abs_mm": float(np.percentile(ad, 95)), "max_abs_mm": float(ad.max()),
        "within_3mm": float((ad <= 3).mean()),
        "ratio_auto_to_ref": float((auto / ref).mean()),
    }


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for the boolean labels ``positive`` (ties count
    half; Mann-Whitney U / (n_pos n_neg)); None when either class is empty."""
    from scipy.stats import rankdata

    pos = np.asarray(positive, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(np.asarray(score, float))
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
