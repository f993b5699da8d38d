"""Test-time accuracy experiments (issue 9) on the 129 validation images, shipped ONNX model.

    python benchmarks/acc_experiments.py cache --cache /tmp/acc_cache      # network passes, once
    python benchmarks/acc_experiments.py score --cache /tmp/acc_cache --out docs/results/acc

``cache`` runs every network pass any variant needs (4 corners, their flips, the full image,
zoom boxes found from the corners' and from the full image's mask, each also flipped) and
stores the raw network outputs per image. ``score`` builds each named variant from them,
measures it (ellipse HC, Dice and Hausdorff of the mask and of the filled fitted ellipse,
uncertainty signals, quality flags) and writes ``<variant>_cases.csv`` per variant.
"""

from __future__ import annotations

import argparse
import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fetalhc.boundary import iso_contour_xy
from fetalhc.clinical import readout
from fetalhc.crops import CropBox, crop_boxes, extract_crop
from fetalhc.ellipse import Ellipse, fit_ellipse_points
from fetalhc.flags import flag_code
from fetalhc.fuse import binarize, fuse_probabilities
from fetalhc.hc18 import DEFAULT_SPLIT, default_data_dir, load_split, read_cases, reference_mask
from fetalhc.measurement import Measurement, ellipse_outside_px, mask_ellipse_iou, measure
from fetalhc.metrics import dice_jaccard, hausdorff_mm
from fetalhc.outline import probability_outline_xy, robust_fit_ellipse
from fetalhc.pipeline import Pipeline
from fetalhc.quality import assess
from fetalhc.reader import load_image
from fetalhc.segmentation import Segmentation
from fetalhc.zoom import ZoomBox, extract_zoom, fuse_zoom, mask_bbox, paste_zoom, zoom_box

ZOOMS = {"z1": dict(margin=0.12, min_scale=1.0), "zfill": dict(margin=0.12, min_scale=0.01)}


def cache(out: Path, limit: int | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = default_data_dir()
    assert data is not None, "HC18 not found"
    pipe = Pipeline()
    seg = pipe.segmenter
    nhw = seg.input_hw
    files = load_split(DEFAULT_SPLIT)["val"][:limit]
    px = {c.filename: c.pixel_size_mm for c in read_cases(data)}
    for i, f in enumerate(files):
        dst = out / (f.replace(".png", ".npz"))
        if dst.exists():
            continue
        img = pipe.deidentify(load_image(data / "training_set" / f, pixel_size_mm=px[f])).pixels
        h, w = img.shape
        arrays: dict[str, Any] = {}
        boxes = crop_boxes(w, h, "corners+full", 0.9, True)
        probs = seg.predict(np.stack([extract_crop(img, b, nhw) for b in boxes]))
        for b, p in zip(boxes, probs, strict=True):
            arrays["crop_" + b.name] = p.astype(np.float16)
        corner = [b for b in boxes if b.name in ("top_left", "top_right", "bottom_right", "bottom_left")]
        base_c = fuse_probabilities([probs[boxes.index(b)] for b in corner], corner, (h, w))
        full = [b for b in boxes if b.name == "full"]
        base_f = fuse_probabilities([probs[boxes.index(b)] for b in full], full, (h, w))
        for src, base in (("c", base_c), ("f", base_f)):
            bb = mask_bbox(binarize(base))
            for zname, kw in ZOOMS.items():
                if bb is None:
                    continue
                zb = zoom_box(bb, (h, w), nhw, **kw)
                zp = seg.predict(np.stack([extract_zoom(img, zb, nhw), extract_zoom(img, zb, nhw, flip=True)]))
                key = f"{zname}_{src}"
                arrays[key] = zp[0].astype(np.float16)
                arrays[key + "_flip"] = zp[1].astype(np.float16)
                arrays[key + "_box"] = np.array([zb.x0, zb.y0, zb.x1, zb.y1])
        arrays["shape"] = np.array([h, w])
        np.savez_compressed(dst, **arrays)
        print(i, f, flush=True)


@dataclass(frozen=True)
class Variant:
    name: str
    base: str  # "c" corners, "cf" corners + flips, "f" full, "ff" full + flip
    zoom: str | None = None  # e.g. "z1"
    zoom_flip: bool = False
    zoom_weight: float = 1.0
    outline: str = "mask"  # "mask" (today's) or "prob" (iso-line of the probability)
    fit: str = "plain"  # "plain" or "robust"

    @property
    def passes(self) -> int:
        n = {"c": 4, "cf": 8, "f": 1, "ff": 2}[self.base]
        return n + (0 if self.zoom is None else len(self.zoom.split("+")) * (2 if self.zoom_flip else 1))


VARIANTS = [
    Variant("corners (shipped)", "c"),
    Variant("full", "f"),
    Variant("corners+flips", "cf"),
    Variant("corners, prob outline", "c", outline="prob"),
    Variant("corners, prob outline, robust fit", "c", outline="prob", fit="robust"),
    Variant("corners, robust fit", "c", fit="robust"),
    Variant("corners+zoom1 replace", "c", "z1"),
    Variant("corners+zoom1 avg", "c", "z1", zoom_weight=0.5),
    Variant("corners+zoomfill replace", "c", "zfill"),
    Variant("corners+zoomfill avg", "c", "zfill", zoom_weight=0.5),
    Variant("corners+zoom1 replace, prob outline", "c", "z1", outline="prob"),
    Variant("corners+zoom1 avg, prob outline", "c", "z1", zoom_weight=0.5, outline="prob"),
    Variant("corners+zoom1 avg, prob outline, robust", "c", "z1", zoom_weight=0.5, outline="prob", fit="robust"),
    Variant("corners+zoomfill avg, prob outline", "c", "zfill", zoom_weight=0.5, outline="prob"),
    Variant("corners+zoom1+zflip replace, prob outline", "c", "z1", True, outline="prob"),
    Variant("corners+zoom1+zflip avg, prob outline", "c", "z1", True, 0.5, outline="prob"),
    Variant("full+zoom1 replace, prob outline", "f", "z1", outline="prob"),
    Variant("full+zoom1+zflip replace, prob outline", "f", "z1", True, outline="prob"),
    Variant("full+flip+zoom1+zflip avg, prob outline", "ff", "z1", True, 0.5, outline="prob"),
    Variant("full+zoom1+zflip replace, prob outline, robust", "f", "z1", True, outline="prob", fit="robust"),
    Variant("full+zoom1+zflip+zoomfill+zflip replace, prob outline, robust", "f", "z1+zfill", True, outline="prob",
            fit="robust"),
    Variant("corners+zoom1 replace, prob outline, robust", "c", "z1", outline="prob", fit="robust"),
    Variant("corners+flips+zoom1+zflip avg, prob outline", "cf", "z1", True, 0.5, outline="prob"),
]


def _fused(arr: Any, v: Variant, shape: tuple[int, int]) -> tuple[Segmentation, np.ndarray | None]:
    """The variant's segmentation (fused probability, its mask, and the crops that went into it, as
    :func:`fetalhc.segmentation.segment` returns them: the zoom pass is in the probability, not in
    the crops) and (if any) its zoom-only probability map (NaN outside the zoom box)."""
    h, w = shape
    names = {"c": ["top_left", "top_right", "bottom_right", "bottom_left"], "f": ["full"]}[v.base[0]]
    boxes = crop_boxes(w, h, "corners+full", 0.9, True)
    use: list[CropBox] = [b for b in boxes
                          if b.name.removesuffix("_flip") in names and (len(v.base) == 2 or not b.flip)]
    crop_probs = tuple(arr["crop_" + b.name].astype(np.float32) for b in use)
    base = fuse_probabilities(list(crop_probs), use, shape)

    def seg(prob: np.ndarray) -> Segmentation:
        return Segmentation(prob, binarize(prob), tuple(use), crop_probs)

    if v.zoom is None:
        return seg(base), None
    acc, cnt = np.zeros(shape, np.float32), np.zeros(shape, np.float32)
    for zname in v.zoom.split("+"):  # several zoom boxes: average where they overlap
        key = f"{zname}_{v.base[0]}"
        if key + "_box" not in arr:
            return seg(base), None
        zb = ZoomBox(*[int(x) for x in arr[key + "_box"]])
        for flip in (False, True) if v.zoom_flip else (False,):
            zq, cq = paste_zoom(arr[key + ("_flip" if flip else "")].astype(np.float32), zb, shape, flip=flip)
            acc += zq
            cnt += cq
    cov = cnt > 0
    zp = np.divide(acc, cnt, out=np.zeros_like(acc), where=cov)
    only = np.where(cov, zp, np.nan).astype(np.float32)
    return seg(fuse_zoom(base, zp, cov, v.zoom_weight)), only


def fit_hc(prob: np.ndarray, mask: np.ndarray, outline: str, fit: str) -> tuple[Ellipse | None, float]:
    pts = iso_contour_xy(mask) if outline == "mask" else probability_outline_xy(prob, mask)
    try:
        if fit == "robust":
            return robust_fit_ellipse(pts)
        return fit_ellipse_points(pts), 0.0
    except ValueError:
        return None, 0.0


def measure_variant(sg: Segmentation, v: Variant, pixel_size_mm: float) -> tuple[Measurement, float]:
    """The pipeline's own measure step (``Pipeline.analyse``'s settings, no interval) on the
    variant's segmentation, and the fraction of outline points the robust fit trimmed (0 for a
    plain fit)."""
    m = measure(sg, pixel_size_mm, "user", outline="probability" if v.outline == "prob" else "mask",
                robust_fit=v.fit == "robust", interval=None)
    if v.fit != "robust" or m.ellipse is None:
        return m, 0.0
    if v.outline == "mask":
        # measure() fits the mask's edge plainly only: the robust fit to it is this benchmark's own
        ell, trimmed = fit_hc(sg.probability, m.head_mask, "mask", "robust")
        if ell is None:
            return m, 0.0
        return replace(m, ellipse=ell, hc_px=ell.perimeter_px,
                       ellipse_outside_px=ellipse_outside_px(ell, m.image_shape_hw),
                       fit_iou=mask_ellipse_iou(m.head_mask, ell) if ell.semi_axis_b_px > 0 else None), trimmed
    # the trimmed fraction of the same fit measure() made (measure keeps only the ellipse)
    try:
        ell, trimmed = robust_fit_ellipse(probability_outline_xy(sg.probability, m.head_mask))
    except ValueError:  # measure() fell back to the mask's edge
        return m, 0.0
    return m, trimmed if ell == m.ellipse else 0.0


def score(cache_dir: Path, out: Path, names: list[str] | None) -> None:
    data = default_data_dir()
    assert data is not None
    cases = {c.filename: c for c in read_cases(data)}
    variants = [v for v in VARIANTS if names is None or v.name in names]
    rows: dict[str, list[dict[str, Any]]] = {v.name: [] for v in variants}
    files = sorted(p.name.replace(".npz", ".png") for p in cache_dir.glob("*.npz"))
    for f in files:
        case = cases[f]
        arr = np.load(cache_dir / f.replace(".png", ".npz"))
        shape = (int(arr["shape"][0]), int(arr["shape"][1]))
        ann = cv2.imread(str(data / "training_set" / f.replace(".png", "_Annotation.png")), cv2.IMREAD_GRAYSCALE)
        ref, ref_ell = reference_mask(ann)
        s = case.pixel_size_mm
        # signals shared by all variants: corner-only and zoom-only HCs
        c_prob = _fused(arr, Variant("c", "c"), shape)[0].probability
        c_ell, _ = fit_hc(c_prob, binarize(c_prob), "prob", "plain")
        for v in variants:
            sg, zonly = _fused(arr, v, shape)
            m, trimmed = measure_variant(sg, v, s)
            verdict = assess(m, readout(m.hc_mm, m.bpd_mm, m.ofd_mm, None))
            mask = m.head_mask
            row: dict[str, Any] = {"file": f, "patient": case.patient, "pixel_size_mm": s, "hc_ref_mm": case.hc_mm,
                                   "hc_ref_px": ref_ell.perimeter_px, "passes": v.passes}
            d, _ = dice_jaccard(mask, ref)
            row.update(dice_mask=d, hd_mask_mm=hausdorff_mm(mask, ref, s))
            ell = m.ellipse
            if ell is not None:
                em = ell.rasterize(shape)
                row.update(hc_px=m.hc_px, hc_mm=m.hc_mm, dice_ell=dice_jaccard(em, ref)[0],
                           hd_ell_mm=hausdorff_mm(em, ref, s), trimmed=trimmed, band_px=m.hc_band_px)
                row["corner_dev_px"] = abs(ell.perimeter_px - c_ell.perimeter_px) if c_ell is not None else None
                if zonly is not None:
                    zfill = np.where(np.isnan(zonly), c_prob, zonly)
                    ze, _ = fit_hc(zfill, binarize(zfill), "prob", "plain")
                    if ze is not None and c_ell is not None:
                        row["zoom_corner_px"] = abs(ze.perimeter_px - c_ell.perimeter_px)
            row.update(status=verdict.status, flags=";".join(flag_code(x) for x in verdict.flags))
            rows[v.name].append(row)
        print(f, flush=True)
    out.mkdir(parents=True, exist_ok=True)
    cols = ["file", "patient", "pixel_size_mm", "hc_ref_mm", "hc_ref_px", "passes", "hc_mm", "hc_px", "dice_mask",
            "hd_mask_mm", "dice_ell", "hd_ell_mm", "trimmed", "band_px", "corner_dev_px", "zoom_corner_px",
            "status", "flags"]
    for name, rs in rows.items():
        with (out / (_safe(name) + "_cases.csv")).open("w", newline="") as fh:
            wr = csv.DictWriter(fh, cols)
            wr.writeheader()
            wr.writerows(rs)
    (out / "variants.json").write_text(json.dumps([v.__dict__ | {"passes": v.passes} for v in variants], indent=1))


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).strip("_")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["cache", "score"])
    ap.add_argument("--cache", type=Path, default=Path("/tmp/acc_cache"))
    ap.add_argument("--out", type=Path, default=Path("docs/results/acc"))
    ap.add_argument("--limit", type=int)
    ap.add_argument("--variants", nargs="*")
    a = ap.parse_args()
    if a.step == "cache":
        cache(a.cache, a.limit)
    else:
        score(a.cache, a.out, a.variants)


if __name__ == "__main__":
    main()
