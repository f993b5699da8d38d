"""Summarise the variants of ``acc_experiments.py score``: accuracy with patient-bootstrap CIs on
all 129 validation images and on each half, and, for each uncertainty signal, the 90 % split-
conformal interval and the review limit calibrated on one half and measured on the other.

    python benchmarks/acc_analyze.py --cases docs/results/acc --out docs/results/acc/summary.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from fetalhc.conformal import calibrate, interval_px
from fetalhc.evalstats import adf_with_ci, errors_by_size, review_tradeoff
from fetalhc.hc18 import DEFAULT_SPLIT

HALVES = json.loads((DEFAULT_SPLIT.parent / "hc18_seed0_calval.json").read_text())
SIGNALS = ("const", "hc_px", "band_px", "zoom_corner_px", "corner_dev_px", "band+zoom")
REVIEW_SHARE = 0.12  # review share aimed at on the calibration half (gross flags included)


def _f(v: str | None) -> float | None:
    return None if v in (None, "") else float(v)


def read(path: Path) -> list[dict[str, Any]]:
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        for k in ("pixel_size_mm", "hc_ref_mm", "hc_ref_px", "hc_mm", "hc_px", "dice_mask", "hd_mask_mm", "dice_ell",
                  "hd_ell_mm", "band_px", "corner_dev_px", "zoom_corner_px"):
            r[k] = _f(r.get(k))
    return rows


def signal(r: dict[str, Any], name: str) -> float | None:
    if name == "const":
        return 0.0
    if name == "band+zoom":
        b, z = r.get("band_px"), r.get("zoom_corner_px")
        return None if b is None or z is None else b + z
    return r.get(name)


def gross(r: dict[str, Any]) -> bool:
    """Review for a flag other than the HC band's (which the interval flag replaces)."""
    return any(c and c != "hc_uncertain" for c in str(r.get("flags") or "").split(";"))


def accuracy(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in rows if r["hc_mm"] is not None]
    err = np.array([abs(r["hc_ref_mm"] - r["hc_mm"]) for r in ok])
    return {"adf": adf_with_ci(rows), "dice_mask": float(np.mean([r["dice_mask"] for r in rows])),
            "dice_ellipse": float(np.mean([r["dice_ell"] or 0.0 for r in rows])),
            "hd_mask_mm": float(np.mean([min(r["hd_mask_mm"], 1e3) for r in rows])),
            "hd_ellipse_mm": float(np.mean([min(r["hd_ell_mm"] or 1e3, 1e3) for r in rows])),
            "within_3mm": float((err <= 3).mean()), "d_mm": float(np.mean([r["hc_ref_mm"] - r["hc_mm"] for r in ok])),
            "by_size": errors_by_size(rows), "review_today": review_tradeoff(rows)}


def interval_check(rows: list[dict[str, Any]], sig: str, cal_half: str, val_half: str,
                   width_unit: str = "mm") -> dict[str, Any]:
    """Calibrate on ``cal_half``, apply to ``val_half``: coverage, width, review trade-off."""
    def usable(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rs if r["hc_px"] is not None and signal(r, sig if sig != "hc_px" else "const") is not None]

    cal_rows = usable([r for r in rows if r["file"] in set(HALVES[cal_half])])
    val_rows = [r for r in rows if r["file"] in set(HALVES[val_half])]
    if len(cal_rows) < 0.9 * len(HALVES[cal_half]):
        return {}

    def sig_of(r: dict[str, Any]) -> float:
        return float(r["hc_px"] if sig == "hc_px" else signal(r, sig))  # type: ignore[arg-type]

    c = calibrate([r["hc_ref_px"] for r in cal_rows], [r["hc_px"] for r in cal_rows],
                  [sig_of(r) for r in cal_rows], 0.1, sig, (1.0, 0.0) if sig == "const" else None)

    def apply(rs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for r in rs:
            r2 = dict(r)
            if r["hc_px"] is not None and (sig == "hc_px" or signal(r, sig) is not None):
                lo, hi = interval_px(r["hc_px"], sig_of(r), c)
                r2.update(hc_low_mm=lo * r["pixel_size_mm"], hc_high_mm=hi * r["pixel_size_mm"],
                          half=(hi - lo) / 2 * (r["pixel_size_mm"] if width_unit == "mm" else 1 / r["hc_px"]))
            out.append(r2)
        return out

    cal_a, val_a = apply(cal_rows), apply(val_rows)
    # review limit on the calibration half only: the width above which REVIEW_SHARE is reviewed
    halves = sorted((r["half"] for r in cal_a if "half" in r), reverse=True)
    limit = math.inf
    for h in halves:
        share = np.mean([gross(r) or r.get("half", 0) >= h for r in cal_a])
        if share > REVIEW_SHARE:
            break
        limit = h
    for r in val_a:
        r["status"] = "review" if gross(r) or r.get("hc_mm") is None or r.get("half", math.inf) > limit else "ok"
    covered = [r["hc_low_mm"] <= r["hc_ref_mm"] <= r["hc_high_mm"] for r in val_a if "hc_low_mm" in r]
    widths = [2 * r["half"] for r in val_a if "half" in r]
    ok_cov = [r["hc_low_mm"] <= r["hc_ref_mm"] <= r["hc_high_mm"] for r in val_a if "hc_low_mm" in r and
              r["status"] == "ok"]
    return {"calibrated_on": cal_half, "measured_on": val_half, "a_px": c.a_px, "b": c.b, "q": c.q,
            "n_cal": c.n_calibration, "coverage": float(np.mean(covered)), "coverage_ok": float(np.mean(ok_cov)),
            f"median_width_{width_unit}": float(np.median(widths)),
            f"review_limit_half_{width_unit}": limit, "review": review_tradeoff(val_a)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", type=Path, default=Path("docs/results/acc"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--variants", nargs="*")
    ap.add_argument("--markdown", type=Path)
    a = ap.parse_args()
    variants = json.loads((a.cases / "variants.json").read_text())
    summary: dict[str, Any] = {}
    for v in variants:
        if a.variants and v["name"] not in a.variants:
            continue
        safe = "".join(c if c.isalnum() else "_" for c in v["name"]).strip("_")
        rows = read(a.cases / f"{safe}_cases.csv")
        s: dict[str, Any] = {"passes": v["passes"], "all": accuracy(rows)}
        for half in ("a", "b"):
            s[half] = accuracy([r for r in rows if r["file"] in set(HALVES[half])])
        s["interval"] = {sig: [interval_check(rows, sig, "a", "b"), interval_check(rows, sig, "b", "a")]
                         for sig in SIGNALS}
        s["interval_rel"] = {sig: [interval_check(rows, sig, "a", "b", "rel"),
                                   interval_check(rows, sig, "b", "a", "rel")] for sig in SIGNALS}
        summary[v["name"]] = s
        al = s["all"]
        print(f"{v['name']:48s} p={v['passes']:2d} ADF {al['adf']['adf_mm']:.3f} "
              f"[{al['adf']['ci95_mm'][0]:.2f},{al['adf']['ci95_mm'][1]:.2f}] a {s['a']['adf']['adf_mm']:.3f} "
              f"b {s['b']['adf']['adf_mm']:.3f} DSCm {al['dice_mask']:.4f} DSCe {al['dice_ellipse']:.4f} "
              f"HDm {al['hd_mask_mm']:.2f} HDe {al['hd_ellipse_mm']:.2f} w3 {al['within_3mm']:.3f} d {al['d_mm']:+.2f}")
        for key in ("interval", "interval_rel"):
            for sig, (ab, ba) in s[key].items():
                if not ab or not ba:
                    continue
                print(f"   {key[9:] or 'mm':4s}{sig:15s} cov {ab['coverage']:.3f}/{ba['coverage']:.3f} "
                      f"w {list(ab.values())[9]:.3f}/{list(ba.values())[9]:.3f} "
                      f"rev {ab['review']['share_review']:.3f}/{ba['review']['share_review']:.3f} "
                      f"okADF {ab['review']['adf_ok_mm']:.3f}/{ba['review']['adf_ok_mm']:.3f} "
                      f"caught {ab['review']['errors_over_4mm_caught']}/{ab['review']['errors_over_4mm']}+"
                      f"{ba['review']['errors_over_4mm_caught']}/{ba['review']['errors_over_4mm']}")
    if a.out:
        a.out.write_text(json.dumps(summary, indent=1, default=float) + "\n")
    if a.markdown:
        a.markdown.write_text(markdown(summary))


def markdown(summary: dict[str, Any]) -> str:
    """One table row per variant (coverage: band-scaled 90 % interval, calibrated on one half,
    measured on the other, both ways)."""
    lines = ["| variant | passes | ADF mm (95 % CI) | ADF half a / b | DSC mask / ellipse | HD mm mask / ellipse "
             "| within 3 mm | 90 % coverage b / a | median width mm b / a |", "|" + "---|" * 9]
    for name, s in summary.items():
        al, iv = s["all"], s["interval"]["band_px"]
        lines.append(
            f"| {name} | {s['passes']} | {al['adf']['adf_mm']:.2f} ({al['adf']['ci95_mm'][0]:.2f}-"
            f"{al['adf']['ci95_mm'][1]:.2f}) | {s['a']['adf']['adf_mm']:.2f} / {s['b']['adf']['adf_mm']:.2f} | "
            f"{al['dice_mask']:.4f} / {al['dice_ellipse']:.4f} | {al['hd_mask_mm']:.2f} / {al['hd_ellipse_mm']:.2f} | "
            f"{100 * al['within_3mm']:.1f} % | {iv[0]['coverage']:.3f} / {iv[1]['coverage']:.3f} | "
            f"{iv[0]['median_width_mm']:.2f} / {iv[1]['median_width_mm']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
