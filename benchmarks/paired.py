"""Two per-image tables of the same images (``fetalhc evaluate`` or ``acc_ensemble.py`` CSVs), paired.

    python benchmarks/paired.py BASE_cases.csv NEW_cases.csv [--json out.json] [--split unused]

Prints and optionally writes: ADF of each, the mean paired difference of |error| (NEW - BASE) with
its patient-level bootstrap 95 % CI, the same on each of the two patient halves the accuracy tables
use (``evalstats.halve_by_patient``: a / b), errors by reference head size
(``evalstats.errors_by_size``), the Pearson correlation of the two signed errors (how much of
the error the two share), the HC difference NEW - BASE (mean, SD, max |.|, mm), how many
images cross the 3 mm line each way, the paired difference without the images either table misses
by more than ``--gross`` mm (a look at the bulk, not the main result), and, where the tables have a
``status`` column, the ADF of the images both call ``ok`` and how many each sends to review.
``--split`` keeps only the rows of that ``split`` (``acc_floor.py run`` tables: train / val / unused).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from fetalhc.evalstats import bootstrap_ci, errors_by_size, halve_by_patient


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--gross", type=float, default=20.0, help="mm: errors above this are left out of the bulk look")
    ap.add_argument("--split", default=None, help="only rows whose 'split' column is this (comma-separated list)")
    args = ap.parse_args()
    keep = None if args.split is None else set(args.split.split(","))
    with args.base.open(newline="") as fa, args.new.open(newline="") as fb:
        a = {r["file"]: r for r in csv.DictReader(fa) if keep is None or r.get("split") in keep}
        b = {r["file"]: r for r in csv.DictReader(fb) if keep is None or r.get("split") in keep}
    if not a:
        raise SystemExit(f"no rows of split {args.split!r} in {args.base}")
    if set(a) != set(b):
        raise SystemExit(f"the tables hold different images ({len(set(a) ^ set(b))} differ)")
    files = sorted(f for f in a if a[f]["hc_mm"] and b[f]["hc_mm"])
    ref = np.array([float(a[f]["hc_ref_mm"]) for f in files])
    ha, hb = (np.array([float(t[f]["hc_mm"]) for f in files]) for t in (a, b))
    ea, eb = np.abs(ha - ref), np.abs(hb - ref)
    lo, hi = bootstrap_ci(eb - ea, [a[f]["patient"] for f in files])
    d = hb - ha
    out = {"n": len(files), "adf_base_mm": float(ea.mean()), "adf_new_mm": float(eb.mean()),
           "paired_diff_mm": float((eb - ea).mean()), "paired_diff_ci95_mm": [lo, hi],
           "signed_error_correlation": float(np.corrcoef(ha - ref, hb - ref)[0, 1]),
           "hc_diff_mean_mm": float(d.mean()), "hc_diff_sd_mm": float(d.std()),
           "hc_diff_max_abs_mm": float(np.abs(d).max()),
           "within_3mm_base": float((ea <= 3).mean()), "within_3mm_new": float((eb <= 3).mean()),
           "crossed_out_of_3mm": int(((ea <= 3) & (eb > 3)).sum()),
           "crossed_into_3mm": int(((ea > 3) & (eb <= 3)).sum())}
    bulk = (ea <= args.gross) & (eb <= args.gross)
    out[f"without_errors_over_{args.gross:g}mm"] = {
        "n_left_out": int((~bulk).sum()), "adf_base_mm": float(ea[bulk].mean()), "adf_new_mm": float(eb[bulk].mean()),
        "paired_diff_mm": float((eb - ea)[bulk].mean())}
    if all("status" in t[f] for t in (a, b) for f in files):
        both_ok = np.array([a[f]["status"] == "ok" and b[f]["status"] == "ok" for f in files])
        out["both_ok"] = {"n": int(both_ok.sum()), "adf_base_mm": float(ea[both_ok].mean()),
                          "adf_new_mm": float(eb[both_ok].mean()),
                          "n_review_base": sum(a[f]["status"] != "ok" for f in files),
                          "n_review_new": sum(b[f]["status"] != "ok" for f in files)}
    pos = {f: i for i, f in enumerate(files)}
    for name, half in zip("ab", halve_by_patient(files), strict=True):
        idx = [pos[f] for f in half]
        hlo, hhi = bootstrap_ci((eb - ea)[idx], [a[f]["patient"] for f in half])
        out[f"half_{name}"] = {"n": len(idx), "adf_base_mm": float(ea[idx].mean()), "adf_new_mm": float(eb[idx].mean()),
                               "paired_diff_mm": float((eb - ea)[idx].mean()), "paired_diff_ci95_mm": [hlo, hhi]}
    out["by_size"] = {"base": errors_by_size([a[f] for f in files]), "new": errors_by_size([b[f] for f in files])}
    for k, v in out.items():
        print(f"{k:22s} {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
