"""What limits the ellipse HC's accuracy on HC18 (issue 9)? Evidence for a floor set by the labels.

    python benchmarks/acc_floor.py run --out docs/results/floor      # ~2 min: all 854 labelled images
    python benchmarks/acc_floor.py report --out docs/results/floor   # seconds: floor.json from the tables
    python benchmarks/acc_floor.py subsplit --fraction 0.5 --seed 1  # a split for a learning curve
    python benchmarks/acc_floor.py run --model M.onnx --split S.json --out D   # its model, same tables
    python benchmarks/acc_floor.py pairs                             # seconds: reference_noise.json

``run`` measures every labelled HC18 image (training and validation split) with the shipped
default (int8 model, 0.4 views) and writes ``cases.csv``: split, reference and measured HC, pixel
size, the zoom pass's scale (image pixels per network pixel), the HC band, the RMS distance of the
sub-pixel outline from its ellipse, and the HC of a variant fit that weights each outline point by
the probability's gradient there (trust the sharp stretches of skull, as an annotator would).

``report`` reads that table and the committed per-image tables of earlier sessions and writes
``floor.json``, five tests of where the remaining error comes from:

1. *fit*: does the model fit its own training images better than unseen ones (ADF with patient
   bootstrap CIs, mm and pixels of perimeter)? No gap = no over-fitting to remove, and the labels
   it was trained on are matched no better than new ones;
2. *resolution*: does the error in image pixels grow with the zoom pass's down-sampling? If the
   network's pixel grid limited the outline, it would (medians: the means of the least
   down-sampled bin, small heads, carry the few gross failures that the flags send to review);
3. *models*: how much of the error do two networks share (Pearson and Spearman correlation of
   signed errors, Pearson without the errors of 4 mm or more, the covariance as a share of the mean
   variance — the shared part's share if each error is a shared part plus an independent one —
   and the ADF of their average)? A vs C (same data and architecture) and A vs the U-Net (same
   data and encoder, another kind of decoder) were trained independently; the others are
   fine-tunes of their partner. A shared error is one no ensemble of
   such networks removes;
4. *signals*: does any per-image signal rank the errors (Spearman, ROC AUC for > 4 mm, ADF of the
   85 % it ranks most certain, against the oracle)?
5. *fit variant*: the gradient-weighted ellipse fit (geometric distance, soft-L1 loss, weights: three
   changes at once against the shipped trimmed ``cv2.fitEllipse`` fit), paired against the shipped fit.

``pairs`` estimates, from the patients with two or more images, how much of the references' own
scatter no measurement can follow (:func:`fetalhc.evalstats.reference_noise`): on the images a
model never saw (the half-data model's validation and left-out training images), on its
``ok`` readings only, and on the shipped model's training and validation images.

Images outside the split's train and val lists are "unused" (a learning-curve model's left-out
training patients); ``run`` refuses images outside the committed split's training list.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: committed per-image tables of pairs of models measured with the same views (validation split)
MODEL_PAIRS = {
    "A vs C (independent: both from ImageNet, C with the outline loss), corners+zoom":
        ("docs/results/acc_outline/A_corners_cases.csv", "docs/results/acc_outline/B_corners_cases.csv"),
    "A vs C, full+zoom+zoom flip":
        ("docs/results/acc_outline/A_full_zoomflip_cases.csv", "docs/results/acc_outline/B_full_zoomflip_cases.csv"),
    "A vs separable-decoder model (fine-tuned from C), full+zoom+zoom flip":
        ("docs/results/acc_outline/A_full_zoomflip_cases.csv", "docs/results/sep/fp32_full_zoomflip_cases.csv"),
    "A vs B' (A fine-tuned for the 0.4 views), 0.4 default":
        ("docs/results/ft_zoom04/A_default_cases.csv", "docs/results/ft_zoom04/B_default_cases.csv"),
    "A vs U-Net (independent: another architecture, from ImageNet), 0.4 default":
        ("docs/results/unet/A_default_cases.csv", "docs/results/unet/B_default_cases.csv"),
}
SCALE_BINS = ((1.0, 1.3), (1.3, 1.6), (1.6, 1.9), (1.9, 3.0))
FIELDS = ("file", "patient", "split", "pixel_size_mm", "hc_ref_mm", "hc_mm", "zoom_scale", "hc_band_mm",
          "outline_rms_px", "hc_gradient_weighted_mm", "status")


def weighted_fit_perimeter_px(points_xy: NDArray[np.float64], weights: NDArray[np.float64],
                              start: Any) -> float:
    """Perimeter (pixels) of the ellipse that minimises the weighted soft-L1 geometric distance of
    ``points_xy`` (pixels), started from the ellipse ``start``."""
    from scipy.optimize import least_squares

    from fetalhc.ellipse import Ellipse
    from fetalhc.outline import ellipse_distance_px

    sw = np.sqrt(weights / weights.mean())

    def make(p: NDArray[np.float64]) -> Ellipse:
        return Ellipse(float(p[0]), float(p[1]), abs(float(p[2])), abs(float(p[3])), math.degrees(p[4]) % 180)

    p0 = np.array([start.center_x_px, start.center_y_px, start.semi_axis_a_px, start.semi_axis_b_px,
                   math.radians(start.angle_deg)])
    fit = least_squares(lambda p: sw * ellipse_distance_px(make(p), points_xy), p0, loss="soft_l1", f_scale=1.5)
    return make(fit.x).perimeter_px


def run(out: Path, model: Path | None = None, split_path: Path | None = None) -> None:
    import cv2
    from scipy.ndimage import map_coordinates

    from fetalhc import hc18
    from fetalhc.outline import ellipse_distance_px, probability_outline_xy
    from fetalhc.pipeline import Pipeline
    from fetalhc.reader import load_image
    from fetalhc.zoom import zoom_scale

    data = hc18.default_data_dir()
    if data is None:
        raise SystemExit("HC18 not found (../shared/data/hc18 or $FETALHC_DATA)")
    split = hc18.load_split(split_path or hc18.DEFAULT_SPLIT)
    # "unused": labelled images outside the split (a learning-curve model's left-out patients)
    which = {f: s for s in ("train", "val") for f in split[s]}
    known = set(hc18.load_split(hc18.DEFAULT_SPLIT)["train"]) | set(split["val"])
    pipe = Pipeline(model)
    net_hw = pipe.segmenter.input_hw
    rows = []
    for case in hc18.read_cases(data):
        if case.filename not in which and case.filename not in known:
            raise SystemExit(f"{case.filename}: in neither {hc18.DEFAULT_SPLIT.name} nor the split given")
        o = pipe.run(load_image(data / "training_set" / case.filename, pixel_size_mm=case.pixel_size_mm))
        m, seg = o.measurement, o.segmentation
        row: dict[str, Any] = {"file": case.filename, "patient": case.patient,
                               "split": which.get(case.filename, "unused"), "pixel_size_mm": case.pixel_size_mm,
                               "hc_ref_mm": case.hc_mm, "hc_mm": m.hc_mm,
                               "zoom_scale": zoom_scale(seg.zoom_boxes[-1], net_hw) if seg.zoom_boxes else None,
                               "hc_band_mm": m.hc_band_mm, "status": o.verdict.status}
        if m.ellipse is not None and m.hc_mm is not None:
            pts = probability_outline_xy(seg.probability, seg.mask)
            row["outline_rms_px"] = float(np.sqrt(np.mean(ellipse_distance_px(m.ellipse, pts) ** 2)))
            gy, gx = np.gradient(cv2.GaussianBlur(seg.probability, (0, 0), 1.0))
            g = np.hypot(map_coordinates(gx, [pts[:, 1], pts[:, 0]], order=1),
                         map_coordinates(gy, [pts[:, 1], pts[:, 0]], order=1))
            row["hc_gradient_weighted_mm"] = weighted_fit_perimeter_px(pts, g + 1e-6, m.ellipse) * case.pixel_size_mm
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "cases.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=FIELDS, extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    print(f"{len(rows)} images -> {out / 'cases.csv'} (model {pipe.segmenter.info.path.name}, "
          f"mode {pipe.config.interval_key})")


def subsplit(path: Path, fraction: float, seed: int) -> None:
    """Write a split with the same validation images and ``fraction`` of the training patients
    (all their images; ``random.Random(seed)`` shuffles the sorted patients), for a learning curve."""
    import random

    from fetalhc import hc18

    split = hc18.load_split(hc18.DEFAULT_SPLIT)
    patients = sorted({f.split("_", 1)[0] for f in split["train"]})
    random.Random(seed).shuffle(patients)
    keep = set(patients[: round(fraction * len(patients))])
    train = sorted(f for f in split["train"] if f.split("_", 1)[0] in keep)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"source": f"{hc18.DEFAULT_SPLIT.name} with {fraction} of its training patients "
                                          f"(random.Random({seed}))", "seed": seed, "train": train,
                                "val": split["val"]}, indent=1) + "\n")
    print(f"{len(train)} training images of {len(keep)} patients "
          f"(of {len(split['train'])} / {len(patients)}) -> {path}")


def _floats(rows: list[dict[str, str]], key: str) -> NDArray[np.float64]:
    return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])


def _spearman(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _group_difference(first: list[dict[str, str]], second: list[dict[str, str]], n_boot: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    """ADF of ``first`` minus ADF of ``second`` (mm; disjoint patients) with a 95 % CI from
    resampling each group's patients independently."""
    rng = np.random.default_rng(seed)

    def by_patient(rows: list[dict[str, str]]) -> list[NDArray[np.float64]]:
        groups: dict[str, list[float]] = {}
        for r in rows:
            groups.setdefault(r["patient"], []).append(abs(float(r["hc_mm"]) - float(r["hc_ref_mm"])))
        return [np.array(v) for v in groups.values()]

    a, b = by_patient(first), by_patient(second)
    diffs = []
    for _ in range(n_boot):
        pa = np.concatenate([a[i] for i in rng.integers(0, len(a), len(a))])
        pb = np.concatenate([b[i] for i in rng.integers(0, len(b), len(b))])
        diffs.append(pa.mean() - pb.mean())
    point = float(np.concatenate(a).mean() - np.concatenate(b).mean())
    return {"difference_mm": point, "ci95_mm": [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]}


def report(out: Path) -> dict[str, Any]:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from acc_signals import roc_auc

    from fetalhc.evalstats import bootstrap_ci

    with open(out / "cases.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["hc_mm"] not in ("", None)]
    res: dict[str, Any] = {"n_measured": len(rows)}

    # 1. fit: training images vs unseen ones
    fit: dict[str, Any] = {}
    for s in ("train", "val", "unused"):
        sel = [r for r in rows if r["split"] == s]
        if not sel:
            continue
        err = np.abs(_floats(sel, "hc_mm") - _floats(sel, "hc_ref_mm"))
        err_px = err / _floats(sel, "pixel_size_mm")
        lo, hi = bootstrap_ci(err.tolist(), [r["patient"] for r in sel])
        fit[s] = {"n": len(sel), "adf_mm": float(err.mean()), "ci95_mm": [lo, hi], "median_mm": float(np.median(err)),
                  "mean_abs_px": float(err_px.mean()), "median_abs_px": float(np.median(err_px))}
    if "unused" in fit:
        res["unused_minus_val_adf_mm"] = _group_difference(
            [r for r in rows if r["split"] == "unused"], [r for r in rows if r["split"] == "val"])
    res["fit_train_vs_val"] = fit

    # 2. resolution: error in image pixels by the zoom pass's down-sampling
    scale = _floats(rows, "zoom_scale")
    err_px = np.abs(_floats(rows, "hc_mm") - _floats(rows, "hc_ref_mm")) / _floats(rows, "pixel_size_mm")
    ok = np.isfinite(scale)
    bins = []
    for lo_s, hi_s in SCALE_BINS:
        sel = ok & (scale >= lo_s) & (scale < hi_s)
        if sel.any():
            bins.append({"image_px_per_network_px": [lo_s, hi_s], "n": int(sel.sum()),
                         "median_abs_error_image_px": float(np.median(err_px[sel])),
                         "mean_abs_error_image_px": float(err_px[sel].mean()),
                         "mean_abs_error_network_px": float((err_px[sel] / scale[sel]).mean())})
    res["resolution"] = {"by_zoom_scale": bins, "spearman_scale_vs_abs_error_px": _spearman(scale[ok], err_px[ok])}

    # 3. models: shared error of pairs of networks (validation split, committed tables)
    pairs = {}
    for name, (pa, pb) in MODEL_PAIRS.items():
        with open(pa, newline="") as fa, open(pb, newline="") as fb:
            a = {r["file"]: r for r in csv.DictReader(fa) if r["hc_mm"]}
            b = {r["file"]: r for r in csv.DictReader(fb) if r["hc_mm"]}
        files = sorted(set(a) & set(b))
        ea = np.array([float(a[f]["hc_mm"]) - float(a[f]["hc_ref_mm"]) for f in files])
        eb = np.array([float(b[f]["hc_mm"]) - float(b[f]["hc_ref_mm"]) for f in files])
        cov = np.cov(ea, eb)
        small = (np.abs(ea) < 4.0) & (np.abs(eb) < 4.0)
        pairs[name] = {"tables": [pa, pb], "n": len(files),
                       "adf_mm": [float(np.abs(ea).mean()), float(np.abs(eb).mean())],
                       "adf_of_average_mm": float(np.abs((ea + eb) / 2).mean()),
                       "mean_abs_difference_between_models_mm": float(np.abs(ea - eb).mean()),
                       "correlation_of_signed_errors": float(np.corrcoef(ea, eb)[0, 1]),
                       "spearman_of_signed_errors": _spearman(ea, eb),
                       "correlation_without_errors_of_4mm_or_more": float(np.corrcoef(ea[small], eb[small])[0, 1]),
                       "covariance_share_of_mean_variance": float(cov[0, 1] / ((cov[0, 0] + cov[1, 1]) / 2))}
    res["models"] = pairs

    # 4. signals (validation split): who ranks the errors?
    val = [r for r in rows if r["split"] == "val"]
    err = np.abs(_floats(val, "hc_mm") - _floats(val, "hc_ref_mm"))
    large = err > 4.0
    keep_n = int(round(0.85 * len(err)))
    signals = {"hc_band_mm": _floats(val, "hc_band_mm"), "outline_rms_px": _floats(val, "outline_rms_px"),
               "pixel_size_mm": _floats(val, "pixel_size_mm"), "zoom_scale": _floats(val, "zoom_scale"),
               "oracle (the error itself)": err}
    sig = {}
    for name, v in signals.items():
        order = np.argsort(v, kind="stable")
        auc = roc_auc(large, v)
        sig[name] = {"spearman_with_abs_error": _spearman(v, err), "roc_auc_errors_over_4mm": auc,
                     "roc_auc_direction": "higher = larger error" if auc >= 0.5 else "lower = larger error",
                     "adf_of_85pct_most_certain_mm": float(err[order[:keep_n]].mean())}
    review = [r for r in val if r["status"] != "ok"]
    ok_err = np.array([abs(float(r["hc_mm"]) - float(r["hc_ref_mm"])) for r in val if r["status"] == "ok"])
    res["signals_val"] = {"n": len(val), "n_errors_over_4mm": int(large.sum()), "by_signal": sig,
                          "shipped_flags": {"share_to_review": len(review) / len(val),
                                            "adf_ok_mm": float(ok_err.mean())}}

    # 5. the gradient-weighted fit, paired against the shipped one
    variant = {}
    for s in ("train", "val", "unused"):
        sel = [r for r in rows if r["split"] == s and r["hc_gradient_weighted_mm"]]
        if not sel:
            continue
        ref = _floats(sel, "hc_ref_mm")
        d = np.abs(_floats(sel, "hc_gradient_weighted_mm") - ref) - np.abs(_floats(sel, "hc_mm") - ref)
        lo, hi = bootstrap_ci(d.tolist(), [r["patient"] for r in sel])
        variant[s] = {"n": len(sel), "paired_adf_difference_mm": float(d.mean()), "ci95_mm": [lo, hi]}
    res["gradient_weighted_fit"] = variant

    (out / "floor.json").write_text(json.dumps(res, indent=1) + "\n")
    f = res["fit_train_vs_val"]
    print("1. ADF " + ", ".join(f"{s} {v['adf_mm']:.2f} mm ({v['mean_abs_px']:.1f} px, n {v['n']})"
                                for s, v in f.items()))
    if "unused_minus_val_adf_mm" in res:
        u = res["unused_minus_val_adf_mm"]
        print(f"   unused minus val: {u['difference_mm']:+.2f} mm (CI {u['ci95_mm'][0]:+.2f}..{u['ci95_mm'][1]:+.2f})")
    print("2. |error| in image px by zoom scale: " + ", ".join(
        f"{b['image_px_per_network_px'][0]}-{b['image_px_per_network_px'][1]}: median "
        f"{b['median_abs_error_image_px']:.1f}, mean {b['mean_abs_error_image_px']:.1f} "
        f"(n {b['n']})" for b in bins) + f"; Spearman {res['resolution']['spearman_scale_vs_abs_error_px']:+.2f}")
    for name, pr in pairs.items():
        print(f"3. {name}: r {pr['correlation_of_signed_errors']:.3f}, "
              f"ADF {pr['adf_mm'][0]:.2f} / {pr['adf_mm'][1]:.2f}, "
              f"average {pr['adf_of_average_mm']:.2f}, |A-B| {pr['mean_abs_difference_between_models_mm']:.2f} mm, "
              f"Spearman {pr['spearman_of_signed_errors']:.2f}, r without >= 4 mm "
              f"{pr['correlation_without_errors_of_4mm_or_more']:.2f}, "
              f"covariance / variance {pr['covariance_share_of_mean_variance']:.0%}")
    for name, st in sig.items():
        print(f"4. {name}: Spearman {st['spearman_with_abs_error']:+.2f}, AUC>4mm {st['roc_auc_errors_over_4mm']:.2f}, "
              f"ADF of 85 % most certain {st['adf_of_85pct_most_certain_mm']:.2f}")
    for s, vr in variant.items():
        print(f"5. gradient-weighted fit, {s}: {vr['paired_adf_difference_mm']:+.3f} mm "
              f"(CI {vr['ci95_mm'][0]:+.3f}..{vr['ci95_mm'][1]:+.3f})")
    return res


#: (name, cases table, splits, ok readings only) for ``pairs``: the first is the estimate on images the model never saw
PAIR_SETS = (
    ("half-data model, images it never saw (validation + 357 left-out)", "half_train/cases.csv", ("val", "unused"),
     False),
    ("half-data model, images it never saw, ok readings only", "half_train/cases.csv", ("val", "unused"), True),
    ("shipped model, its training images", "cases.csv", ("train",), False),
    ("shipped model, all 854 images", "cases.csv", ("train", "val"), False),
    ("shipped model, all 854 images, ok readings only", "cases.csv", ("train", "val"), True),
)


def pairs(out: Path) -> dict[str, Any]:
    """``reference_noise.json``: :func:`fetalhc.evalstats.reference_noise` on each of :data:`PAIR_SETS`."""
    from fetalhc.evalstats import reference_noise

    res = {}
    for name, table, splits, ok_only in PAIR_SETS:
        with open(out / table, newline="") as f:
            rows = [r for r in csv.DictReader(f) if r["split"] in splits and (not ok_only or r["status"] == "ok")]
        res[name] = reference_noise(rows)
        r = res[name]
        lo, hi = r["ci95_var_ref_noise_mm2"]
        fl, fh = r["ci95_adf_floor_normal_mm"]
        print(f"{name}: {r['n_pairs']} pairs of {r['n_patients_with_pairs']} patients; reference noise "
              f"{r['var_ref_noise_mm2']:.2f} mm2 (CI {lo:.2f}..{hi:.2f}), SD {r['sd_ref_noise_mm']:.2f} mm, "
              f"normal-noise ADF floor {r['adf_floor_normal_mm']:.2f} mm (CI {fl:.2f}..{fh:.2f}); "
              f"measurement's per-image part {r['var_auto_indep_mm2']:.2f} mm2; "
              f"mean squared error {r['mse_mm2']:.2f} mm2, on the paired images {r['mse_paired_mm2']:.2f} mm2 "
              f"(share {r['var_ref_noise_mm2'] / r['mse_paired_mm2']:.0%}); largest pair's share "
              f"{r['largest_pair_share_of_var_ref_noise']:.0%}, without the 2 largest pairs "
              f"{r['var_ref_noise_without_2_largest_pairs_mm2']:.2f} mm2")
    (out / "reference_noise.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=("run", "report", "subsplit", "pairs"))
    ap.add_argument("--out", type=Path, default=Path("docs/results/floor"))
    ap.add_argument("--model", type=Path, default=None, help="run: an exported model (default: the shipped one)")
    ap.add_argument("--split", type=Path, default=None, help="run: the split the model was trained on")
    ap.add_argument("--fraction", type=float, default=0.5, help="subsplit: share of training patients kept")
    ap.add_argument("--seed", type=int, default=1, help="subsplit: shuffle seed")
    args = ap.parse_args()
    if args.step == "subsplit":
        subsplit(args.out / f"split_train{args.fraction:g}_seed{args.seed}.json", args.fraction, args.seed)
        return
    if args.step == "pairs":
        pairs(args.out)
        return
    if args.step == "run":
        run(args.out, args.model, args.split)
    report(args.out)


if __name__ == "__main__":
    main()
