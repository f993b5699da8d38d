"""Compare two `fetalhc evaluate` output folders image by image (HC, patent length, Dice, band, status,
flags); accepts the column names before and after 0.2. Usage: python benchmarks/compare_eval.py OLD NEW"""
import csv
import json
import sys

from fetalhc.flags import decode_flags

base, new = sys.argv[1], sys.argv[2]
def f(x): return float(x) if x not in (None, "") else None
for mode in ("full", "corners", "corners_flips"):
    a = list(csv.DictReader(open(f"{base}/{mode}_cases.csv")))
    b = list(csv.DictReader(open(f"{new}/{mode}_cases.csv")))
    assert [r["file"] for r in a] == [r["file"] for r in b]
    pa = "contour_hc_mm" if "contour_hc_mm" in a[0] else "patent_pixel_count_hc_mm"
    dh = max(abs(f(x["hc_mm"]) - f(y["hc_mm"])) for x, y in zip(a, b, strict=True))
    dp = max(abs(f(x[pa]) - f(y["patent_pixel_count_hc_mm"])) for x, y in zip(a, b, strict=True))
    dd = max(abs(f(x["dice"]) - f(y["dice"])) for x, y in zip(a, b, strict=True))
    db = max(abs((f(x["hc_band_mm"]) or 0) - (f(y["hc_band_mm"]) or 0)) for x, y in zip(a, b, strict=True))
    st = sum(x["status"] != y["status"] for x, y in zip(a, b, strict=True))
    fl = sum(decode_flags(x["flags"]) != decode_flags(y["flags"]) for x, y in zip(a, b, strict=True))
    print(f"{mode}: n={len(a)} max|dHC|={dh:.6f} mm max|d patent|={dp:.6f} mm max|d Dice|={dd:.2e} "
          f"max|d band|={db:.6f} mm status differences={st} flag differences={fl}")
sa, sb = json.load(open(f"{base}/summary.json")), json.load(open(f"{new}/summary.json"))
for m in sa["modes"]:
    print(m, "ADF", sa["modes"][m]["ellipse"]["adf_mm"], "->", sb["modes"][m]["ellipse"]["adf_mm"],
          "Dice", sa["modes"][m]["dice_mean"], "->", sb["modes"][m]["dice_mean"])
