"""Calibrate the 90 % HC interval and its review limit on one half of the validation split, and
report on the other half (issue 9). Input: a ``<mode>_cases.csv`` of ``fetalhc evaluate``.

    python benchmarks/acc_interval.py calibrate --cases eval/acc/full_zoomflip_cases.csv --half a \
        --settings full+zoomflip --out src/fetalhc/models/fetalhc_deeplabv3plus_effl0.full+zoomflip.interval.json

``--settings`` is the ``crop_mode`` label the results carry for the settings that made the table
(``PipelineConfig.crop_label``); the pipeline applies a calibration only to those settings.
    python benchmarks/acc_interval.py report --cases eval/acc/corners_cases.csv --half b
    python benchmarks/acc_interval.py swap --cases eval/acc/corners_cases.csv   # both ways, no file written
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any

from fetalhc import conformal
from fetalhc.clinical import INFO_FLAGS
from fetalhc.conformal import calibrate_rows, interval_fields
from fetalhc.evalstats import evaluation_stats
from fetalhc.hc18 import DEFAULT_SPLIT
from fetalhc.pipeline import SETTINGS_LABEL
from fetalhc.quality import flag_code

HALVES_FILE = DEFAULT_SPLIT.parent / "hc18_seed0_calval.json"
NOT_GROSS = {"hc_uncertain", conformal.FLAG_INTERVAL_WIDE} | set(INFO_FLAGS)
REVIEW_SHARE = 0.12


def split_flags(text: str) -> list[str]:
    """Flags of a table cell: a JSON list (``fetalhc evaluate``) or ``;``-joined codes (``acc_experiments.py``)."""
    text = text.strip()
    if text.startswith("["):
        return [str(f) for f in json.loads(text)]
    return [f for f in text.split(";") if f.strip()]


def read_rows(path: Path, half: str) -> list[dict[str, Any]]:
    files = set(json.loads(HALVES_FILE.read_text())[half])
    with path.open() as fh:
        rows = [r for r in csv.DictReader(fh) if r["file"] in files]
    for r in rows:
        if r.get("hc_band_mm") is None and r.get("band_px") not in (None, ""):  # an acc_experiments.py table
            r["hc_band_mm"] = float(r["band_px"]) * float(r["pixel_size_mm"])
        for k in ("pixel_size_mm", "hc_ref_mm", "hc_mm", "hc_band_mm", "hc_low_mm", "hc_high_mm"):
            r[k] = float(r[k]) if r.get(k) not in (None, "") else None
        codes = {flag_code(f) for f in split_flags(r.get("flags") or "")}
        r["gross"] = bool(codes - NOT_GROSS)
    return rows


def apply(rows: list[dict[str, Any]], cal: conformal.IntervalCalibration) -> list[dict[str, Any]]:
    """Rows with the interval and status recomputed from ``cal`` (as the pipeline does)."""
    out = []
    for r in rows:
        r2 = dict(r, hc_low_mm=None, hc_high_mm=None)
        wide = False
        if r["hc_mm"] is not None and r["hc_band_mm"] is not None:
            s = r["pixel_size_mm"]
            f = interval_fields(r["hc_mm"] / s, r["hc_band_mm"] / s, s, cal)
            r2.update(hc_low_mm=f["hc_low_mm"], hc_high_mm=f["hc_high_mm"])
            wide = f["wide"]
        r2["status"] = "review" if r["gross"] or r["hc_mm"] is None or wide else "ok"
        out.append(r2)
    return out


def calibrated(cases: Path, half: str, settings: str = "") -> conformal.IntervalCalibration:
    cal = calibrate_rows(read_rows(cases, half), "hc_band_mm", 0.1, REVIEW_SHARE)
    return conformal.IntervalCalibration(**{**cal.__dict__, "settings": settings, "made_by": {
        "command": f"python benchmarks/acc_interval.py calibrate --cases {cases} --half {half} --settings {settings}",
        "cases": f"per-image table {cases.name} of the 129 'val' images of src/fetalhc/splits/hc18_seed0.json",
        "calibration_images": f"half {half!r} of src/fetalhc/splits/hc18_seed0_calval.json",
        "score": "|ref_px - hc_px| / (a_px + b * hc_band_px); q = ceil((n+1)(1-alpha))-th smallest score",
        "review_limit": f"smallest half-width (mm) sending <= {REVIEW_SHARE:.0%} of the calibration half to "
                        "review, gross-failure flags included"}})


def report(cases: Path, half: str, cal: conformal.IntervalCalibration) -> dict[str, Any]:
    rows = apply(read_rows(cases, half), cal)
    st = evaluation_stats(rows)
    return {"measured_on": half, "n": len(rows), "calibration": {k: v for k, v in cal.__dict__.items()
                                                                  if k != "made_by"}, **st}


def _short(rep: dict[str, Any]) -> str:
    iv, rv, adf = rep["interval"], rep["review"], rep["adf"]
    return (f"half {rep['measured_on']}: ADF {adf['adf_mm']:.3f} [{adf['ci95_mm'][0]:.2f}, {adf['ci95_mm'][1]:.2f}] "
            f"coverage {iv['coverage']:.3f} median width {iv['median_width_mm']:.2f} mm, review "
            f"{rv['share_review']:.3f}, ok ADF {rv['adf_ok_mm']:.3f}, >4 mm caught "
            f"{rv['errors_over_4mm_caught']}/{rv['errors_over_4mm']}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("step", choices=["calibrate", "report", "swap"])
    ap.add_argument("--cases", type=Path, required=True)
    ap.add_argument("--half", default="a")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--settings", default="", help="calibrate: the crop_mode label of the settings that made "
                                                   "--cases (e.g. full+zoomflip); required with --out")
    ap.add_argument("--calibration", type=Path, help="report: the JSON to use (default: calibrate on the other half)")
    ap.add_argument("--json", type=Path, help="write the report(s) here")
    a = ap.parse_args()
    other = {"a": "b", "b": "a"}
    if a.step == "calibrate":
        if a.out and not a.settings:
            ap.error("--settings is required with --out: a calibration applies only to the settings it was made for")
        if a.settings and not SETTINGS_LABEL.fullmatch(a.settings):
            ap.error(f"--settings {a.settings!r} is no crop_mode label (e.g. full+zoomflip, corners+zoom)")
        cal = calibrated(a.cases, a.half, a.settings)
        if a.out:
            conformal.save(cal, a.out)
        print(cal)
        return
    if a.step == "report":
        cal = conformal.load(a.calibration) if a.calibration else calibrated(a.cases, other[a.half])
        reps = [report(a.cases, a.half, cal)]
    else:
        reps = [report(a.cases, h, calibrated(a.cases, other[h])) for h in ("b", "a")]
    for r in reps:
        print(_short(r))
    if a.json:
        text = json.dumps(reps, indent=1, default=lambda x: None if x is None or math.isinf(x) else x)
        a.json.write_text(text.replace("Infinity", "null") + "\n")


if __name__ == "__main__":
    main()
