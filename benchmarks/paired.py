"""Two per-image tables of the same images (``fetalhc evaluate`` or ``acc_ensemble.py`` CSVs), paired.

    python benchmarks/paired.py BASE_cases.csv NEW_cases.csv [--json out.json]

Prints and optionally writes: ADF of each, the mean paired difference of |error| (NEW - BASE) with
its patient-level bootstrap 95 % CI, the HC difference NEW - BASE (mean, SD, max |.|, mm), and how
many images cross the 3 mm line each way.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from fetalhc.evalstats import bootstrap_ci


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    with args.base.open(newline="") as fa, args.new.open(newline="") as fb:
        a = {r["file"]: r for r in csv.DictReader(fa)}
        b = {r["file"]: r for r in csv.DictReader(fb)}
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
           "hc_diff_mean_mm": float(d.mean()), "hc_diff_sd_mm": float(d.std()),
           "hc_diff_max_abs_mm": float(np.abs(d).max()),
           "within_3mm_base": float((ea <= 3).mean()), "within_3mm_new": float((eb <= 3).mean()),
           "crossed_out_of_3mm": int(((ea <= 3) & (eb > 3)).sum()),
           "crossed_into_3mm": int(((ea > 3) & (eb <= 3)).sum())}
    for k, v in out.items():
        print(f"{k:22s} {v}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
