"""Which per-image signal ranks the large errors (issue 9)? Reads ``acc_ensemble.py``'s tables.

    python benchmarks/acc_signals.py --cases docs/results/acc_ft --json docs/results/acc_ft/signals.json

For each measured mode and each signal: the ROC AUC for errors > 4 mm and the ADF of the 85 %
of images the signal ranks most certain (15 % sent to review). Signals: the HC band (the
shipped one), the two models' HC disagreement (corners, full+zoomflip), the corners-vs-full
disagreement of the shipped model, the corner crops' HC spread, and the oracle (the error itself,
the best any signal could do).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.stats import rankdata


def roc_auc(positive: NDArray[np.bool_], score: NDArray[np.floating]) -> float:
    """Area under the ROC curve of ``score`` for ``positive`` (Mann-Whitney, ties averaged)."""
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    r = rankdata(score)
    return float((r[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=Path, default=Path("docs/results/acc_ft"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--review", type=float, default=0.15, help="share of images sent to review")
    args = ap.parse_args()

    def load(name: str) -> dict[str, dict[str, str]]:
        with open(args.cases / f"{name}_cases.csv", newline="") as fh:
            return {r["file"]: r for r in csv.DictReader(fh)}

    a, b, af, bf = load("A_corners"), load("B_corners"), load("A_full_zoomflip"), load("B_full_zoomflip")
    files = sorted(a)

    def hc(t: dict[str, dict[str, str]]) -> NDArray[np.float64]:
        return np.array([float(t[f]["hc_mm"]) for f in files])

    out: dict[str, dict[str, dict[str, float]]] = {}
    for mode in ("A_corners", "B_corners", "A_B_corners", "A_full_zoomflip", "B_full_zoomflip", "A_B_full_zoomflip"):
        t = load(mode)
        err = np.abs(np.array([float(t[f]["hc_ref_mm"]) for f in files]) - hc(t))
        signals = {
            "hc_band": np.array([float(t[f]["hc_band_mm"]) for f in files]),
            "models_disagree_corners": np.abs(hc(a) - hc(b)),
            "models_disagree_full_zoomflip": np.abs(hc(af) - hc(bf)),
            "corners_vs_full_zoomflip": np.abs(hc(a) - hc(af)),
            "crop_hc_spread": np.array([float(t[f]["crop_hc_spread"] or 0.0) for f in files]),
            "oracle": err,
        }
        out[mode] = {}
        print(f"{mode}: ADF {err.mean():.3f} mm, {int((err > 4).sum())} errors > 4 mm")
        for name, s in signals.items():
            keep = s <= np.quantile(s, 1 - args.review)
            res = {"auc_over_4mm": roc_auc(err > 4, s), "adf_ok_mm": float(err[keep].mean()),
                   "share_review": float(1 - keep.mean())}
            out[mode][name] = res
            print(f"  {name:30s} AUC {res['auc_over_4mm']:.2f}  ok ADF {res['adf_ok_mm']:.3f} mm "
                  f"({100 * res['share_review']:.0f} % to review)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
