"""``fetalhc evaluate``: score the pipeline on a labelled HC18 split.

Per image: Dice, Jaccard, Hausdorff distance (mm, between mask boundaries) against the
filled reference ellipse; the HC differences manual - automatic for the ellipse HC, the
patent's pixel-count length and the unbiased contour length. Summary: the patent's d and s
(cm and mm), the mean absolute difference (ADF, mm), and the quality-flag split.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.progress import Progress

from fetalhc.evalstats import evaluation_stats
from fetalhc.hc18 import HC18Case, load_split, read_cases, reference_mask
from fetalhc.io_utils import atomic_write_text, display_path, write_table
from fetalhc.metrics import agreement, dice_jaccard, hausdorff_mm, roc_auc
from fetalhc.pipeline import Pipeline, PipelineConfig
from fetalhc.quality import band_sweep, calibrate_report
from fetalhc.reader import load_image
from fetalhc.results import MeasureResult, assemble
from fetalhc.segmentation import ZoomSettings

#: evaluation mode -> pipeline settings
MODES: dict[str, PipelineConfig] = {
    "default": PipelineConfig(),  # 0.4: full@0.5+zoomflip (half-size locate pass, self-checked zoom)
    # "full" and "corners" keep their 0.2 meaning: the views + the zoom pass averaged in
    "full": PipelineConfig(crop_mode="full", zoom=ZoomSettings()),
    "corners": PipelineConfig(crop_mode="corners"),
    "corners+flips": PipelineConfig(crop_mode="corners", flips=True),
    "corners+full": PipelineConfig(crop_mode="corners+full"),
    "corners+full+flips": PipelineConfig(crop_mode="corners+full", flips=True),
    # before 0.2 (issue 9): no zoom pass, ellipse fitted to the smoothed mask, no interval
    "corners-legacy": PipelineConfig(crop_mode="corners", zoom=None, outline="mask", robust_fit=False, interval=False),
    "full+zoomflip": PipelineConfig(crop_mode="full", zoom=ZoomSettings(weight=1.0, flip=True)),  # 0.3's default
    "full+zoom": PipelineConfig(crop_mode="full", zoom=ZoomSettings(weight=1.0)),
    # 0.4's default without the zoom's self-check (refine_iou=0): what the check is worth
    "full@0.5+zoomflip-unchecked": PipelineConfig(crop_mode="full", zoom=ZoomSettings(
        weight=1.0, flip=True, locate_scale=0.5)),
}

ESTIMATORS = {"ellipse": "hc_mm", "contour_cross": "patent_pixel_count_hc_mm", "contour_length": "contour_length_mm"}

CASE_COLUMNS = ("file", "patient", "pixel_size_mm", "hc_ref_mm", "hc_mm", "patent_pixel_count_hc_mm",
                "contour_length_mm", "dice", "jaccard", "hausdorff_mm", "abs_err_mm", "hc_band_mm", "edge_confidence",
                "crop_hc_spread", "status", "flags", "hc_low_mm", "hc_high_mm", "dice_ellipse", "hausdorff_ellipse_mm",
                "network_passes", "zoom_boxes")


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Summary of one mode's per-image rows."""
    ok = [r for r in rows if r.get("hc_mm") is not None]
    ref = np.array([r["hc_ref_mm"] for r in ok], float)
    out: dict[str, Any] = {
        "n": len(rows),
        "n_measured": len(ok),
        "dice_mean": float(np.mean([r["dice"] for r in rows])),
        "dice_sd": float(np.std([r["dice"] for r in rows])),
        "jaccard_mean": float(np.mean([r["jaccard"] for r in rows])),
        "hausdorff_mm_mean": float(np.mean([min(r["hausdorff_mm"], 1e3) for r in rows])),
        "dice_ellipse_mean": float(np.mean([r.get("dice_ellipse", 0.0) for r in rows])),
        "hausdorff_ellipse_mm_mean": float(np.mean([min(r.get("hausdorff_ellipse_mm", 1e3), 1e3) for r in rows])),
        # how many images took how many network calls, and how many were zoomed twice (the default:
        # 3 = half-size pass + zoom + flip, 4 = + a full-size second look, 5 = zoomed again, 6 = both;
        # 2 = no head found anywhere)
        "images_by_network_passes": _count(rows, "network_passes"),
        "images_by_zoom_boxes": _count(rows, "zoom_boxes"),
    }
    for name, col in ESTIMATORS.items():
        auto = np.array([r[col] for r in ok], float)
        out[name] = agreement(ref, auto) if len(ok) else {}
    out["quality"] = calibrate_report(rows)
    out["quality"]["hc_band_sweep"] = band_sweep(rows)
    # how well each per-image signal ranks the large errors (ROC AUC; 0.5 = no better than chance)
    # (each on the measured images where the signal exists; n says how many)
    measured = [r for r in ok if r.get("abs_err_mm") is not None]
    signals = {"hc_band_mm": ("hc_band_mm", 1.0), "low_edge_confidence": ("edge_confidence", -1.0),
               "crop_hc_spread": ("crop_hc_spread", 1.0)}  # name -> (column, sign: higher = less sure)
    aucs: dict[str, Any] = {}
    for name, (col, sign) in signals.items():
        have = [r for r in measured if r.get(col) is not None]
        if have:
            aucs[name] = {"auc": roc_auc(np.array([r["abs_err_mm"] > 4 for r in have]),
                                         sign * np.array([r[col] for r in have], float)), "n": len(have)}
    out["quality"]["auc_errors_over_4mm"] = aucs
    bins = [(0, 100), (100, 150), (150, 200), (200, 250), (250, 400)]
    out["stats"] = evaluation_stats(rows)  # ADF with patient-bootstrap CI, size bins (mm, px), interval, review
    out["adf_by_hc_mm"] = {
        f"{lo}-{hi}": {"n": len(sel), "adf_mm": float(np.mean([r["abs_err_mm"] for r in sel]))}
        for lo, hi in bins if (sel := [r for r in ok if lo <= r["hc_ref_mm"] < hi])
    }
    return out


def _count(rows: list[dict[str, Any]], col: str) -> dict[str, int]:
    """How many rows have each value of ``col`` (keys as text, sorted; rows without it left out)."""
    counts = Counter(int(r[col]) for r in rows if r.get(col) is not None)
    return {str(v): n for v, n in sorted(counts.items())}


def bland_altman_png(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    """Bland-Altman plot (mean of the two vs manual - automatic, mm) of the ellipse HC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("hc_mm") is not None]
    ref = np.array([r["hc_ref_mm"] for r in ok])
    auto = np.array([r["hc_mm"] for r in ok])
    mean, diff = (ref + auto) / 2, ref - auto
    md, sd = diff.mean(), diff.std(ddof=1)
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    ax.scatter(mean, diff, s=10, alpha=0.7)
    for y, ls in ((md, "-"), (md + 1.96 * sd, "--"), (md - 1.96 * sd, "--")):
        ax.axhline(y, color="k", linestyle=ls, linewidth=1)
    ax.set_xlabel("mean of manual and automatic HC (mm)")
    ax.set_ylabel("manual - automatic HC (mm)")
    ax.set_title(f"{title}: d = {md:+.2f} mm, 1.96 s = {1.96 * sd:.2f} mm (n = {len(ok)})")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def case_row(res: MeasureResult, case: HC18Case, ref: NDArray[np.uint8]) -> dict[str, Any]:
    """One per-image row: the result against the reference mask and HC."""
    pred = res.mask if res.mask is not None else np.zeros_like(ref)
    dice, jac = dice_jaccard(pred, ref)
    return {
        "file": case.filename, "patient": case.patient, "pixel_size_mm": case.pixel_size_mm,
        "hc_ref_mm": case.hc_mm, "hc_mm": res.hc_mm, "patent_pixel_count_hc_mm": res.patent_pixel_count_hc_mm,
        "contour_length_mm": res.contour_length_mm, "dice": dice, "jaccard": jac,
        "hausdorff_mm": hausdorff_mm(pred, ref, case.pixel_size_mm),
        "abs_err_mm": abs(case.hc_mm - res.hc_mm) if res.hc_mm is not None else None,
        "hc_band_mm": res.hc_band_mm, "edge_confidence": res.edge_confidence,
        "crop_hc_spread": (max(res.crop_hc_px) - min(res.crop_hc_px)) / float(np.median(res.crop_hc_px))
        if len(res.crop_hc_px) >= 2 else None,
        "status": res.status, "flags": list(res.flags),
        **interval_and_ellipse_columns(res, ref, case.pixel_size_mm),
    }


def interval_and_ellipse_columns(res: MeasureResult, ref: NDArray[np.uint8], pixel_size_mm: float) -> dict[str, Any]:
    """The interval's ends (mm) and Dice / Hausdorff of the filled fitted ellipse (the HC18
    challenge's convention: its submissions are ellipses) against the reference."""
    out: dict[str, Any] = {"hc_low_mm": res.hc_low_mm, "hc_high_mm": res.hc_high_mm, "dice_ellipse": 0.0,
                           "hausdorff_ellipse_mm": float("inf")}
    if res.ellipse is not None:
        em = res.ellipse.rasterize(ref.shape)
        out["dice_ellipse"] = dice_jaccard(em, ref)[0]
        out["hausdorff_ellipse_mm"] = hausdorff_mm(em, ref, pixel_size_mm)
    return out


def evaluate_modes(pipes: dict[str, Pipeline], data_dir: Path, files: list[str],
                   progress: Progress | None = None) -> dict[str, list[dict[str, Any]]]:
    """Per-image rows of each pipeline over ``files`` of HC18's training_set. Each image and
    its annotation are read and de-identified once (by the first pipeline's settings, which
    must match the others'), then measured by every pipeline."""
    import cv2

    cases = {c.filename: c for c in read_cases(data_dir)}
    deid = {(p.config.deidentify, p.config.deid_ocr) for p in pipes.values()}
    if len(deid) > 1:
        raise ValueError("evaluate_modes: all pipelines must share the de-identification settings")
    rows: dict[str, list[dict[str, Any]]] = {m: [] for m in pipes}
    task = progress.add_task("evaluate " + ", ".join(pipes), total=len(files)) if progress else None
    for f in files:
        case = cases[f]
        img = load_image(data_dir / "training_set" / f, pixel_size_mm=case.pixel_size_mm)
        ann_path = data_dir / "training_set" / f.replace(".png", "_Annotation.png")
        ann = cv2.imread(str(ann_path), cv2.IMREAD_GRAYSCALE)
        if ann is None:
            raise FileNotFoundError(f"{ann_path}: annotation missing or unreadable")
        ref, _ = reference_mask(ann)
        clean = next(iter(pipes.values())).deidentify(img)  # all modes share the de-identification
        for mode, pipe in pipes.items():
            outcome = pipe.analyse(clean)
            seg = outcome.segmentation
            rows[mode].append({**case_row(assemble(outcome), case, ref), "network_passes": seg.passes,
                               "zoom_boxes": len(seg.zoom_boxes)})
        if progress is not None and task is not None:
            progress.advance(task)
    return rows


def run_evaluation(data_dir: Path, split_file: Path, subset: str, out_dir: Path, modes: list[str],
                   limit: int | None = None, model_path: Path | None = None,
                   progress: Progress | None = None, deidentify: bool = True) -> dict[str, Any]:
    """Evaluate each mode; write ``<mode>_cases.csv``, ``<mode>_bland_altman.png`` and
    ``summary.json`` into ``out_dir``. Returns the summary."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; choose from {sorted(MODES)}")
    split = load_split(split_file)
    if subset not in split:
        raise ValueError(f"{split_file}: no list named {subset!r}")
    files = split[subset][:limit] if limit else split[subset]
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"split": display_path(split_file), "subset": subset, "n_images": len(files), "modes": {}}
    if progress is not None:
        progress.start()
    try:
        first = Pipeline(model_path, replace(MODES[modes[0]], deidentify=deidentify))
        pipes = {modes[0]: first}
        for mode in modes[1:]:  # one loaded model serves every mode
            pipes[mode] = first.with_config(replace(MODES[mode], deidentify=deidentify))
        summary["model_sha256"] = first.segmenter.info.sha256
        all_rows = evaluate_modes(pipes, data_dir, files, progress)
        for mode, rows in all_rows.items():
            safe = mode.replace("+", "_")
            write_table(out_dir / f"{safe}_cases.csv", rows, CASE_COLUMNS)
            bland_altman_png(rows, out_dir / f"{safe}_bland_altman.png", f"HC18 {subset}, {mode}")
            summary["modes"][mode] = summarize(rows)
    finally:
        if progress is not None:
            progress.stop()
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary
